"""PrairieLearn's external-grader results (/grade/results/results.json).

The format (PrairieLearn's docs/externalGrading.md; docs/platforms.md, section 2):
`gradable`, `score` from 0 to 1, `message`, `output`, and `tests[]` with `name`,
`description`, `points`, `max_points`, `message`, `output`. PrairieLearn refuses
a file over 1 MiB, so outputs are capped. `gradable: false` with
`format_errors` is bad input (no server.py, one that does not compile): the
student loses no attempt.
"""

from __future__ import annotations

import json

from grader.outcome import Status
from grader.report import RunReport
from grader.results import _output

MAX_BYTES = 1_000_000  # PrairieLearn: "larger than 1MB" is refused
TEXT_CAP = 4000  # characters of one test's output


def _cap(text: str, limit: int = TEXT_CAP) -> str:
    return text if len(text) <= limit else text[:limit - 20] + " … (cut)"


def results(report: RunReport, extra_output: str = "") -> dict:
    summary = report.summary
    tests = []
    for r in report.results:
        hidden = r.visibility != "visible"
        if r.outcome.passed:
            message = "passed"
        elif r.status == Status.UNAVAILABLE:
            message = "not run on this OS"
        else:
            message = "error: no verdict" if r.status == Status.ERROR else "failed"
        tests.append({
            "name": r.name,
            "description": f"{r.check} ({report.lab.name}, exercise {r.exercise})",
            "points": r.score,
            "max_points": r.counted_max,
            "message": message,
            "output": "(details hidden by the instructor)" if hidden else _cap(_output(r)),
        })
    # an exercise worth no points (a lesson such as select-limit): all or nothing
    score = summary.score / summary.max_score if summary.max_score else float(report.passed)
    verdict = "every required check passed" if report.passed else "not yet: see the failed checks"
    data = {
        "gradable": True,
        "score": round(min(max(score, 0.0), 1.0), 4),
        "message": f"{report.lab.name}: {summary.score:g}/{summary.max_score:g}, {verdict}",
        "output": _cap(extra_output.lstrip("\n"), 20000),
        "tests": tests,
    }
    while len(json.dumps(data).encode()) > MAX_BYTES:  # never in practice; never refused
        for test in data["tests"]:
            test["output"] = _cap(test["output"], len(test["output"]) // 2 + 20)
        data["output"] = _cap(data["output"], len(data["output"]) // 2 + 20)
    return data


def bad_input(why: str) -> dict:
    return {"gradable": False, "score": 0, "format_errors": [why],
            "message": f"not graded: {why}", "tests": []}
