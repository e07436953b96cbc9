"""What relative load thresholds are judged against, measured once per machine.

A relative threshold (`min_rps_ratio`, `max_p95_ratio`) compares a submission's
load phase with a calibration: a known server under the same Locust load, in the
same place (a container with the exercise's limits, or a local subprocess), on
the same machine, close in time. The one place that decides:

- which server: lab.yaml `load: {calibration: reference | yardstick}`; by default
  the exercise's reference server when lab.yaml names one, else the yardstick
  (grader/yardstick/echo_server.py, an echo server that fails every LINE/1
  check, so a student handout without references still self-grades);
- when it is measured: once per machine, then reused from a cache file while it
  is fresh (CACHE_ENV, default ~/.cache/iolab/calibration/) — at most MAX_AGE
  minutes old and measured at a 1-min load average within LOAD_SWING of the one
  now. IOLAB_CALIBRATION=fresh measures it every time (batch grading sets it on
  each machine's first grading, grader/job.py). Measured and written under the
  machine's load lock (grader/load/lock.py), the file replaced atomically, so
  graders running side by side neither overlap their load phases nor read half
  a file;
- how the yardstick's figures stand for the reference's: SCALES below.

Why a cache and not a measurement per submission: measuring the reference in
every load phase doubled each load phase's time (issue 12 §2); a calibration
minutes old on the same machine at the same load average is as good a measure
of the machine, and far cheaper.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import socket
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from grader.checks import Stage
from grader.checks.load import REFERENCE, Scale
from grader.labspec import Exercise
from grader.load.stats import LoadStats
from grader.paths import REPO
from grader.progress import ticking
from grader.targets import make_target
from grader.targets.base import load_workers

SOURCES = ("reference", "yardstick")
YARDSTICK = REPO / "grader" / "yardstick" / "echo_server.py"
LOCUSTFILE = REPO / "grader" / "load" / "locustfile.py"
CACHE_ENV = "IOLAB_CACHE"  # the cache folder (default ~/.cache/iolab)
FRESH_ENV = "IOLAB_CALIBRATION"  # "fresh": measure every time (grader/job.py sets it)
MAX_AGE_ENV = "IOLAB_CALIBRATION_MAX_AGE"  # minutes a calibration stays fresh
MAX_AGE = 10.0
# A calibration is measured again when the 1-min load average moved by more than this
# factor either way. Load averages under the machine's core count are counted as that:
# no run queue forms below it (between 0.5 and 1.6 on two cores, our own runs' swing,
# the machine is not busy either way, and the ratio would say "moved 3.2×").
LOAD_SWING = 1.5
LOAD_FLOOR = float(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                   else os.cpu_count() or 1)
WAIT_FOR_SERVER = 20.0

# The yardstick's figures as the reference's, per mode and exercise model: the
# reference's replies/s per yardstick reply/s, and its p95 per yardstick p95 (the
# reference itself is 1, 1). Measured on the project's shared 2-core machine with
# `python -m bench.calibration` (bench/results/2026-11-29-calibration/): the reference
# and the yardstick back to back under the exercise's load (20 users, 1 KiB lines, 5 s),
# order alternating, ratio = reference / yardstick per pair; factor = median, rounded.
#   local (load average 11-19, 3 pairs each): select 0.86, poll 0.93, epoll 0.87,
#     selectors 1.07, asyncio 0.89 (all pairs 0.61-1.72; p95 median 1.10): the echo
#     server does a little less per line (no length prefix). nonblocking 0.31 (0.18-0.31;
#     p95 4.4): the reference spins (the lab-2 lesson) and steals Locust's CPU, the
#     yardstick waits. thread 1.27 (0.55-1.52), fork 0.75, threadpool 1.03.
#   docker (server on a 1-CPU quota, Locust in its own containers; load average 4-6,
#     2 pairs each): select 1.06, epoll 1.05 (p95 0.84, 1.24), asyncio 0.83 (p95 1.57),
#     nonblocking 0.52 (p95 6.0: its spinning costs less when Locust has its own core);
#     at load average 15-25: thread 0.46 (p95 3.5), threadpool 0.96 (p95 1.5); fork
#     0.06-5.2 at load 15-48, unusable: local's factor.
# One pair differs from the next by up to 2x on this machine, so these factors are
# coarse; what they must do is keep a ratio in lab.yaml meaning about the same with
# either calibration: tests/test_calibration.py checks that the verdicts agree.
MULTIPLEXING = ("select", "poll", "epoll", "epoll_et", "kqueue", "selectors")
SCALES: dict[str, dict[str, Scale]] = {
    "local": {**{m: Scale("yardstick", 0.9, 1.1) for m in MULTIPLEXING},
              "asyncio": Scale("yardstick", 0.9, 1.1),
              "nonblocking": Scale("yardstick", 0.3, 4.4),
              "thread": Scale("yardstick", 1.0, 1.0),  # 0.55-1.52: noise, no lean
              "fork": Scale("yardstick", 0.75, 1.5),
              "threadpool": Scale("yardstick", 1.0, 1.1)},
    "docker": {**{m: Scale("yardstick", 1.05, 1.0) for m in MULTIPLEXING},
               "asyncio": Scale("yardstick", 0.85, 1.5),
               "nonblocking": Scale("yardstick", 0.5, 6.0),
               "thread": Scale("yardstick", 0.45, 3.5),
               "fork": Scale("yardstick", 0.75, 1.5),
               "threadpool": Scale("yardstick", 0.95, 1.5)},
}
DEFAULT_YARDSTICK = Scale("yardstick", 1.0, 1.0)


def source_of(ex: Exercise) -> str:
    """reference | yardstick: lab.yaml's load.calibration, else the reference when the
    exercise names one (a handout has none: the yardstick)."""
    chosen = (ex.load or {}).get("calibration")
    if chosen:
        return chosen
    return "reference" if ex.reference else "yardstick"


def scale_of(ex: Exercise, source: str, mode: str) -> Scale:
    """How this calibration's figures stand for the reference's (SCALES)."""
    if source == "reference":
        return REFERENCE
    return SCALES.get(mode, SCALES["local"]).get(ex.model, DEFAULT_YARDSTICK)


def needed(ex: Exercise, os_name: str, params_of) -> bool:
    """A load check that runs under os_name has a relative threshold set.
    params_of(ex, check): the check's resolved parameters (runner.load_params)."""
    return any(params_of(ex, c).get(name) is not None for c in ex.checks
               if c.stage == Stage.LOAD and c.runs_on(os_name)
               for name in c.spec.relative_params)


