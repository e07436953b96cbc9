"""Every check is deterministic against its flaw, and every reference passes.

Cases (tests/validity.py): each row of tests/broken/cases.yaml (a server with exactly
one flaw, graded on the check aimed at it: it must fail every run), and each reference
server on the checks of the exercises that use it (it must pass every run, or fail a
lesson every run). Half the runs have a process spinning on one core beside them.

Runs per case: IOLAB_VALIDITY_RUNS (2 in `make test`, 10 in CI's .ci/run). A costly
case (hundreds of clients, a load phase) and a reference exercise (all its network
checks on one server, as the grader runs them) run a fifth as often, at least once
each way; `make validity RUNS=50` runs every case RUNS times and prints the table.
"""

from __future__ import annotations

import pytest
from validity import broken_cases, cpu_hog, groups, reference_cases, run_together, runs

RUNS = runs()


def _id(group) -> str:
    return group[0].id if len(group) == 1 else f"{group[0].group} ({len(group)} checks)"


def _runs(group) -> int:
    if len(group) > 1 or group[0].costly:
        return max(1, RUNS // 5)
    return RUNS


BROKEN = groups(broken_cases())
REFERENCES = groups(reference_cases())


def judge(group, tmp_path, hog: bool) -> list[str]:
    """What went against expectation in `_runs(group)` runs (half with a hog if not hog)."""
    wrong = []
    for run in range(_runs(group)):
        folder = tmp_path / f"{'hog' if hog else 'plain'}-{run}"
        if hog:
            with cpu_hog():
                outcomes = run_together(group, folder)
        else:
            outcomes = run_together(group, folder)
        for case, outcome in zip(group, outcomes):
            if outcome.status.value != {"fail": "failed", "pass": "passed"}[case.expect]:
                wrong.append(f"run {run + 1}{' (hog)' if hog else ''}: {case.id} expected "
                             f"{case.expect}, got {outcome.status.value}: {outcome.figure} "
                             f"{outcome.expected} {outcome.got}")
    return wrong


@pytest.mark.slow
@pytest.mark.parametrize("hog", [False, True], ids=["quiet", "hog"])
@pytest.mark.parametrize("group", BROKEN, ids=[_id(g) for g in BROKEN])
def test_a_broken_server_fails_its_check_every_time(group, hog, tmp_path):
    assert judge(group, tmp_path, hog) == []


@pytest.mark.slow
@pytest.mark.parametrize("hog", [False, True], ids=["quiet", "hog"])
@pytest.mark.parametrize("group", REFERENCES, ids=[_id(g) for g in REFERENCES])
def test_a_reference_passes_every_time(group, hog, tmp_path):
    assert judge(group, tmp_path, hog) == []


def test_every_check_has_a_broken_server_or_is_a_lesson():
    """A check no broken server fails is untested against its flaw."""
    from grader.checks import REGISTRY, Stage
    covered = {c.check for c in broken_cases()}
    lessons = {c.check for c in reference_cases() if c.expect == "fail"}
    missing = {name for name, spec in REGISTRY.items() if spec.stage != Stage.MODULE} - covered
    assert missing - lessons == set(), "checks with no broken server in cases.yaml"
