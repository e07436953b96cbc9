"""Every check is deterministic against its flaw, and every reference passes.

Cases (tests/validity.py): each row of tests/broken/cases.yaml (a server with exactly
one flaw, graded on the check aimed at it: it must fail every run), and each reference
server on the checks of the exercises that use it (it must pass every run, or fail a
lesson every run), some runs beside a process spinning on one core (cpu_hog).

Runs per case: IOLAB_VALIDITY_RUNS (2 in `make test`, 10 in CI's .ci/run): half of a
broken server's runs quiet, half beside a hog shared by four servers at a time (_plan);
`make validity RUNS=50` runs every case RUNS times each way and prints the table.
pytest-xdist friendly: every server gets a free port of its own.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext

import pytest
from validity import broken_cases, cpu_hog, groups, reference_cases, run_together, runs

from grader.checks import REGISTRY, Stage

RUNS = runs()
BROKEN = groups(broken_cases())
REFERENCES = groups(reference_cases())


def _id(group) -> str:
    return group[0].id if len(group) == 1 else f"{group[0].group} ({len(group)} checks)"


def _plan(groups_) -> list:
    """(group, hog, runs) items: each broken server's quiet runs, (RUNS + 1) // 2 of them,
    and a costly one (hundreds of clients or a load phase) once, beside a hog of its own.
    The other runs beside a hog are the next test's. `make validity` runs every case
    RUNS times each way."""
    items = []
    for group in groups_:
        if group[0].costly:
            items.append(pytest.param(group, "own", 1, id=f"{_id(group)}-hog"))
        elif (RUNS + 1) // 2:
            items.append(pytest.param(group, "", (RUNS + 1) // 2, id=f"{_id(group)}-quiet"))
    return items


def judge(group, tmp_path, hog: str, count: int) -> list[str]:
    """What went against expectation in `count` runs of `group`. hog: "" (quiet), "own"
    (a hog started beside each run) or "shared" (the caller's hog runs beside them)."""
    wrong = []
    for run in range(count):
        with cpu_hog() if hog == "own" else nullcontext():
            outcomes = run_together(group, tmp_path / f"run-{run}")
        for case, outcome in zip(group, outcomes):
            if outcome.status.value != {"fail": "failed", "pass": "passed"}[case.expect]:
                wrong.append(f"run {run + 1}{' (hog)' if hog else ''}: {case.id} expected "
                             f"{case.expect}, got {outcome.status.value}: {outcome.figure} "
                             f"{outcome.expected} {outcome.got}")
    return wrong


def beside_one_hog(groups_, tmp_path, count: int) -> list[str]:
    """`count` runs of every group, 4 groups at a time, beside one hog: each run has a
    process spinning on one core beside it, and three other servers' checks besides
    (more contention than a hog alone, never less)."""
    with cpu_hog(), ThreadPoolExecutor(4) as pool:
        wrong = pool.map(lambda ig: judge(ig[1], tmp_path / str(ig[0]), "shared", count),
                         enumerate(groups_))
        return [w for ws in wrong for w in ws]


@pytest.mark.slow
@pytest.mark.parametrize("group, hog, count", _plan(BROKEN))
def test_a_broken_server_fails_its_check_every_time(group, hog, count, tmp_path):
    assert judge(group, tmp_path, hog, count) == []


@pytest.mark.slow
def test_broken_servers_fail_their_checks_beside_a_hog_every_time(tmp_path):
    """RUNS // 2 runs of each broken server but the costly ones, beside one hog. A hog
    per server spun 283 s of the 915 s of CI's `make test` (and took its share of two
    cores from everything else); one for four servers at a time spins a quarter of it."""
    if not RUNS // 2:
        pytest.skip("IOLAB_VALIDITY_RUNS=1: every run is a quiet one")
    assert beside_one_hog([g for g in BROKEN if not g[0].costly], tmp_path, RUNS // 2) == []


@pytest.mark.slow
def test_every_reference_passes_its_exercises_network_checks_beside_a_hog(tmp_path):
    """Once, all reference exercises 4 at a time (their checks mostly wait: this keeps
    the file within minutes) beside one hog. Load checks of the references are left to
    `make validity` and test_labs: a load phase takes the machine's load lock."""
    network = [g for g in REFERENCES if g[0].stage == Stage.NETWORK]
    assert beside_one_hog(network, tmp_path, 1) == []


def test_every_case_has_an_id_of_its_own():
    """The table (validity_table.py) tallies runs by case id: two cases under one id
    would be summed into one row ("6/3 passes") or hide each other."""
    ids = [case.id for case in broken_cases() + reference_cases()]
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)


def test_every_check_has_a_broken_server_or_is_a_lesson():
    """A check no broken server fails is untested against its flaw."""
    covered = {c.check for c in broken_cases()}
    lessons = {c.check for c in reference_cases() if c.expect == "fail"}
    missing = {name for name, spec in REGISTRY.items() if spec.stage != Stage.MODULE} - covered
    assert missing - lessons == set(), "checks with no broken server in cases.yaml"


def test_a_user_never_served_fails_every_load_check():
    """The load phase of a server that serves one client at a time: 19 of 20 users got
    nothing; whatever the figures of the one served, every load check fails."""
    from grader.checks import CheckContext, run_check
    from grader.load.stats import LoadStats
    stats = LoadStats(requests=5000, failures=19, rps=2500.0, p50_us=300, p95_us=500,
                      p99_us=700, users=20, unserved=19)
    for name in ("load.failures", "load.throughput", "load.latency"):
        ctx = CheckContext(params=REGISTRY[name].resolve({"max_failure_ratio": 1.0}),
                           load=stats)
        outcome = run_check(REGISTRY[name], ctx)
        assert outcome.status.value == "failed", (name, outcome)
        assert "19 users got no reply" in outcome.got and "1 of 20" in outcome.figure
