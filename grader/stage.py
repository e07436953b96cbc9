"""The network stage: wait for the server, then run the network checks.

It runs next to the server under test: inside the stack's `grader` container
in docker mode (`python -m grader stage ...`), in the grader's own process in
local mode. Input and output are plain JSON so both modes share it:

  plan:   [{"check": name, "params": {...}, "model": "select", "os_name": "linux",
            "server_pid": null}, ...]
  result: {"listening": bool, "outcomes": [Outcome as a dict, ...], "seconds": [...]}
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path

from grader import evidence
from grader.checks import REGISTRY, CheckContext, run_check
from grader.outcome import Outcome, Status
from grader.proc import raise_fd_limit, wait_listening


def context_for(item: dict, addr: tuple[str, int]) -> CheckContext:
    spec = REGISTRY[item["check"]]
    return CheckContext(addr=addr, params=spec.resolve(item.get("params") or {}),
                        model=item.get("model", ""), os_name=item.get("os_name") or "linux",
                        server_pid=item.get("server_pid"))


def resolve(host: str) -> str:
    try:
        return socket.gethostbyname(host)
    except OSError:
        return host


def run_network_stage(addr: tuple[str, int], plan: list[dict], wait: float,
                      alive: Callable[[], bool] | None = None) -> dict:
    """Run `plan` against the server at addr; `alive` (local mode) lets the wait end
    as soon as the server has exited."""
    raise_fd_limit()  # robust.fd_limit holds more than 1024 sockets
    if not wait_listening(addr, wait, alive):
        if alive is not None and not alive():  # no point waiting for a server that has exited
            outcome = Outcome.not_run("your server exited before it listened")
        else:
            outcome = Outcome.not_run(
                f"the server never accepted a connection on port {addr[1]} within {wait:g} s",
                "does it bind HOST and PORT from the environment and call listen()? "
                "its log is server.log in the results folder", status=Status.ERROR)
        return {"listening": False, "outcomes": [outcome.to_dict() for _ in plan], "seconds": []}
    # Talk to the address, not the name: once a crashed server's container is gone its
    # name no longer resolves, and "Temporary failure in name resolution" (after seconds
    # of retries) would stand where "connection refused" belongs.
    addr = (resolve(addr[0]), addr[1])
    outcomes, seconds, previous = [], [], None
    for item in plan:
        started = time.monotonic()
        if previous is not None and not wait_listening(addr, 3.0, alive):
            # Every later check would fail for the same reason: one reason, shown once.
            outcome = Outcome.not_run(
                f"the server stopped accepting connections during the check {previous!r}",
                "it crashed or hung there: its log is server.log in the results folder")
        else:
            outcome = run_check(REGISTRY[item["check"]], context_for(item, addr))
            previous = REGISTRY[item["check"]].title
        outcomes.append(outcome.to_dict())
        seconds.append(round(time.monotonic() - started, 3))
    return {"listening": True, "outcomes": outcomes, "seconds": seconds}


def main(target: str, plan_file: Path, out_file: Path, wait: float = 20.0) -> int:
    """python -m grader stage HOST:PORT PLAN.json OUT.json [WAIT]"""
    host, _, port = target.rpartition(":")
    plan = json.loads(Path(plan_file).read_text())
    # In the stack the server's processes are visible (a shared PID namespace): stop
    # waiting the moment they are gone instead of sitting out `wait` seconds.
    alive = (lambda: bool(evidence.server_alive())) if evidence.server_alive() is not None \
        else None
    result = run_network_stage((host, int(port)), plan, wait, alive)
    Path(out_file).write_text(json.dumps(result))
    owner = os.environ.get("IOLAB_OWNER", "")  # docker: we run as root (compose.yaml)
    if owner and os.getuid() == 0:
        uid, _, gid = owner.partition(":")
        os.chown(out_file, int(uid), int(gid or uid))
    return 0
