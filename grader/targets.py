"""Where the server under test runs: a Compose stack, or a local subprocess.

Both targets offer the same four steps (start, network stage, load phase,
stop) so the runner and every check are shared by the two modes (Contract 5).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from grader.errors import StackError, UsageError
from grader.load.stats import LoadStats, read_stats
from grader.stage import run_network_stage

REPO = Path(__file__).resolve().parent.parent
LOG_CAP = 64 * 1024  # what we keep of a server's stdout/stderr


class Target:
    """A server under test: a submission folder and the file to run in it."""

    def __init__(self, run_dir: Path, label: str, folder: Path, entry: str, os_name: str):
        self.run_dir, self.label, self.folder, self.entry, self.os_name = (
            run_dir, label, folder.resolve(), entry, os_name)
        self.out = run_dir / label
        self.out.mkdir(parents=True, exist_ok=True)

    def load_env(self, load: dict) -> dict[str, str]:
        return {
            "IOLAB_USERS": str(load.get("users", 20)),
            "IOLAB_SPAWN_RATE": str(load.get("spawn_rate", load.get("users", 20))),
            "IOLAB_DURATION": str(load.get("duration", 5)),
            "IOLAB_LINE_SIZE": str(load.get("line_size", 1024)),
            "IOLAB_PIPELINE": str(load.get("pipeline", 1)),
            "IOLAB_WORKERS": str(load.get("workers", 1)),
        }


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

    def __init__(self, *args, run_id: str, image: str = "iolab-runtime:latest"):
        super().__init__(*args)
        self.project = re.sub(r"[^a-z0-9_-]", "-", f"iolab-{run_id}-{self.label}".lower())
        self.compose = compose_command() + ["-p", self.project, "-f", str(REPO / "compose.yaml")]
        self.env = dict(os.environ, IOLAB_IMAGE=image, IOLAB_SUBMISSION=str(self.folder),
                        IOLAB_ENTRY=self.entry, IOLAB_OS=os_name_env(self.os_name),
                        IOLAB_RESULTS=str(run_dir_abs(self.run_dir)),
                        IOLAB_LOCUST_OUT=f"/results/{self.label}/locust",
                        IOLAB_UID=str(os.getuid()), IOLAB_GID=str(os.getgid()))

    def _compose(self, *args: str, env: dict | None = None, timeout: float = 300,
                 check: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run([*self.compose, *args], env=env or self.env, cwd=REPO,
                              capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            raise StackError(f"`compose {' '.join(args[:2])}` failed: {' | '.join(tail)}")
        return proc

    def start(self) -> None:
        self._compose("up", "-d", "--no-color", "server")

    def network_stage(self, plan: list[dict], wait: float) -> dict:
        (self.out / "plan.json").write_text(json.dumps(plan))
        inside = f"/results/{self.label}"
        self._compose("run", "--rm", "--no-deps", "-T", "grader", "python", "-m", "grader",
                      "stage", "server:9000", f"{inside}/plan.json", f"{inside}/network.json",
                      str(wait), timeout=wait + 600)
        return json.loads((self.out / "network.json").read_text())

    def load_phase(self, load: dict) -> LoadStats:
        (self.out / "locust").mkdir(exist_ok=True)
        env = dict(self.env, **self.load_env(load))
        workers = str(load.get("workers", 1))
        self._compose("up", "-d", "--no-color", "--scale", f"locust-worker={workers}",
                      "locust-master", "locust-worker", env=env)
        master = self._compose("ps", "-q", "locust-master", env=env).stdout.strip()
        limit = float(load.get("duration", 5)) + 90
        try:
            subprocess.run(["docker", "wait", master], capture_output=True, timeout=limit)
        except subprocess.TimeoutExpired:
            raise StackError(f"the load phase did not end within {limit:g} s")
        return read_stats(self.out / "locust" / "stats")

    def server_state(self) -> str:
        """'' while healthy; otherwise how the server container ended."""
        cid = self._compose("ps", "-q", "server", check=False).stdout.strip()
        if not cid:
            return "the server container is gone"
        proc = subprocess.run(["docker", "inspect", "-f",
                               "{{.State.Running}} {{.State.OOMKilled}} {{.State.ExitCode}}", cid],
                              capture_output=True, text=True)
        running, oom, code = (proc.stdout.split() + ["", "", ""])[:3]
        if running == "true":
            return ""
        if oom == "true":
            return "your server was killed: out of memory"
        return describe_exit(int(code or 0))

    def server_log(self) -> str:
        proc = self._compose("logs", "--no-color", "server", check=False)
        return (proc.stdout + proc.stderr)[-LOG_CAP:]

    def stop(self) -> None:
        self._compose("down", "-v", "--remove-orphans", "-t", "2", check=False, timeout=120)


class LocalTarget(Target):
    """The server as a subprocess on loopback; Locust in a library-API process."""

    def __init__(self, *args, port: int | None = None):
        super().__init__(*args)
        self.port = port or free_port()
        self.proc: subprocess.Popen | None = None
        self.log_file = self.out / "server.log"

    def start(self) -> None:
        if not port_free(self.port):
            raise UsageError(f"port {self.port} is already in use on 127.0.0.1: "
                             "stop what listens there or choose another with --port")
        env = dict(os.environ, HOST="127.0.0.1", PORT=str(self.port),
                   IOLAB_OS=os_name_env(self.os_name),
                   PYTHONPATH=str(REPO / "servers" / "osprofile"))
        with self.log_file.open("wb") as log:
            self.proc = subprocess.Popen([sys.executable, self.entry], cwd=self.folder, env=env,
                                         stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)

    def network_stage(self, plan: list[dict], wait: float) -> dict:
        return run_network_stage(("127.0.0.1", self.port), plan, wait)

    def load_phase(self, load: dict) -> LoadStats:
        out = self.out / "locust"
        out.mkdir(exist_ok=True)
        env = dict(os.environ, **self.load_env(load), LOCUST_HOST=f"tcp://127.0.0.1:{self.port}")
        limit = float(load.get("duration", 5)) + 60
        subprocess.run([sys.executable, "-m", "grader.load.local", str(out / "stats")],
                       cwd=REPO, env=env, timeout=limit, capture_output=True)
        return read_stats(out / "stats")

    def server_state(self) -> str:
        if self.proc is None or self.proc.poll() is None:
            return ""
        return describe_exit(self.proc.returncode)

    def server_log(self) -> str:
        data = self.log_file.read_bytes() if self.log_file.exists() else b""
        return data[-LOG_CAP:].decode("utf-8", "replace")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(3)
        except (subprocess.TimeoutExpired, ProcessLookupError):
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(3)


def describe_exit(code: int) -> str:
    if code < 0 or code > 128:
        signum = -code if code < 0 else code - 128
        name = signal.Signals(signum).name if signum in signal.Signals._value2member_map_ else signum
        return f"your server was killed by signal {name}"
    return f"your server exited with code {code}"


def os_name_env(os_name: str) -> str:
    return "" if os_name == "native" else os_name


def run_dir_abs(path: Path) -> Path:
    return path.resolve()


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


def wait_for(predicate, timeout: float, step: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return False
