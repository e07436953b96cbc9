"""The server as a subprocess on loopback; Locust in a process of its own.

No Docker: a laptop, a course platform's container, a CI job. The server
gets what setrlimit can give of the exercise's limits (local_rlimits), and
limits.pids as an emulated ceiling on its threads (IOLAB_TASKS: setrlimit has
no per-process task limit, see servers/osprofile/sitecustomize.py); the
network stage runs in the grader's own process. On a course platform, as root
with IOLAB_SANDBOX=1, the server runs in grader/sandbox.py's sandbox instead
(its own uid, a private copy of its folder, more limits).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading

try:
    import resource  # POSIX only
except ImportError:  # Windows: no rlimits
    resource = None

from grader import sandbox
from grader.errors import StackError
from grader.load import gate, warm
from grader.load.stats import LoadStats, read_stats
from grader.paths import REPO
from grader.proc import free_port, signals_deferred, stop_group
from grader.stage import run_network_stage
from grader.targets.base import LOG_CAP, Target, describe_exit, mib, os_name_env


class LocalTarget(Target):
    """Methods: see Target. `port`: a fixed port (default: a free one)."""

    def __init__(self, *, port: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.port = port or free_port()
        self.proc: subprocess.Popen | None = None
        self.log_tail = bytearray()  # the last LOG_CAP bytes: a flood cannot fill the disk
        self.memory_note = f" (local mode bounds reserved memory: {mib(4 * self.memory)})"
        self._reader: threading.Thread | None = None
        self.sandbox: sandbox.Sandbox | None = None
        self._load_proc = None  # Locust, grader/load/local.py (grader/load/warm.py)
        self.listened = False  # whether a network stage found it listening

    def start(self) -> None:
        # A busy --port is bad input, refused by the runner before anything starts.
        env = dict(os.environ, HOST="127.0.0.1", PORT=str(self.port),
                   IOLAB_OS=os_name_env(self.os_name),
                   IOLAB_TASKS=str(self.limits["pids"]),  # the pids limit, emulated (sitecustomize)
                   PYTHONPATH=str(REPO / "servers" / "osprofile"))
        python, cwd, preexec = sys.executable, self.folder, local_rlimits(self.limits, self.memory)
        if sandbox.active():
            self.sandbox = sandbox.Sandbox(self.folder, self.limits)
            os.chmod(self.run_dir, 0o700)  # the run's results: out of the server's reach
            cwd, env = self.sandbox.work, self.sandbox.env(self.port, os_name_env(self.os_name))
            python, preexec = self.sandbox.python(), self.sandbox.preexec(preexec)
        self.proc = subprocess.Popen([python, self.entry], cwd=cwd, env=env,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, start_new_session=True,
                                     preexec_fn=preexec)
        self._reader = threading.Thread(target=self._read_log, daemon=True)
        self._reader.start()
        self.start_watchdog()

    def _read_log(self) -> None:
        for chunk in iter(lambda: self.proc.stdout.read1(65536), b""):
            self.log_tail += chunk
            del self.log_tail[:-LOG_CAP]

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill_server(self) -> None:
        if self.running():
            stop_group(self.proc, grace=0)

    def network_stage(self, plan: list[dict], wait: float) -> dict:
        # the server's pid: model.* checks read /proc/<pid> (grader/evidence.py)
        plan = [dict(item, server_pid=self.proc.pid if self.proc else None) for item in plan]
        result = run_network_stage(("127.0.0.1", self.port), plan, wait, alive=self.running)
        self.listened = self.listened or bool(result.get("listening"))
        return result

    SETTLE = 3.0  # s a server that stopped listening gets to end

    def settle(self) -> None:
        # A Python server dying of an exception (MemoryError at its limit) closes its
        # sockets while the interpreter shuts down, before the process ends: a check then
        # sees the connection close, and on a busy machine the runner asked too early and
        # found it alive with nothing in its log (test_sandbox, 6 runs in 24 beside CPU
        # hogs). One that listened and now refuses connections is on its way out.
        if not self.listened or not self.running():
            return
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1.0).close()
            return  # still serving
        except ConnectionRefusedError:
            pass  # no longer listening: on its way out
        except OSError:
            return  # a full backlog, say: still there
        try:
            self.proc.wait(self.SETTLE)
        except subprocess.TimeoutExpired:
            pass

    def prepare_load(self, load: dict) -> None:
        self._load_proc = self._start_load(load)  # imports Locust, then waits at the gate

    def _start_load(self, load: dict):
        out = self.out / "locust"
        out.mkdir(exist_ok=True)
        env = dict(os.environ, **self.load_env(load), LOCUST_HOST=f"tcp://127.0.0.1:{self.port}",
                   IOLAB_LOAD_GATE=str(out / gate.GATE_FILE))
        return warm.start_phase(env, str(out / "stats"))  # stop() ends it, also on Ctrl-C

    def load_phase(self, load: dict) -> LoadStats:
        gate.open_gate(self.out / "locust" / gate.GATE_FILE)
        if self._load_proc is None:  # not prepared, or a second phase
            self._load_proc = self._start_load(load)
        limit = float(load.get("duration", 5)) + 60
        try:
            self._load_proc.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            raise StackError(f"the load phase did not end within {limit:g} s")
        finally:
            stop_group(self._load_proc, grace=0)  # its children, and itself on a timeout
            self._load_proc = None
        return read_stats(self.out / "locust" / "stats")

    def server_state(self) -> str:
        if self.timed_out:
            return self.timeout_reason()
        if self.proc is None:
            return ""
        if self.proc.poll() is None:
            return self.limit_reasons(self.server_log())
        if self._reader is not None:
            self._reader.join(2)
        oom = self.sandbox.oom_reason(self.proc.returncode) if self.sandbox else ""
        return "; ".join(filter(None, [oom or describe_exit(self.proc.returncode),
                                       self.limit_reasons(self.server_log())]))

    def exited(self) -> bool:
        return self.timed_out or (self.proc is not None and self.proc.poll() is not None)

    def server_log(self) -> str:
        return bytes(self.log_tail).decode("utf-8", "replace")

    def stop(self) -> None:
        self.stop_watchdog()
        if self._load_proc is not None:  # prepared, or interrupted mid-phase
            stop_group(self._load_proc, grace=0)
            self._load_proc = None
        if self.proc is None:
            if self.sandbox is not None:
                self.sandbox.close()
            return
        with signals_deferred():
            stop_group(self.proc, grace=3.0)  # its children too, even when it has exited
            if self.sandbox is not None:
                self.sandbox.close()  # every process of its uid, its folder
            if self._reader is not None:
                self._reader.join(2)


def local_rlimits(limits: dict, memory: int):
    """A preexec_fn applying what setrlimit can of the exercise's limits to a local server.

    Memory: RLIMIT_DATA on Linux (private writable memory: the heap, thread stacks of
    8 MiB each; not the address space malloc reserves per arena, which grows with the
    CPU count), RLIMIT_AS elsewhere. Either counts reserved, not resident, memory, so
    the bound is 4x the memory limit docker enforces on resident memory.
    RLIMIT_NPROC counts every process and thread of the user (and does not bind
    root), so it is what the user runs now plus limits.pids.
    """
    if resource is None:
        return None
    memory_kind = "RLIMIT_DATA" if sys.platform.startswith("linux") else "RLIMIT_AS"
    wanted = [(getattr(resource, memory_kind, None), 4 * memory),
              (getattr(resource, "RLIMIT_NOFILE", None), int(limits["nofile"])),
              (getattr(resource, "RLIMIT_FSIZE", None), 64 * 1024 ** 2)]
    tasks = user_tasks()
    if tasks is not None and os.getuid() != 0:
        wanted.append((getattr(resource, "RLIMIT_NPROC", None), tasks + int(limits["pids"])))

    def apply() -> None:
        for kind, value in wanted:
            if kind is None:
                continue
            soft, hard = resource.getrlimit(kind)
            if hard != resource.RLIM_INFINITY:
                value = min(value, hard)
            try:
                resource.setrlimit(kind, (value, value if hard == resource.RLIM_INFINITY else hard))
            except (ValueError, OSError):
                pass

    return apply


def user_tasks() -> int | None:
    """Processes and threads of this user now (Linux /proc), or None elsewhere."""
    if not os.path.isdir("/proc/self/task"):
        return None
    uid, total = os.getuid(), 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}").st_uid == uid:
                    total += len(os.listdir(f"/proc/{entry}/task"))
            except OSError:
                pass
    return total
