"""The same submission graded again and again gets the same verdicts.

Local mode, in-process, lab-3's `select` exercise exactly as lab.yaml has it
except for a 2 s load phase: the reference server (passes everything) and the
starter (fails the framing checks, passes the rest) are each graded RUNS
times (IOLAB_DETERMINISM_RUNS: 3 by default, 10 in CI); every run must give every check
the same status. Throughput and
latency are judged against the machine's calibration (grader/calibration.py:
the reference, measured by the first run and reused while fresh; measured again
beside any relative check that fails), which is what keeps a shared, noisy
2-core machine from flipping them.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from pathlib import Path

import pytest
from conftest import REPO, lab_variant, quiet

from grader.runner import grade

RUNS = int(os.environ.get("IOLAB_DETERMINISM_RUNS", "3"))  # CI: 10 (.ci/run)
pytestmark = pytest.mark.slow


def verdicts_over_runs(lab, submission: Path, results: Path) -> tuple[list[dict], list[float]]:
    runs, seconds = [], []
    for _ in range(RUNS):
        started = time.monotonic()
        report = grade(lab, submission, "local", "linux", results, progress=quiet)
        seconds.append(time.monotonic() - started)
        runs.append({r.check: r.outcome.status for r in report.results}
                    | {"(figures)": {r.check: r.outcome.figure for r in report.results
                                     if r.check.startswith("load.")}})
    return runs, seconds


def assert_identical(runs: list[dict], name: str) -> dict:
    statuses = [{k: v for k, v in run.items() if k != "(figures)"} for run in runs]
    distinct = Counter(tuple(sorted(s.items())) for s in statuses)
    assert len(distinct) == 1, (
        f"{name}: {len(distinct)} different verdict sets over {len(runs)} runs:\n"
        + "\n".join(f"{n}× {dict(v)}" for v, n in distinct.items())
        + "\nload figures per run:\n" + "\n".join(str(r["(figures)"]) for r in runs))
    return statuses[0]


def test_reference_gets_the_same_verdicts_every_time(tmp_path):
    lab = lab_variant(tmp_path, "lab-3", ["select"])
    runs, seconds = verdicts_over_runs(lab, REPO / "servers" / "select_server.py", tmp_path)
    verdicts = assert_identical(runs, "reference")
    assert set(verdicts.values()) == {"passed"}, verdicts
    print(f"reference: {RUNS} identical runs, {min(seconds):.1f}-{max(seconds):.1f} s each")


def test_starter_gets_the_same_verdicts_every_time(tmp_path):
    # The starter's wrong replies are never completed by waiting: lab.yaml's 5 s and
    # 10 s reply timeouts would only make this test 10 s per run slower.
    lab = lab_variant(tmp_path, "lab-3", ["select"], params={"line.pipelined": {"timeout": 2},
                                                          "line.large": {"timeout": 3}})
    runs, seconds = verdicts_over_runs(lab, REPO / "labs" / "lab-3" / "starter", tmp_path)
    verdicts = assert_identical(runs, "starter")
    assert verdicts["line.split"] == verdicts["robust.eof"] == "failed", verdicts
    assert verdicts["line.basic"] == verdicts["load.failures"] == "passed", verdicts
    print(f"starter: {RUNS} identical runs, {min(seconds):.1f}-{max(seconds):.1f} s each")