def server_of(ex: Exercise, source: str) -> tuple[Path, str]:
    """(folder, entry) of the calibration server."""
    if source == "yardstick":
        return YARDSTICK.parent, YARDSTICK.name
    path = REPO / ex.reference
    return (path.parent, path.name) if path.is_file() else (path, ex.entry)


def load_average() -> float:
    try:
        return os.getloadavg()[0]
    except (OSError, AttributeError):  # Windows: no load average
        return 0.0


@dataclass
class Calibration:
    """One measurement of a calibration server, and how this run came by it."""

    source: str  # reference | yardstick
    server: str  # the file measured, relative to the repository
    stats: LoadStats | None
    measured_at: float  # epoch seconds
    load_average: float  # 1-min load average when its load phase began
    key: dict = field(default_factory=dict)
    reused: bool = False
    why: str = ""  # why it was measured now, or why the cached one was still good
    scale: Scale = REFERENCE

    def to_dict(self) -> dict:
        """What run.json and results.json say about it (no statistics: those are
        report.load's calibration side)."""
        return {"source": self.source, "server": self.server, "reused": self.reused,
                "why": self.why, "measured_at": time.strftime(
                    "%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.measured_at)),
                "age_s": round(max(0.0, time.time() - self.measured_at), 1),
                "load_average": round(self.load_average, 2),
                "scale": {"rps": self.scale.rps, "p95": self.scale.p95}}

    def describe(self) -> str:
        when = ("measured now" if not self.reused else
                f"measured {age(time.time() - self.measured_at)} ago, reused")
        return (f"the {self.source} {self.server} ({when}, load average "
                f"{self.load_average:.1f}): {self.why}")


def age(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"


# --- the cache --------------------------------------------------------------------

def cache_dir() -> Path:
    base = os.environ.get(CACHE_ENV) or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "iolab")
    return Path(base) / "calibration"


def file_hash(*paths: Path) -> str:
    digest = hashlib.sha256()
    for path in paths:
        files = sorted(path.rglob("*.py")) if path.is_dir() else [path]
        for file in files:
            digest.update(file.name.encode() + b"\0" + file.read_bytes())
    return digest.hexdigest()[:16]


def cache_key(lab: str, ex: Exercise, source: str, mode: str, os_name: str) -> dict:
    """Everything that changes what the calibration measures: the lab, the load and the
    limits, the server and the Locust user (their content), where it runs, the machine."""
    from grader import sandbox  # local mode as root: a sandboxed server is slower
    load = {k: v for k, v in (ex.load or {}).items() if k not in ("thresholds", "calibration")}
    folder, entry = server_of(ex, source)
    # the whole folder: a reference imports its neighbours (servers/lineproto.py)
    content = file_hash(folder / entry if source == "yardstick" else folder, LOCUSTFILE)
    return {"lab": lab, "load": load, "workers": load_workers(ex.load or {}),
            "limits": ex.limits, "source": source, "server": f"{entry}:{content}",
            "mode": mode, "os": os_name, "sandbox": sandbox.active(),
            "machine": f"{socket.gethostname()}/{platform.machine()}/{os.cpu_count()}"}


def cache_file(key: dict) -> Path:
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    return cache_dir() / f"{key['lab']}-{key['source']}-{digest}.json"


def read_cached(path: Path, key: dict) -> Calibration | None:
    try:
        data = json.loads(path.read_text())
        if data.get("key") != key:
            return None
        return Calibration(source=data["source"], server=data["server"],
                           stats=stats_from(data["stats"]), measured_at=data["measured_at"],
                           load_average=data["load_average"], key=key, reused=True)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_cached(path: Path, cal: Calibration) -> None:
    """Atomically: a grader reading beside us sees the old file or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"source": cal.source, "server": cal.server, "measured_at": cal.measured_at,
            "load_average": cal.load_average, "key": cal.key, "stats": asdict(cal.stats)}
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def stats_from(data: dict) -> LoadStats:
    """LoadStats from its asdict(): JSON made the per-second keys strings."""
    data = dict(data)
    data["span"] = tuple(data["span"]) if data.get("span") else None
    data["per_second"] = {int(k): v for k, v in (data.get("per_second") or {}).items()}
    data["latency_seconds"] = {int(k): {int(b): n for b, n in hist.items()}
                               for k, hist in (data.get("latency_seconds") or {}).items()}
    return LoadStats(**data)


def max_age() -> float:
    """Minutes, from IOLAB_CALIBRATION_MAX_AGE (a bad value: the default)."""
    try:
        return float(os.environ.get(MAX_AGE_ENV, MAX_AGE))
    except ValueError:
        return MAX_AGE


def stale(cached: Calibration | None, load_now: float) -> str:
    """Why `cached` cannot be used now ('' when it can)."""
    if os.environ.get(FRESH_ENV, "").strip().lower() == "fresh":
        return f"{FRESH_ENV}=fresh"
    if cached is None or cached.stats is None or cached.stats.requests == 0:
        return "none measured on this machine yet"
    old = time.time() - cached.measured_at
    if old > max_age() * 60 or old < -60:
        return f"the last one is {age(old)} old (fresh for {max_age():g} min)"
    then, now = max(cached.load_average, LOAD_FLOOR), max(load_now, LOAD_FLOOR)
    if now / then > LOAD_SWING or then / now > LOAD_SWING:
        return (f"the load average moved from {cached.load_average:.1f} to {load_now:.1f} "
                "since the last one")
    return ""


# --- measuring ----------------------------------------------------------------------

def calibrate(report, ex: Exercise, progress, load_now: float, again: str = "") -> Calibration:
    """The calibration for `ex` in this run: the cached one while fresh, else measured
    now (and cached when it served replies). Call it holding the machine's load lock.
    `load_now`: the 1-min load average when the submission's load phase began;
    `again`: measure now whatever the cache holds, for this reason."""
    source = source_of(ex)
    key = cache_key(report.lab.name, ex, source, report.mode, report.os_name)
    path = cache_file(key)
    cached = None if again else read_cached(path, key)
    why = again or stale(cached, load_now)
    if not why:
        cached.scale, cached.why = scale_of(ex, source, report.mode), (
            f"fresh for {max_age():g} min while the load average stays within "
            f"{LOAD_SWING:g}× (now {load_now:.1f}); {FRESH_ENV}=fresh measures it again")
        progress(f"[{ex.id}] calibration: {cached.describe()}")
        return cached
    cal = measure(report, ex, source, progress, why)
    cal.key = key
    if cal.stats is not None and cal.stats.requests > 0 and cal.stats.failures == 0:
        write_cached(path, cal)
    return cal


def measure(report, ex: Exercise, source: str, progress, why: str = "") -> Calibration:
    """The calibration server under the exercise's load, where the submission ran."""
    folder, entry = server_of(ex, source)
    label = f"{ex.id}-{'reference' if source == 'reference' else 'calibration'}"
    shown = (folder / entry).relative_to(REPO) if (folder / entry).is_relative_to(REPO) else entry
    target = make_target(report.mode, run_dir=report.folder, label=label, folder=folder,
                         entry=entry, os_name=report.os_name, limits=ex.limits,
                         run_id=report.run_id)
    load = dict(ex.load or {}, protocol="echo" if source == "yardstick" else "line")
    progress(f"[{ex.id}] calibration: measuring the {source} {shown} under the same load "
             f"({why})")
    cal = Calibration(source=source, server=str(shown), stats=None, measured_at=time.time(),
                      load_average=load_average(), why=f"measured now: {why}",
                      scale=scale_of(ex, source, report.mode))
    try:
        target.start()
        target.prepare_load(load)  # Locust starts while the server comes up
        if not target.network_stage([], WAIT_FOR_SERVER)["listening"]:
            return cal
        cal.measured_at, cal.load_average = time.time(), load_average()
        with ticking(progress, f"[{ex.id}] calibration load", float(load.get("duration", 5))):
            cal.stats = target.load_phase(load)
    finally:
        target.stop()
    return cal
