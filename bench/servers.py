"""Start a reference server as a subprocess on a free loopback port (local mode)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from grader.paths import REPO
from grader.proc import NotListening, start_server, stop_group

SERVERS = REPO / "servers"
UVLOOP = Path(__file__).resolve().parent / "uvloop_server.py"


def reference_servers() -> list[str]:
    """Every servers/*_server.py that runs on Linux (kqueue is macOS/BSD only)."""
    names = sorted(p.name[: -len("_server.py")] for p in SERVERS.glob("*_server.py"))
    return [n for n in names if n != "kqueue"]


def uvloop_available() -> bool:
    return subprocess.run([sys.executable, "-c", "import uvloop"],
                          capture_output=True).returncode == 0


def path_of(name: str) -> Path:
    return UVLOOP if name == "uvloop" else SERVERS / f"{name}_server.py"


def server_cores() -> set[int]:
    """One core for every server (all its threads and processes), as the grading sandbox
    gives it one CPU; the load generator may run anywhere."""
    return {max(os.sched_getaffinity(0))}


class Server:
    """`with Server("epoll") as srv:` ... srv.host is tcp://127.0.0.1:PORT."""

    def __init__(self, name: str, log_dir: Path):
        self.name, self.port = name, 0
        self.log = log_dir / f"{name}.log"
        self.proc: subprocess.Popen | None = None

    @property
    def host(self) -> str:
        return f"tcp://127.0.0.1:{self.port}"

    def __enter__(self) -> Server:
        with self.log.open("ab") as log:
            try:
                self.proc, self.port = start_server(
                    path_of(self.name), env={"IOLAB_OS": ""}, cwd=REPO, stdout=log, wait=15,
                    preexec_fn=lambda: os.sched_setaffinity(0, server_cores()))
            except NotListening as exc:
                raise RuntimeError(f"{exc}; see {self.log}")
        return self

    def __exit__(self, *exc) -> None:
        if self.proc is not None:
            stop_group(self.proc, grace=5)
