"""A server under test, wherever it runs: the interface the runner drives.

    target = make_target(...)       # DockerTarget or LocalTarget
    target.start()                  # the server starts (and the watchdog)
    target.prepare_load(load)       # Locust starting now, held until the load phase
    target.network_stage(plan, 20)  # the network checks, next to the server
    target.load_phase(load)         # Locust against it -> LoadStats
    target.settle()                 # a server on its way out: let it end first
    target.server_state()           # '' while healthy, else how it ended
    target.exited()                 # whether it has ended
    target.server_log()             # what it printed (capped)
    target.stop()                   # everything torn down, also on Ctrl-C

Methods a target implements: all of the above (prepare_load and settle may stay the
defaults, which do nothing), plus kill_server() (the
watchdog's way to end a run that outlives limits.timeout). What both kinds
share (the watchdog, the reasons a limit gives, the load environment) is here.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from abc import ABC, abstractmethod
from pathlib import Path

from grader.errors import UsageError
from grader.labspec import DEFAULT_LIMITS, memory_bytes
from grader.load.stats import LoadStats

LOG_CAP = 64 * 1024  # what we keep of a server's stdout/stderr


class Target(ABC):
    """A submission folder, the file to run in it, and where it runs."""

    def __init__(self, *, run_dir: Path, label: str, folder: Path, entry: str, os_name: str,
                 limits: dict | None = None):
        self.run_dir, self.label, self.folder, self.entry, self.os_name = (
            run_dir, label, folder.resolve(), entry, os_name)
        self.out = run_dir / label
        self.out.mkdir(parents=True, exist_ok=True)
        self.limits = {**DEFAULT_LIMITS, **(limits or {})}
        self.memory = memory_bytes(self.limits["memory"])
        self.timed_out = False
        self._watchdog: threading.Timer | None = None
        self._deadline = 0.0
        self.memory_note = ""

    # --- what the runner calls ----------------------------------------------------

    @abstractmethod
    def start(self) -> None:
        """Start the server (not waiting for it to listen) and the watchdog."""

    @abstractmethod
    def network_stage(self, plan: list[dict], wait: float) -> dict:
        """Run the network checks of `plan` next to the server (grader/stage.py):
        {"listening": bool, "outcomes": [Outcome dicts], "seconds": [...]}."""

    def prepare_load(self, load: dict) -> None:
        """Start the load generator now, held at a gate (grader/load/gate.py) until
        load_phase(load) opens it: its start-up then overlaps the network checks. Optional:
        load_phase starts it when this was not called (the default does nothing)."""
        return None

    @abstractmethod
    def load_phase(self, load: dict) -> LoadStats:
        """Run Locust against the server with lab.yaml's `load:` settings."""

    def settle(self) -> None:
        """Called after the checks, before server_state(): wait a little for a server
        that is visibly ending, so that how it ended explains the checks it failed.
        Optional (the default does nothing). Never raises."""
        return None

    @abstractmethod
    def server_state(self) -> str:
        """'' while the server is healthy; otherwise how it ended or the limit it hit.
        Never raises: it runs on the way to the teardown."""

    @abstractmethod
    def exited(self) -> bool:
        """True once the server has ended (exited, crashed, killed, stopped by the
        watchdog); False while it runs or when that cannot be told. Never raises."""

    @abstractmethod
    def server_log(self) -> str:
        """What the server printed, at most LOG_CAP bytes of its end."""

    @abstractmethod
    def stop(self) -> None:
        """Stop the server and everything started for it; Ctrl-C waits for it."""

    @abstractmethod
    def kill_server(self) -> None:
        """Kill the server at once (the watchdog's remedy)."""

    # --- shared --------------------------------------------------------------------

    def start_watchdog(self, seconds: float | None = None) -> None:
        """The wall-clock bound (limits.timeout) on the whole grading of the exercise:
        when it expires the server is killed, so every check still waiting ends."""
        def expire() -> None:
            self.timed_out = True
            self.kill_server()

        seconds = float(self.limits["timeout"]) if seconds is None else seconds
        self._deadline = time.monotonic() + seconds
        self._watchdog = threading.Timer(seconds, expire)
        self._watchdog.daemon = True
        self._watchdog.start()

    def stop_watchdog(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()

    def extend_watchdog(self, seconds: float) -> None:
        """Give back time the server did not use: waiting for the machine's load lock
        (another submission's load phase) is not the server's doing."""
        if self._watchdog is None or self.timed_out or seconds <= 0:
            return
        self.stop_watchdog()
        self.start_watchdog(max(0.0, self._deadline - time.monotonic()) + seconds)

    def timeout_reason(self) -> str:
        return (f"your server was stopped: grading it took longer than the time limit "
                f"of {self.limits['timeout']:g} s")

    def limit_reasons(self, log: str) -> str:
        """What the server's own log shows of a limit it ran into (it was not killed)."""
        reasons = []
        if "MemoryError" in log:
            reasons.append(f"your server ran out of memory (MemoryError), limit {mib(self.memory)}"
                           + self.memory_note)
        if "Too many open files" in log:
            reasons.append("your server ran out of file descriptors (Too many open files), "
                           f"limit {self.limits['nofile']}")
        if "Resource temporarily unavailable" in log and ("fork" in log or "thread" in log):
            reasons.append(f"your server could not start a process or thread: limit "
                           f"{self.limits['pids']} processes and threads")
        return "; ".join(reasons)

    def load_env(self, load: dict) -> dict[str, str]:
        return {
            "IOLAB_USERS": str(load.get("users", 20)),
            "IOLAB_SPAWN_RATE": str(load.get("spawn_rate", load.get("users", 20))),
            # "5", never "5.0": compose makes it Locust's --run-time "5s" (no decimals)
            "IOLAB_DURATION": f"{float(load.get('duration', 5)):g}",
            "IOLAB_LINE_SIZE": str(load.get("line_size", 1024)),
            "IOLAB_PIPELINE": str(load.get("pipeline", 1)),
            "IOLAB_WORKERS": str(load_workers(load)),
            # "echo" for the yardstick (grader/calibration.py), else LINE/1
            "IOLAB_PROTOCOL": str(load.get("protocol", "line")),
        }


def load_workers(load: dict) -> int:
    """Locust workers for the load phase: IOLAB_WORKERS (`make lab-3 WORKERS=4`) beats
    lab.yaml's load.workers (default 1). Docker mode only: local mode runs one process."""
    override = os.environ.get("IOLAB_WORKERS", "").strip()
    if override:
        if not override.isdigit() or int(override) < 1:
            raise UsageError(f"IOLAB_WORKERS={override!r}: give a whole number of workers ≥ 1")
        return int(override)
    return int(load.get("workers", 1))


SIGNAL_WHY = {
    "SIGKILL": "killed from outside (a limit, the kernel or the grader)",
    "SIGSEGV": "it crashed (segmentation fault)",
    "SIGABRT": "it aborted",
    "SIGTERM": "asked to stop",
    "SIGXFSZ": "it wrote a file larger than the limit",
    "SIGXCPU": "it used more CPU time than the limit",
}


def describe_exit(code: int) -> str:
    """An exit status as a student reads it (a container's 128+N is signal N)."""
    if code < 0 or code > 128:
        signum = -code if code < 0 else code - 128
        try:
            name = signal.Signals(signum).name
        except ValueError:
            return f"your server was killed by signal {signum}"
        why = SIGNAL_WHY.get(name)
        return f"your server was killed by signal {name}" + (f": {why}" if why else "")
    if code == 0:
        return "your server exited (code 0) while it was being graded: it must keep serving"
    return f"your server exited with code {code}"  # the runner adds what its log says


def mib(size: int) -> str:
    return f"{size / 1024 ** 3:g} GiB" if size >= 1024 ** 3 else f"{size / 1024 ** 2:g} MiB"


def os_name_env(os_name: str) -> str:
    return "" if os_name == "native" else os_name
