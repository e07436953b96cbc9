"""Start a reference server as a subprocess on a free loopback port (local mode)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from grader.lineclient import wait_listening
from grader.targets import free_port

REPO = Path(__file__).resolve().parent.parent
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
        self.name, self.port = name, free_port()
        self.host = f"tcp://127.0.0.1:{self.port}"
        self.log = log_dir / f"{name}.log"
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> Server:
        env = dict(os.environ, HOST="127.0.0.1", PORT=str(self.port), IOLAB_OS="")
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen([sys.executable, str(path_of(self.name))], env=env,
                                         cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True,
                                         preexec_fn=lambda: os.sched_setaffinity(0, server_cores()))
        if not wait_listening(("127.0.0.1", self.port), 15):
            self.__exit__()
            raise RuntimeError(f"{self.name} did not listen; see {self.log}")
        return self

    def __exit__(self, *exc) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(5)
        except (subprocess.TimeoutExpired, ProcessLookupError):
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(5)
