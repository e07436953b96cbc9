"""The network stage: wait for the server, then run the network checks.

It runs next to the server under test: inside the stack's `grader` container
in docker mode (`python -m grader stage ...`), in the grader's own process in
local mode. Input and output are plain JSON so both modes share it.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from grader.checks import CheckContext, load_all, run_check
from grader.lineclient import wait_listening
from grader.outcome import Outcome


def run_network_stage(addr: tuple[str, int], plan: list[dict], wait: float) -> dict:
    """plan: [{"check": name, "params": {...}}] -> {"listening", "outcomes"}."""
    registry = load_all()
    if not wait_listening(addr, wait):
        why = f"the server never accepted a connection on port {addr[1]} within {wait:g} s"
        hint = "does it bind HOST/PORT from the environment and call listen()? see its log below"
        outcome = Outcome.error(why, hint)
        return {"listening": False, "outcomes": [outcome.__dict__ for _ in plan], "seconds": []}
    outcomes, seconds, previous = [], [], None
    for item in plan:
        started = time.monotonic()
        if previous is not None and not wait_listening(addr, 3.0):
            # Every later check would fail for the same reason: say it once, clearly.
            outcome = Outcome.error(
                f"not run: the server stopped accepting connections during the check "
                f"{previous!r}", "it crashed or hung there: see its log in the results folder")
        else:
            ctx = CheckContext(addr=addr, params=item.get("params", {}))
            outcome = run_check(registry[item["check"]], ctx)
            previous = registry[item["check"]].title
        outcomes.append(outcome.__dict__)
        seconds.append(round(time.monotonic() - started, 3))
    return {"listening": True, "outcomes": outcomes, "seconds": seconds}


def main(argv: list[str]) -> int:
    """python -m grader stage HOST:PORT PLAN.json OUT.json [WAIT]"""
    target, plan_file, out_file = argv[:3]
    wait = float(argv[3]) if len(argv) > 3 else 20.0
    host, _, port = target.rpartition(":")
    plan = json.loads(Path(plan_file).read_text())
    result = run_network_stage((host, int(port)), plan, wait)
    Path(out_file).write_text(json.dumps(result))
    owner = os.environ.get("IOLAB_OWNER", "")  # docker: we run as root (compose.yaml)
    if owner and os.getuid() == 0:
        uid, _, gid = owner.partition(":")
        os.chown(out_file, int(uid), int(gid or uid))
    return 0
