"""The server in its own sandboxed container, driven through compose.yaml.

Phase by phase under a compose project of its own (iolab-<run-id>-<label>):
`up -d server`, `run grader` (the network stage, inside the stack's network
and the server's PID namespace) while `up locust-master locust-worker` starts
Locust beside it, held at its gate (grader/load/gate.py), then the gate opens
(the load), `down -v`. Never a recreate, so docker-compose 1.29's ContainerConfig trap
never arises; the load phase uses --no-deps so a crashed server stays down.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from concurrent import futures
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from grader.dockercli import ACTIVE_PROJECTS, IMAGE, compose_command, docker, remove_project
from grader.errors import StackError
from grader.load import gate
from grader.load.stats import LoadStats, read_stats
from grader.outcome import Outcome
from grader.paths import REPO
from grader.proc import signals_deferred
from grader.targets.base import LOG_CAP, Target, describe_exit, mib, os_name_env


class DockerTarget(Target):
    """Methods: see Target. The project name carries the run id, unique across
    parallel graders, so stacks never collide."""

    def __init__(self, *, run_id: str, image: str = IMAGE, **kwargs):
        super().__init__(**kwargs)
        self.project = re.sub(r"[^a-z0-9_-]", "-", f"{project_prefix()}-{run_id}-{self.label}".lower())
        self.limits_file = self.write_limits()
        self._server_id = ""
        self._preparing: Future | None = None
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
        """The server container's id: asked once (compose never recreates it, and each
        `compose ps` costs a Compose start-up), then kept."""
        if not self._server_id:  # -a: a server that has exited too (Compose v2 hides it)
            self._server_id = self._compose("ps", "-a", "-q", "server", check=False,
                                            timeout=60).stdout.strip()
        return self._server_id

    def kill_server(self) -> None:
        cid = self.server_id()
        if cid:
            docker("kill", cid)

    def network_stage(self, plan: list[dict], wait: float) -> dict:
        (self.out / "plan.json").write_text(json.dumps(plan))
        inside = f"/results/{self.label}"
        try:
            self._compose("run", "--rm", "--no-deps", "-T", "grader", "python", "-m", "grader",
                          "stage", "server:9000", f"{inside}/plan.json", f"{inside}/network.json",
                          str(wait), timeout=wait + 600)
        except StackError:
            # Should the stage die with the server (a shared PID namespace gone), a
            # dead server is the verdict then, not the engine's error.
            state = self.server_state()
            if not state or self.server_running():
                raise
            outcome = Outcome.not_run("your server stopped while the network checks ran, so "
                                      "they could not finish").to_dict()
            return {"listening": False, "outcomes": [outcome for _ in plan], "seconds": []}
        return json.loads((self.out / "network.json").read_text())

    def server_running(self) -> bool:
        cid = self.server_id()
        return bool(cid) and docker("inspect", "-f", "{{.State.Running}}",
                                    cid).stdout.strip() == "true"

    def load_stack_env(self, load: dict) -> dict:
        """The Compose environment of the load phase. Always the same gate, opened or
        not: a second `up` with a different environment would recreate the containers."""
        return dict(self.env, **self.load_env(load),
                    IOLAB_LOAD_GATE=f"{self.env['IOLAB_LOCUST_OUT']}/{gate.GATE_FILE}")

    def up_load(self, load: dict) -> str:
        """Start Locust's master and workers; the master's container id."""
        # --no-deps: never let compose (re)start the server behind the grader's
        # back; a server that crashed during the network checks stays down.
        env = self.load_stack_env(load)
        self._compose("up", "-d", "--no-color", "--no-deps", "--scale",
                      f"locust-worker={env['IOLAB_WORKERS']}", "locust-master",
                      "locust-worker", env=env)
        return self._compose("ps", "-q", "locust-master", env=env).stdout.strip()

    def _prepare(self, load: dict) -> str:
        self.server_id()  # asked now, off the critical path: the teardown needs it
        return self.up_load(load)

    def prepare_load(self, load: dict) -> None:
        """`up` Locust's master and workers in a thread beside the network stage: a
        Compose command on other services of the same project (the networks exist since
        start()); they wait at the gate, in their locustfile."""
        (self.out / "locust").mkdir(exist_ok=True)
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"{self.project}-load")
        self._preparing = pool.submit(self._prepare, load)
        pool.shutdown(wait=False)  # the one task still runs

    def load_phase(self, load: dict) -> LoadStats:
        gate.open_gate(self.out / "locust" / gate.GATE_FILE)  # and its folder
        preparing, self._preparing = self._preparing, None
        # not prepared, or a second phase: start (or restart) them now; prepared: its
        # StackError, should its `up` have failed
        master = self.up_load(load) if preparing is None else preparing.result()
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
        fields = docker("inspect", "-f", "{{.State.Running}} {{.State.OOMKilled}} "
                        "{{.State.ExitCode}} {{.State.Pid}}", cid).stdout.split()
        running, oom, code, pid = (fields + ["", "", "", ""])[:4]
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

    def exited(self) -> bool:
        try:
            return self.timed_out or not self.server_running()
        except (StackError, OSError, subprocess.SubprocessError):
            return False

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
            if self._preparing is not None:  # a `down` racing an `up` could leave a container
                futures.wait([self._preparing])
            try:
                self._compose("down", "-v", "--remove-orphans", "-t", "2", check=False,
                              timeout=120)
            except StackError:
                pass
            remove_project(self.project)
            ACTIVE_PROJECTS.discard(self.project)


def project_prefix() -> str:
    """iolab, or IOLAB_PROJECT_PREFIX (a cluster worker's own, e.g. iolab-w1: its stacks
    are told apart from another worker's on a shared engine); always starts iolab."""
    prefix = os.environ.get("IOLAB_PROJECT_PREFIX", "").strip().lower() or "iolab"
    return prefix if prefix.startswith("iolab") else f"iolab-{prefix}"


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
