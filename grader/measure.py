"""`python -m grader measure lab-3`: the course notes' central claim, measured on
your own select, poll and epoll servers.

The notes say select and poll get slower as the number of watched connections
grows and epoll does not. For each server (the lab's select, poll and epoll
exercises in your submission folder; default the lab's starter) and each level
of connections held (0, 100, 500, 1000, 2000, 5000), this starts the server
afresh and measures two things while the connections are held:

- the CPU time of one wait call (select() / poll() / epoll.poll()), recorded
  inside the server by a thin probe (servers/waitprobe/sitecustomize.py, put
  on its PYTHONPATH; the records go to this run's folder, not your
  submission): what the notes literally claim;
- the reply latency (p50, p99, in µs) of one active client (Locust's LineUser,
  in a process of its own as in `make bench`): what the claim costs a client.

Two modes: `idle` (the held connections are silent: LurkerUser) and `active`
(each held connection sends a line every CHORUS_PERIOD s: ChorusUser), where
most connections are ready at once and epoll's edge shrinks.

Local mode, always, and on loopback: the server is a subprocess pinned to one
core (the grading sandbox gives it one CPU; bench does the same) and the load
generator runs on the others. Not docker mode, because (1) the sandbox allows
4096 file descriptors (lab.yaml's limits), too few for 5000 connections;
(2) its one CPU is a CFS quota, which throttles a busy server in 100 ms slices
and would show in the latency as the quota, not as select(); (3) what is
measured is a system call's CPU cost, which the network path does not change.
Loopback is honest for that figure; the latencies are loopback latencies, and
every figure is for comparing the servers within one run on one machine.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import select
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from grader.errors import UsageError
from grader.labspec import Lab
from grader.load.lock import exclusive_load
from grader.paths import REPO
from grader.proc import NotListening, raise_fd_limit, start_server, stop_group
from grader.runner import check_submission
from servers.waitprobe.sitecustomize import HEADER, KINDS, MAGIC, RECORD

LEVELS = (0, 100, 500, 1000, 2000, 5000)
MODELS = ("select", "poll", "epoll")
MODES = ("idle", "active")
ACTIVE_CLIENTS = 1     # the client whose replies are timed
LINE_SIZE = 64         # bytes per line: the wait call, not the copying, should dominate
CHORUS_PERIOD = 0.5    # active mode: each held connection sends a line this often (s)
PROBE = REPO / "servers" / "waitprobe"
FD_MARGIN = 64         # fds a process needs besides the connections it holds


@dataclass
class Subject:
    """One server to measure: an exercise's server file in the submission."""
    name: str
    model: str
    path: Path
    missing: str = ""  # why it cannot run ("" when it can)


@dataclass
class Point:
    """One server, one mode, one level: what the probe and the load generator saw."""
    server: str
    mode: str
    level: int
    status: str = "ok"  # ok, crashed, refused, no replies, did not start, error, not run
    note: str = ""
    cause: str = ""     # in a few words: the exception, or how many it held
    held: int = 0
    calls: int = 0
    watched: float = 0.0         # median fds per wait call
    ready: float = 0.0           # mean fds returned ready per call
    wait_us: float = 0.0         # median CPU µs of one wait call
    wait_us_mean: float = 0.0
    wait_us_per_reply: float = 0.0
    replies: int = 0             # the active client's, in the window
    chorus_replies: int = 0      # active mode: the held connections' replies
    errors: int = 0
    p50_us: float = 0.0
    p99_us: float = 0.0
    server_cpu_us_per_reply: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@dataclass
class Measurement:
    lab: str
    submission: Path
    folder: Path
    subjects: list[Subject]
    levels: list[int]
    modes: list[str]
    duration: float
    points: list[Point] = field(default_factory=list)
    machine: dict = field(default_factory=dict)
    seconds: float = 0.0

    def series(self, mode: str, server: str) -> list[Point]:
        return [p for p in self.points if p.mode == mode and p.server == server]

    def stopped(self, mode: str) -> list[Point]:
        return [p for p in self.points if p.mode == mode and p.status not in ("ok", "not run")]

    def notes(self, mode: str) -> list[str]:
        """Where a server stopped, one line each (the page and the terminal)."""
        return [f"{p.server} at {p.level}: {p.status}: {p.note}" for p in self.stopped(mode)]

    def chart_notes(self, mode: str) -> list[str]:
        """The same, short enough for a chart: where it stops is said, not a silent gap."""
        return [f"{p.server} stops at {p.level}: {p.status}" + (f" ({p.cause[:70]})"
                                                                 if p.cause else "")
                for p in self.stopped(mode)]


