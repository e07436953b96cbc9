"""`python -m grader classroom LAB [--results DIR]`: a run's points for GitHub Classroom.

GitHub Classroom's reporter (classroom-resources/autograding-grading-reporter@v1,
docs/platforms.md section 3) reads, for each runner id in its `runners:` input,
an environment variable <ID>_RESULTS holding base64 of this JSON:

  {"version": 1, "status": "pass|fail|error", "max_score": N,
   "tests": [{"name", "status", "score", "message", "test_code", "filename",
              "line_no", "duration"}]}

and reports Σ score out of Σ max_score. The workflow's grading step writes it as its
output `result` (a line `result=<base64>` appended to $GITHUB_OUTPUT), from the
newest run's results.json; when there is none (the grader could not run), a result
with status "error" and no points, so the reporter never reads a missing variable.
A Markdown table of the checks goes to $GITHUB_STEP_SUMMARY when it is set.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

from grader.labspec import Lab, load_lab


def newest_run(results: Path, lab: str) -> Path | None:
    """The latest run folder of `lab` under `results` (one with a results.json)."""
    runs = [p.parent for p in (results / lab).glob("*/results.json")]
    return max(runs, key=lambda p: (p / "results.json").stat().st_mtime, default=None)


def reporter_result(run: Path | None, lab: Lab) -> dict:
    """The reporter's JSON for one run (an error with no points when there is none)."""
    if run is None:
        most = sum(c.points for ex in lab.exercises for c in ex.checks)
        return {"version": 1, "status": "error", "max_score": most, "tests": [
            {"name": f"{lab.name}: grading", "status": "error", "score": 0,
             "message": "the grader wrote no results: see the step's log above",
             "test_code": f"make {lab.name}", "filename": "", "line_no": 0, "duration": 0}]}
    data = json.loads((run / "results.json").read_text(encoding="utf-8"))
    tests = []
    for t in data["tests"]:
        extra = t.get("extra_data", {})
        if extra.get("status") == "unavailable":  # not run under this OS: counts nothing
            continue
        status = {"passed": "pass", "error": "error"}.get(extra.get("status"), "fail")
        tests.append({"name": t["name"], "status": status, "score": t["score"],
                      "message": t.get("output", ""),
                      "test_code": f"{extra.get('exercise', '')} {extra.get('check', '')}",
                      "filename": "", "line_no": 0,
                      "duration": int(1000 * float(extra.get("seconds") or 0))})
    summary = data.get("extra_data", {})
    errored = any(t["status"] == "error" for t in tests)
    status = "pass" if summary.get("passed") else "error" if errored else "fail"
    return {"version": 1, "status": status, "max_score": summary.get("max_score", 0),
            "tests": tests}


def step_summary(result: dict, lab: str) -> str:
    """The checks as a Markdown table, for the workflow run's summary page."""
    got = sum(t["score"] for t in result["tests"])
    lines = [f"### {lab}: {got:g}/{result['max_score']:g} ({result['status']})", "",
             "| check | status | points |", "| --- | --- | --- |"]
    lines += [f"| {t['name']} | {t['status']} | {t['score']:g} |" for t in result["tests"]]
    return "\n".join(lines) + "\n"


def command(args) -> int:
    """Write the newest run's points where GitHub Actions reads them; exit 0 always
    when it could write them (the reporter step says pass or fail)."""
    lab = load_lab(args.lab)
    result = reporter_result(newest_run(args.results, lab.name), lab)
    encoded = base64.b64encode(json.dumps(result).encode()).decode()
    output = os.environ.get("GITHUB_OUTPUT")
    if output:
        with open(output, "a", encoding="utf-8") as f:
            f.write(f"result={encoded}\n")
    else:
        print(f"result={encoded}")
    if summary := os.environ.get("GITHUB_STEP_SUMMARY"):
        with open(summary, "a", encoding="utf-8") as f:
            f.write(step_summary(result, lab.name))
    got = sum(t["score"] for t in result["tests"])
    print(f"GitHub Classroom: {got:g}/{result['max_score']:g} points ({result['status']})")
    return 0
