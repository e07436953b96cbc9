"""One run's results, and the one definition of "passed" (Otter's GradingResults).

A RunReport holds every CheckResult of one grading run plus what the writers
need around them (the load statistics for the charts, the server logs). The
class summary of a batch reads the same results back from each run's
run.json and sums them with the same `summarize`, so a student's verdict is
computed in exactly one place.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from grader.labspec import Lab
from grader.outcome import CheckResult, Status

RUN_FILE = "run.json"  # every CheckResult of a run, read back by batch grading


@dataclass
class Summary:
    """Totals and verdict of some CheckResults (a run, or one exercise of it)."""

    score: float
    max_score: float
    verdict: Status  # PASSED, FAILED, ERROR, or UNAVAILABLE when nothing ran

    @property
    def passed(self) -> bool:
        return self.verdict == Status.PASSED


def summarize(results: list[CheckResult]) -> Summary:
    """Every required check that ran must pass; a required check without a verdict
    (an error) makes the whole an error, never a pass; unavailable checks count
    for neither side."""
    score = sum(r.score for r in results)
    most = sum(r.counted_max for r in results)
    ran = [r for r in results if r.status != Status.UNAVAILABLE]
    required = [r for r in ran if r.required]
    if results and not ran:
        verdict = Status.UNAVAILABLE
    elif any(r.status == Status.ERROR for r in required):
        verdict = Status.ERROR
    elif all(r.outcome.passed for r in required):
        verdict = Status.PASSED
    else:
        verdict = Status.FAILED
    return Summary(score, most, verdict)


def by_exercise(results: list[CheckResult]) -> dict[str, list[CheckResult]]:
    grouped: dict[str, list[CheckResult]] = {}
    for r in results:
        grouped.setdefault(r.exercise, []).append(r)
    return grouped


@dataclass
class RunReport:
    lab: Lab
    run_id: str
    folder: Path
    mode: str
    os_name: str
    port: int | None = None  # local mode: a fixed port for the server
    results: list[CheckResult] = field(default_factory=list)
    logs: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    # per exercise: {"submission": LoadStats, SIDE: LoadStats | None} (report.html), SIDE
    # "reference" or "calibration" (the yardstick): see calibration_side()
    load: dict[str, dict] = field(default_factory=dict)
    # per exercise: which calibration judged its relative thresholds, when and at what
    # load average it was measured, reused or not (grader/calibration.py)
    calibrations: dict[str, dict] = field(default_factory=dict)
    # per exercise whose server ended while graded: how, when, and its exception
    crashes: dict[str, str] = field(default_factory=dict)

    @property
    def summary(self) -> Summary:
        return summarize(self.results)

    @property
    def passed(self) -> bool:
        """Exit code 0: every required check that ran passed (an error is not a pass)."""
        return self.summary.verdict in (Status.PASSED, Status.UNAVAILABLE)

    def to_dict(self) -> dict:
        summary = self.summary
        return {"lab": self.lab.name, "run_id": self.run_id, "mode": self.mode,
                "os": self.os_name, "seconds": round(self.seconds, 3),
                "score": summary.score, "max_score": summary.max_score,
                "verdict": summary.verdict.value, "calibrations": self.calibrations,
                "results": [r.to_dict() for r in self.results]}


CALIBRATION_SIDES = ("reference", "calibration")  # the names report.load gives it


def calibration_side(sides: dict) -> tuple[str | None, object]:
    """(name, LoadStats) of the calibration in one exercise's report.load entry."""
    name = next((s for s in CALIBRATION_SIDES if sides.get(s) is not None), None)
    return name, sides.get(name) if name else None


def read_run(folder: Path) -> tuple[dict, list[CheckResult]]:
    """A run folder's run.json: (its header, its CheckResults)."""
    data = json.loads((folder / RUN_FILE).read_text())
    return data, [CheckResult.from_dict(r) for r in data["results"]]


def new_run_id() -> str:
    """Unique across parallel runs (batch grading): time, pid and a random suffix."""
    return (datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
            + f"-{os.getpid() % 10000:04d}-{secrets.token_hex(2)}")
