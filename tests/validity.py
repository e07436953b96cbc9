"""The validity cases: every check against servers with exactly its flaw (must fail),
and every reference server on the checks of the exercises that use it (must pass,
or fail where lab.yaml says the lesson is that this model fails). Shared by
tests/test_validity.py (a few runs per case) and tests/validity_table.py
(`make validity RUNS=50`: the table of failures/runs and passes/runs).

Cases come from data only, so rows others add plug in:
- tests/broken/cases.yaml: one row per (check, broken server), schema in its header;
- labs/*/lab.yaml: each server exercise's reference on each of its checks.

One run grades the case's check alone on a fresh server (local mode, the
exercise's sandbox limits): a network check through the network stage, a load
check through a short load phase (and the calibration, when its threshold is
relative). `hog=True` runs it beside a process spinning on one core.
"""

from __future__ import annotations

import os
import subprocess
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from grader.checks import REGISTRY, CheckContext, Stage, run_check
from grader.labspec import DEFAULT_LIMITS, lab_names, load_lab
from grader.load.lock import exclusive_load
from grader.outcome import Outcome
from grader.paths import REPO
from grader.targets.local import LocalTarget

BROKEN = REPO / "tests" / "broken"
CASES_FILE = BROKEN / "cases.yaml"
WAIT = 20.0  # s for a server to listen (a loaded machine starts Python slowly)
LOAD_SECONDS = 2  # a load case's load phase: short (the flaw shows from the first second)
# Checks whose one run takes many seconds (hundreds of clients, load phases): the
# test runs them fewer times (tests/test_validity.py); the table runs them as often.
COSTLY = ("load.", "robust.refuse_past_ceiling", "robust.thread_ceiling", "robust.fd_limit")


@dataclass(frozen=True)
class Case:
    id: str  # "robust.eof × eof_drops_owed" / "robust.eof × servers/select_server.py"
    check: str
    server: Path
    model: str
    expect: str  # "fail": must fail every run; "pass": must pass every run
    params: dict = field(default_factory=dict, hash=False, compare=False)
    os_name: str = "linux"
    limits: dict = field(default_factory=dict, hash=False, compare=False)
    load: dict | None = field(default=None, hash=False, compare=False)
    reference: Path | None = None  # the calibration for relative load thresholds
    flaw: str = ""  # the broken server's name; "" for a reference
    group: str = ""  # a reference's exercise ("lab-3/select"): its checks share one server

    @property
    def stage(self) -> Stage:
        return REGISTRY[self.check].stage

    @property
    def costly(self) -> bool:
        return self.check.startswith(COSTLY)


def broken_cases(path: Path = CASES_FILE) -> list[Case]:
    """tests/broken/cases.yaml, one Case per row (expect: fail unless the row says)."""
    rows = yaml.safe_load(path.read_text(encoding="utf-8")) or []
    cases = []
    for row in rows:
        server = BROKEN / f"{row['broken']}.py"
        reference = REPO / row["reference"] if row.get("reference") else None
        cases.append(Case(id=f"{row['check']} × {row['broken']}", check=row["check"],
                          server=server, model=row.get("model", ""),
                          expect=row.get("expect", "fail"), params=row.get("params") or {},
                          os_name=row.get("os") or "linux",
                          limits={**DEFAULT_LIMITS, **(row.get("limits") or {})},
                          load=row.get("load"), reference=reference, flaw=row["broken"]))
    return cases


def reference_cases() -> list[Case]:
    """Each lab's server exercises: its reference on each of its checks, once per
    distinct (server, check, parameters, model)."""
    cases, seen = [], set()
    for name in lab_names(REPO / "labs"):
        for ex in load_lab(name).exercises:
            if ex.kind != "server" or not ex.reference or not (REPO / ex.reference).is_file():
                continue
            named: set[str] = set()  # an exercise may run a check twice (lab-3's concurrent)
            for entry in ex.checks:
                if not entry.runs_on("linux") or entry.stage == Stage.MODULE:
                    continue
                params = entry.spec.resolve(_params(ex, entry))
                key = (ex.reference, entry.check, repr(sorted(params.items())), ex.model)
                if key in seen:
                    continue
                seen.add(key)
                # its second time under its own title: every case id is one row of the table
                check = f"{entry.check}: {entry.title}" if entry.check in named else entry.check
                named.add(entry.check)
                cases.append(Case(
                    id=f"{check} × {ex.reference} ({name}/{ex.id})", check=entry.check,
                    server=REPO / ex.reference, model=ex.model,
                    expect="fail" if entry.expect == "fail" else "pass", params=params,
                    limits=dict(ex.limits), load=ex.load,
                    reference=REPO / ex.reference, group=f"{name}/{ex.id}"))
    return cases