def subjects(lab: Lab, submission: Path) -> list[Subject]:
    """The lab's first exercise of each model, in the submission; a lone .py file is
    measured alone, named after itself."""
    firsts = (next((e for e in lab.exercises if e.model == model and e.kind == "server"), None)
              for model in MODELS)
    exercises = [ex for ex in firsts if ex is not None]
    if not exercises:
        raise UsageError(f"{lab.name} has no select, poll or epoll exercise to measure: "
                         "measure lab-3")
    if check_submission(submission):
        name = submission.stem.removesuffix("_server")
        return [Subject(name, name, submission)]
    found = []
    for ex in exercises:
        model = ex.model
        path = submission / ex.path / ex.entry
        missing = "" if path.is_file() else f"not submitted: {path} does not exist"
        if model == "epoll" and not hasattr(select, "epoll"):
            missing = "epoll is Linux-only: this machine has no select.epoll"
        found.append(Subject(ex.id, model, path, missing))
    if all(s.missing for s in found):
        raise UsageError(f"{submission} has none of {', '.join(str(s.path) for s in found)}: "
                         "pass your lab-3 folder with --submission")
    return found


def measure(lab: Lab, submission: Path, folder: Path, *, levels=LEVELS, modes=MODES,
            duration: float = 2.0, progress=print) -> Measurement:
    """Every subject at every level, per mode; levels interleaved across servers so
    the machine's noise meets them alike. A server that crashed or refused at a level
    is not run at higher ones (the note says where it stopped)."""
    run = Measurement(lab.name, submission, folder, subjects(lab, submission), list(levels),
                      list(modes), duration)
    (folder / "logs").mkdir(parents=True, exist_ok=True)
    raise_fd_limit()
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    run.machine = machine()
    started = time.monotonic()
    for mode in modes:
        stopped: dict[str, Point] = {}
        for level in levels:
            if mode == "active" and not level:
                continue  # no connection to make active
            for subject in run.subjects:
                point = Point(subject.name, mode, level)
                if subject.missing:
                    point.status, point.note = "not run", subject.missing
                elif subject.name in stopped:
                    point.status = "not run"
                    point.note = f"stopped at {stopped[subject.name].level}"
                elif level + FD_MARGIN > nofile:
                    point.status = "not run"
                    point.note = f"RLIMIT_NOFILE is {nofile}: raise `ulimit -n`"
                else:
                    point = run_point(subject, mode, level, duration, folder)
                    progress(show(point))
                    if point.status in ("crashed", "refused", "did not start"):
                        stopped[subject.name] = point
                run.points.append(point)
    run.seconds = time.monotonic() - started
    run.machine["load_after"] = os.getloadavg()[0]
    return run


def run_point(subject: Subject, mode: str, level: int, duration: float, folder: Path) -> Point:
    """Start the server with the probe, hold `level` connections, time the active client."""
    point = Point(subject.name, mode, level)
    tag = f"{subject.name}-{mode}-{level}"
    probe, log = folder / f"{tag}.waits", folder / "logs" / f"{tag}.log"
    env = {"PYTHONPATH": str(PROBE), "IOLAB_WAITPROBE": str(probe), "IOLAB_OS": ""}
    with exclusive_load(), log.open("wb") as out:
        try:
            proc, port = start_server(subject.path.resolve(), env=env, cwd=subject.path.resolve().parent,
                                      stdout=out, wait=15, preexec_fn=pin(server_cores()))
        except NotListening as exc:
            point.status, point.cause = "did not start", last_line(log)
            point.note = f"{exc}: {point.cause}"
            probe.unlink(missing_ok=True)
            return point
        try:
            result = loadgen(port, proc.pid, mode, level, duration)
            alive = proc.poll() is None
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            point.status, point.note = "error", f"no measurement: {exc}"
            probe.unlink(missing_ok=True)
            return point
        finally:
            stop_group(proc, grace=2)
    try:
        judge(point, result, alive, log)
        if point.status in ("ok", "refused"):
            waits(point, probe, result)
    finally:
        probe.unlink(missing_ok=True)
    return point


def loadgen(port: int, pid: int, mode: str, level: int, duration: float) -> dict:
    env = dict(os.environ, IOLAB_LINE_SIZE=str(LINE_SIZE), IOLAB_PIPELINE="1",
               IOLAB_REPLY_TIMEOUT="2", IOLAB_LURK_CONNECTIONS=str(per_user(level)),
               IOLAB_LURK_CHECK="3600", IOLAB_CHORUS_PERIOD=str(CHORUS_PERIOD))
    clients = ACTIVE_CLIENTS if mode == "idle" else 0  # active: the chorus is timed
    cfg = {"host": f"tcp://127.0.0.1:{port}", "clients": clients, "idle": level,
           "chorus": mode == "active", "duration": duration, "warmup": 0.5,
           "server_pid": pid, "connect_wait": 60, "settle": True}
    others = set(os.sched_getaffinity(0)) - server_cores() if hasattr(os, "sched_getaffinity") \
        else set()
    proc = subprocess.run([sys.executable, "-m", "grader.load.loadgen", json.dumps(cfg)],
                          cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=duration + 150, preexec_fn=pin(others))
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"the load generator failed: {proc.stderr[-800:]}")
    return json.loads(lines[-1])


