"""Where the server under test runs: a Compose stack, or a local subprocess.

Both targets offer the same four steps (start, network stage, load phase,
stop) so the runner and every check are shared by the two modes (Contract 5).
"""

from __future__ import annotations

import atexit
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
from contextlib import contextmanager
from pathlib import Path

from grader.errors import StackError, UsageError
from grader.labspec import DEFAULT_LIMITS, memory_bytes
from grader.load.stats import LoadStats, read_stats
from grader.stage import run_network_stage

REPO = Path(__file__).resolve().parent.parent
LOG_CAP = 64 * 1024  # what we keep of a server's stdout/stderr


class Target:
    """A server under test: a submission folder and the file to run in it."""

    def __init__(self, run_dir: Path, label: str, folder: Path, entry: str, os_name: str,
                 limits: dict | None = None):
        self.run_dir, self.label, self.folder, self.entry, self.os_name = (
            run_dir, label, folder.resolve(), entry, os_name)
        self.out = run_dir / label
        self.out.mkdir(parents=True, exist_ok=True)
        self.limits = {**DEFAULT_LIMITS, **(limits or {})}
        self.memory = memory_bytes(self.limits["memory"])
        self.timed_out = False
        self._watchdog: threading.Timer | None = None
        self.memory_note = ""

    def start_watchdog(self) -> None:
        """The wall-clock bound (limits.timeout) on the whole grading of the exercise:
        when it expires the server is killed, so every check still waiting ends."""
        def expire() -> None:
            self.timed_out = True
            self.kill_server()

        self._watchdog = threading.Timer(float(self.limits["timeout"]), expire)
        self._watchdog.daemon = True
        self._watchdog.start()

    def stop_watchdog(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()

    def kill_server(self) -> None:
        raise NotImplementedError

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
            "IOLAB_DURATION": str(load.get("duration", 5)),
            "IOLAB_LINE_SIZE": str(load.get("line_size", 1024)),
            "IOLAB_PIPELINE": str(load.get("pipeline", 1)),
            "IOLAB_WORKERS": str(load_workers(load)),
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


def compose_command() -> list[str]:
    """`docker compose` (v2) where it exists, else `docker-compose` (1.29)."""
    override = os.environ.get("IOLAB_COMPOSE")
    if override:
        return override.split()
    if shutil.which("docker") and subprocess.run(
        ["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    raise UsageError("neither `docker compose` nor `docker-compose` is installed: "
                     "install Docker Compose, or grade with --mode local")


class DockerTarget(Target):
    """The server in its own sandboxed container, driven through compose.yaml."""

    def __init__(self, *args, run_id: str, image: str = "iolab-runtime:latest",
                 limits: dict | None = None):
        super().__init__(*args, limits=limits)
        self.project = re.sub(r"[^a-z0-9_-]", "-", f"iolab-{run_id}-{self.label}".lower())
        self.limits_file = self.write_limits()
        self.compose = compose_command() + ["-p", self.project, "-f", str(REPO / "compose.yaml"),
                                            "-f", str(self.limits_file)]
        self.env = dict(os.environ, IOLAB_IMAGE=image, IOLAB_SUBMISSION=str(self.folder),
                        IOLAB_ENTRY=self.entry, IOLAB_OS=os_name_env(self.os_name),
                        IOLAB_RESULTS=str(self.run_dir.resolve()),
                        IOLAB_LOCUST_OUT=f"/results/{self.label}/locust",
                        IOLAB_UID=str(os.getuid()), IOLAB_GID=str(os.getgid()))

    def write_limits(self) -> Path:
        """The exercise's limits as a compose override (a second -f): typed values,
        which interpolation (strings only) cannot give docker-compose 1.29."""
        lim, path = self.limits, self.out / "limits.compose.yaml"
        path.write_text(
            "# Written by the grader from lab.yaml `limits:`; passed as a second -f.\n"
            "services:\n  server:\n"
            f"    mem_limit: {self.memory}\n"
            f"    memswap_limit: {self.memory}\n"  # no swap: over the limit is out of memory
            f"    cpus: {float(lim['cpus'])}\n"
            f"    pids_limit: {int(lim['pids'])}\n"
            f"    ulimits:\n      nofile: {{soft: {int(lim['nofile'])}, hard: {int(lim['nofile'])}}}\n")
        return path

    def _compose(self, *args: str, env: dict | None = None, timeout: float = 300,
                 check: bool = True) -> subprocess.CompletedProcess:
        # A session of its own: a Ctrl-C at the terminal reaches the grader, which
        # tears down, not a `compose down` halfway through.
        try:
            proc = subprocess.run([*self.compose, *args], env=env or self.env, cwd=REPO,
                                  capture_output=True, text=True, timeout=timeout,
                                  start_new_session=True)
        except subprocess.TimeoutExpired:
            if self.timed_out:
                raise StackError(self.timeout_reason())
            raise StackError(f"`compose {' '.join(args[:2])}` did not finish within {timeout:g} s")
        if check and proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            raise StackError(f"`compose {' '.join(args[:2])}` failed: {' | '.join(tail)}")
        return proc

    def start(self) -> None:
        ACTIVE_PROJECTS.add(self.project)
        self._compose("up", "-d", "--no-color", "server")
        self.start_watchdog()

    def server_id(self) -> str:
        return self._compose("ps", "-q", "server", check=False, timeout=60).stdout.strip()

    def kill_server(self) -> None:
        cid = self.server_id()
        if cid:
            subprocess.run(["docker", "kill", cid], capture_output=True, timeout=60)

    def network_stage(self, plan: list[dict], wait: float) -> dict:
        (self.out / "plan.json").write_text(json.dumps(plan))
        inside = f"/results/{self.label}"
        try:
            self._compose("run", "--rm", "--no-deps", "-T", "grader", "python", "-m", "grader",
                          "stage", "server:9000", f"{inside}/plan.json", f"{inside}/network.json",
                          str(wait), timeout=wait + 600)
        except StackError:
            # The grader shares the server's PID namespace (compose.yaml): when the
            # server's init dies, the kernel kills the stage with it. A dead server is
            # the verdict then, not the engine's error.
            state = self.server_state()
            if not state or self.server_running():
                raise
            outcome = {"passed": False, "got": "your server stopped while the network checks "
                       "ran, so they could not finish",
                       "hint": "see the end of its log (server.log)", "status": "failed"}
            return {"listening": False, "outcomes": [outcome for _ in plan], "seconds": []}
        return json.loads((self.out / "network.json").read_text())

    def server_running(self) -> bool:
        cid = self.server_id()
        return bool(cid) and subprocess.run(
            ["docker", "inspect", "-f", "{{.State.Running}}", cid], capture_output=True,
            text=True, timeout=60).stdout.strip() == "true"

    def load_phase(self, load: dict) -> LoadStats:
        (self.out / "locust").mkdir(exist_ok=True)
        env = dict(self.env, **self.load_env(load))
        workers = env["IOLAB_WORKERS"]
        # --no-deps: never let compose (re)start the server behind the grader's
        # back; a server that crashed during the network checks stays down.
        self._compose("up", "-d", "--no-color", "--no-deps", "--scale",
                      f"locust-worker={workers}", "locust-master", "locust-worker", env=env)
        master = self._compose("ps", "-q", "locust-master", env=env).stdout.strip()
        limit = float(load.get("duration", 5)) + 90
        try:  # own session, as in _compose: a Ctrl-C is the grader's to handle
            waited = subprocess.run(["docker", "wait", master], capture_output=True, text=True,
                                    timeout=limit, start_new_session=True)
        except subprocess.TimeoutExpired:
            raise StackError(f"the load phase did not end within {limit:g} s")
        if waited.returncode != 0:  # never judge statistics of a run we did not see end
            raise StackError(f"waiting for Locust's master failed: {waited.stderr.strip()[-200:]}")
        return read_stats(self.out / "locust" / "stats")

    def server_state(self) -> str:
        """'' while healthy; otherwise how the server container ended, or the limit it hit.
        Never raises: it runs on the way to the teardown."""
        try:
            return self._server_state()
        except (StackError, OSError, subprocess.SubprocessError, ValueError) as exc:
            return f"the state of your server could not be read ({exc})"

    def _server_state(self) -> str:
        if self.timed_out:
            return self.timeout_reason()
        cid = self.server_id()
        if not cid:
            return "the server container is gone"
        proc = subprocess.run(["docker", "inspect", "-f", "{{.State.Running}} {{.State.OOMKilled}} "
                               "{{.State.ExitCode}} {{.State.Pid}}", cid],
                              capture_output=True, text=True, timeout=60)
        running, oom, code, pid = (proc.stdout.split() + ["", "", "", ""])[:4]
        events = cgroup_events(int(pid)) if running == "true" and pid.isdigit() else {}
        if oom == "true" or events.get("oom_kill", 0) > 0:
            who = "your server" if running != "true" else "a process of your server"
            return f"{who} was killed: out of memory, limit {mib(self.memory)}"
        reasons = []
        if events.get("pids_max", 0) > 0:
            reasons.append(f"your server hit its limit of {self.limits['pids']} processes and "
                           "threads: fork() or starting a thread failed "
                           f"{events['pids_max']} times")
        if running != "true":
            reasons.insert(0, describe_exit(int(code or 0)))
        return "; ".join(reasons)

    def server_log(self) -> str:
        try:
            proc = self._compose("logs", "--no-color", "server", check=False, timeout=60)
        except StackError as exc:
            return f"(the server's log could not be read: {exc})"
        return (proc.stdout + proc.stderr)[-LOG_CAP:]

    def stop(self) -> None:
        """Tear the project down; whatever `down` leaves is removed by its label.
        Ctrl-C and SIGTERM wait until it is done (a second one must not leave a stack)."""
        self.stop_watchdog()
        with signals_deferred():
            try:
                self._compose("down", "-v", "--remove-orphans", "-t", "2", check=False,
                              timeout=120)
            except StackError:
                pass
            remove_project(self.project)
            ACTIVE_PROJECTS.discard(self.project)


class LocalTarget(Target):
    """The server as a subprocess on loopback; Locust in a library-API process."""

    def __init__(self, *args, port: int | None = None, limits: dict | None = None):
        super().__init__(*args, limits=limits)
        self.port = port or free_port()
        self.proc: subprocess.Popen | None = None
        self.log_tail = bytearray()  # the last LOG_CAP bytes: a flood cannot fill the disk
        self.memory_note = f" (local mode bounds reserved memory: {mib(4 * self.memory)})"
        self._reader: threading.Thread | None = None

    def start(self) -> None:
        # A busy --port is bad input, refused by the runner before anything starts.
        env = dict(os.environ, HOST="127.0.0.1", PORT=str(self.port),
                   IOLAB_OS=os_name_env(self.os_name),
                   PYTHONPATH=str(REPO / "servers" / "osprofile"))
        self.proc = subprocess.Popen([sys.executable, self.entry], cwd=self.folder, env=env,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, start_new_session=True,
                                     preexec_fn=local_rlimits(self.limits, self.memory))
        self._reader = threading.Thread(target=self._read_log, daemon=True)
        self._reader.start()
        self.start_watchdog()

    def _read_log(self) -> None:
        for chunk in iter(lambda: self.proc.stdout.read1(65536), b""):
            self.log_tail += chunk
            del self.log_tail[:-LOG_CAP]

    def kill_server(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def network_stage(self, plan: list[dict], wait: float) -> dict:
        # the server's pid: model.* checks read /proc/<pid> (grader/evidence.py)
        pid = {"server_pid": self.proc.pid} if self.proc is not None else {}
        plan = [dict(item, params={**item.get("params", {}), **pid}) for item in plan]
        return run_network_stage(("127.0.0.1", self.port), plan, wait)

    def load_phase(self, load: dict) -> LoadStats:
        out = self.out / "locust"
        out.mkdir(exist_ok=True)
        env = dict(os.environ, **self.load_env(load), LOCUST_HOST=f"tcp://127.0.0.1:{self.port}")
        limit = float(load.get("duration", 5)) + 60
        try:
            subprocess.run([sys.executable, "-m", "grader.load.local", str(out / "stats")],
                           cwd=REPO, env=env, timeout=limit, capture_output=True)
        except subprocess.TimeoutExpired:
            raise StackError(f"the load phase did not end within {limit:g} s")
        return read_stats(out / "stats")

    def server_state(self) -> str:
        if self.timed_out:
            return self.timeout_reason()
        if self.proc is None:
            return ""
        if self.proc.poll() is None:
            return self.limit_reasons(self.server_log())
        if self._reader is not None:
            self._reader.join(2)
        return "; ".join(filter(None, [describe_exit(self.proc.returncode),
                                       self.limit_reasons(self.server_log())]))

    def server_log(self) -> str:
        return bytes(self.log_tail).decode("utf-8", "replace")

    def stop(self) -> None:
        self.stop_watchdog()
        if self.proc is None:
            return
        with signals_deferred():
            if self.proc.poll() is None:
                try:
                    os.killpg(self.proc.pid, signal.SIGTERM)
                    self.proc.wait(3)
                except (subprocess.TimeoutExpired, ProcessLookupError):
                    pass
            try:  # its children too, even when the server itself has exited
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                self.proc.wait(3)
            except subprocess.TimeoutExpired:
                pass
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
    try:
        import resource
    except ImportError:  # Windows: no rlimits
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


@contextmanager
def signals_deferred():
    """Hold SIGINT/SIGTERM off while a teardown runs (main thread only); re-raise after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    old = {sig: signal.signal(sig, lambda s, _f: caught.append(s))
           for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
        if caught:  # now act on the first one as its handler would have
            handler = old[caught[0]]
            if callable(handler):
                handler(caught[0], None)
            raise KeyboardInterrupt


ACTIVE_PROJECTS: set[str] = set()  # started and not yet torn down


@atexit.register
def _remove_active_projects() -> None:
    """Last resort: a second Ctrl-C that cut a teardown short still leaves nothing."""
    for project in sorted(ACTIVE_PROJECTS):
        remove_project(project)


def remove_project(project: str) -> None:
    """Remove any container, network or volume of a compose project that is left."""
    label = f"label=com.docker.compose.project={project}"
    for ls, rm in ((["ps", "-aq"], ["rm", "-f", "-v"]), (["network", "ls", "-q"], ["network", "rm"]),
                   (["volume", "ls", "-q"], ["volume", "rm", "-f"])):
        try:
            ids = subprocess.run(["docker", *ls, "--filter", label], capture_output=True,
                                 text=True, timeout=60).stdout.split()
            if ids:
                subprocess.run(["docker", *rm, *ids], capture_output=True, timeout=120)
        except (OSError, subprocess.SubprocessError):
            pass


def cgroup_events(pid: int) -> dict[str, int]:
    """From the host: how often the container of `pid` hit its pids limit and had a
    process killed for memory (cgroup v1 and v2). {} when it cannot be read."""
    events: dict[str, int] = {}
    try:
        lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    except OSError:
        return events
    paths = {}
    for line in lines:
        _, controllers, path = line.split(":", 2)
        for c in controllers.split(",") if controllers else [""]:
            paths[c] = path
    root = Path("/sys/fs/cgroup")
    files = {"pids": [root / "pids" / paths.get("pids", "").lstrip("/") / "pids.events",
                      root / paths.get("", "").lstrip("/") / "pids.events"],
             "memory": [root / "memory" / paths.get("memory", "").lstrip("/") / "memory.oom_control",
                        root / paths.get("", "").lstrip("/") / "memory.events"]}
    for kind, candidates in files.items():
        for file in candidates:
            try:
                pairs = dict(line.split()[:2] for line in file.read_text().splitlines() if line)
            except (OSError, ValueError):
                continue
            if kind == "pids":
                events["pids_max"] = int(pairs.get("max", 0))
            else:
                events["oom_kill"] = int(pairs.get("oom_kill", 0))
            break
    return events


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
    return f"your server exited with code {code}: see the end of its log (server.log)"


def mib(size: int) -> str:
    return f"{size / 1024 ** 3:g} GiB" if size >= 1024 ** 3 else f"{size / 1024 ** 2:g} MiB"


def os_name_env(os_name: str) -> str:
    return "" if os_name == "native" else os_name


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False