def _params(ex, entry) -> dict:
    """As the runner gives them: a load check takes the exercise's thresholds too."""
    if entry.stage != Stage.LOAD:
        return dict(entry.params)
    thresholds = (ex.load or {}).get("thresholds") or {}
    return {k: v for k, v in thresholds.items() if k in entry.spec.params} | entry.params


def all_cases() -> list[Case]:
    return broken_cases() + reference_cases()


def run_case(case: Case, workdir: Path) -> Outcome:
    """One run: a fresh server, the case's check alone, the raw outcome (no lesson
    inversion: a lesson's expect is already 'fail')."""
    return run_together([case], workdir)[0]


def run_together(cases: list[Case], workdir: Path) -> list[Outcome]:
    """One run of several network cases of one server (an exercise's checks, in its
    order, as the grader runs them: one network stage), or of one load case."""
    first = cases[0]
    target = _target(first.server, workdir, "server", first)
    try:
        target.start()
        if first.stage == Stage.NETWORK:
            plan = [{"check": c.check, "params": c.params, "model": c.model,
                     "os_name": c.os_name} for c in cases]
            return [Outcome(**o) for o in target.network_stage(plan, WAIT)["outcomes"]]
        return [_load_run(first, target, workdir)]
    finally:
        target.stop()


def groups(cases: list[Case]) -> list[list[Case]]:
    """The cases as runs: a reference exercise's network checks together (one server,
    one stage), every other case alone."""
    together: dict[str, list[Case]] = {}
    alone = []
    for case in cases:
        if case.group and case.stage == Stage.NETWORK:
            together.setdefault(case.group, []).append(case)
        else:
            alone.append([case])
    return list(together.values()) + alone


def _target(server: Path, workdir: Path, label: str, case: Case) -> LocalTarget:
    return LocalTarget(run_dir=workdir, label=label, folder=server.parent, entry=server.name,
                       os_name=case.os_name, limits=case.limits)


def _load_run(case: Case, target: LocalTarget, workdir: Path) -> Outcome:
    if not target.network_stage([], WAIT)["listening"]:
        return Outcome.error("the server never listened")
    load = dict(case.load or {}, duration=LOAD_SECONDS)
    spec = REGISTRY[case.check]
    relative = any(case.params.get(p) is not None for p in spec.relative_params)
    with exclusive_load():
        stats = target.load_phase(load)
        reference = None
        if relative and case.reference:
            calibration = _target(case.reference, workdir, "reference", case)
            try:
                calibration.start()
                if calibration.network_stage([], WAIT)["listening"]:
                    reference = calibration.load_phase(load)
            finally:
                calibration.stop()
    ctx = CheckContext(params=case.params, model=case.model, os_name=case.os_name,
                       load=stats, reference=reference)
    return run_check(spec, ctx)


@contextmanager
def cpu_hog():
    """A process spinning on one core (the last one) for as long as the block runs."""
    code = ("import os\n"
            "try:\n    os.sched_setaffinity(0, {max(os.sched_getaffinity(0))})\n"
            "except (AttributeError, OSError):\n    pass\n"
            "while True:\n    pass\n")
    hog = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.DEVNULL,
                           start_new_session=True)
    try:
        yield hog
    finally:
        hog.kill()
        hog.wait()


def runs(default: int = 2) -> int:
    """IOLAB_VALIDITY_RUNS (make test: 2; CI's .ci/run: 10; make validity: RUNS)."""
    try:
        return max(1, int(os.environ.get("IOLAB_VALIDITY_RUNS", default)))
    except ValueError:
        return default