def per_user(level: int) -> int:
    """Connections per LurkerUser/ChorusUser: at most 1000 each, `level` in all
    (1100 is 2 x 550, not 2 x 1000)."""
    users = max(1, -(-level // 1000))
    return max(1, -(-level // users))


def judge(point: Point, result: dict, alive: bool, log: Path) -> None:
    """ok, or where and how the server stopped coping: crashed, refused, no replies."""
    point.held, point.errors = result["idle_held"], result["errors"] + result["chorus_errors"]
    point.replies, point.chorus_replies = result["replies"], result["chorus_replies"]
    if point.mode == "active":  # no LineUser: each chorus reply, timed from its round's start
        point.p50_us, point.p99_us = result["chorus_p50_us"], result["chorus_p99_us"]
    else:
        point.p50_us, point.p99_us = result["p50_us"], result["p99_us"]
    served = point.replies + point.chorus_replies
    if result["server_cpu_s"] and served:
        point.server_cpu_us_per_reply = result["server_cpu_s"] * 1e6 / served
    if not alive:
        point.status, point.cause = "crashed", last_line(log)
        point.note = (f"the server exited while {point.level} connections were opened "
                      f"({result['idle_connected']} connected): {point.cause}")
    elif point.held < point.level:
        point.status, point.cause = "refused", f"held {point.held}"
        point.note = (f"it held {point.held} of {point.level} connections "
                      f"({result['idle_connected']} connected, the rest closed or refused)"
                      f"{select_limit(point)}")
    elif not served:
        point.status, point.cause = "no replies", result["first_error"] or "none came"
        point.note = f"no client got a reply: {point.cause}"


def select_limit(point: Point) -> str:
    return (" (select() cannot watch fd 1024 or above: FD_SETSIZE)"
            if point.server == "select" and 900 <= point.held < 1024 else "")


def waits(point: Point, probe: Path, result: dict) -> None:
    """The probe's calls inside the load generator's window -> the point's wait figures."""
    start, end = result["window_ns"]
    calls, overhead = read_probe(probe)
    inside = [c for c in calls if start <= c[0] and c[0] + c[5] * 1000 <= end]
    if not inside:
        point.note = (point.note + "; " if point.note else "") + \
            "no wait call recorded (does it use select.select, select.poll or select.epoll?)"
        return
    cpu = [max(0, c[1] - overhead) / 1000 for c in inside]
    point.calls = len(inside)
    point.wait_us, point.wait_us_mean = statistics.median(cpu), statistics.fmean(cpu)
    point.watched = statistics.median(c[2] for c in inside)
    point.ready = statistics.fmean(c[3] for c in inside)
    served = point.replies + point.chorus_replies
    point.wait_us_per_reply = sum(cpu) / served if served else 0.0


def read_probe(path: Path) -> tuple[list[tuple[int, int, int, int, str, int]], int]:
    """(start ns, CPU ns, watched, ready, kind, wall µs) per call, and the clock
    overhead (ns)."""
    if not path.exists():
        return [], 0
    with path.open("rb") as fh:
        magic, count, _capacity, overhead = HEADER.unpack(fh.read(HEADER.size))
        if magic != MAGIC:
            return [], 0
        data = fh.read(count * RECORD.size)
    return [(s, c, w, r, KINDS[k], us) for s, c, w, r, k, us in RECORD.iter_unpack(data)], \
        overhead


def last_line(log: Path) -> str:
    """The server log's last non-empty line: a crash's exception."""
    try:
        lines = [x for x in log.read_text(errors="replace").splitlines() if x.strip()]
    except OSError:
        return ""
    return lines[-1].strip()[:300] if lines else "(its log is empty)"


def server_cores() -> set[int]:
    """One core for the server (the sandbox gives it one CPU): the highest one."""
    if not hasattr(os, "sched_getaffinity"):
        return set()
    return {max(os.sched_getaffinity(0))}


def pin(cores: set[int]):
    if not cores or not hasattr(os, "sched_setaffinity"):
        return None
    return lambda: os.sched_setaffinity(0, cores)


def machine() -> dict:
    model = platform.processor() or "unknown"
    if Path("/proc/cpuinfo").exists():
        model = next((line.split(":", 1)[1].strip() for line in
                      Path("/proc/cpuinfo").read_text().splitlines()
                      if line.startswith("model name")), model)
    return {"nproc": os.cpu_count(), "cpu": model, "kernel": platform.release(),
            "python": platform.python_version(),
            "nofile": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
            "load_before": os.getloadavg()[0], "pinned": sorted(server_cores())}


def show(p: Point) -> str:
    """One progress line per point."""
    head = f"  {p.mode:<6} {p.server:<8} {p.level:>5} held"
    if p.status != "ok":
        return f"{head}  {p.status.upper()}: {p.note}"
    return (f"{head}  {p.wait_us:>8.1f} µs/wait call ({p.watched:.0f} fds, "
            f"{p.ready:.1f} ready)  reply p50 {p.p50_us:>6.0f} µs  p99 {p.p99_us:>6.0f} µs")


def as_rows(run: Measurement) -> list[dict]:
    return [asdict(p) for p in run.points]
