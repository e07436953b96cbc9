"""Grade one submission inside a course platform's container; leave the verdict
where the platform reads it. The platforms' scripts run it, as root:

  python -m grader.export.autograde gradescope   LAB SUBMISSION OUT.json [--budget S] [EXERCISE...]
  python -m grader.export.autograde prairielearn LAB SUBMISSION OUT.json [--budget S] [EXERCISE...]

Local mode (no Docker there) in the sandbox (grader/sandbox.py: the server as
an unprivileged, limited uid; a loopback-only network namespace where allowed).
OUT.json is written before anything runs (every check "not graded yet") and
again after each exercise, so a run cut off by the platform's time limit
leaves a truthful file; exercises that would start after `--budget` seconds
are reported as not graded. It always writes OUT.json and exits 0: a platform
shows nothing useful for an autograder that crashed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from grader import sandbox
from grader.errors import StackError, UsageError
from grader.export import prairielearn
from grader.labspec import Exercise, Lab, load_lab
from grader.outcome import CheckResult, Outcome
from grader.report import RunReport, new_run_id
from grader.results import gradescope
from grader.runner import check_submission, grade

LOG_TAIL = 2000  # characters of a failing exercise's server log shown to the student


def placeholders(ex: Exercise, why: str) -> list[CheckResult]:
    """An exercise's checks as errors ("not graded"), until it is graded."""
    return [CheckResult(exercise=ex.id, check=c.check, title=c.title, max_score=c.points,
                        outcome=Outcome.error(why), required=c.required,
                        visibility=c.visibility) for c in ex.checks]


def log_tails(report: RunReport) -> str:
    """The end of each failing exercise's server log: the platform shows no files,
    and "see server.log" is no help there."""
    parts = []
    for ex_id, log in report.logs.items():
        failed = any(r.exercise == ex_id and not r.outcome.passed for r in report.results)
        if failed and log.strip():
            parts.append(f"\n--- the end of your server's output ({ex_id}) ---\n"
                         + log[-LOG_TAIL:])
    return "".join(parts)


def gradescope_results(report: RunReport) -> dict:
    data = gradescope(report)
    data["output"] += log_tails(report)
    return data


def gradescope_bad_input(why: str) -> dict:
    return {"score": 0, "output": f"not graded: {why}", "output_format": "text", "tests": []}


WRITERS = {"gradescope": (gradescope_results, gradescope_bad_input),
           "prairielearn": (lambda r: prairielearn.results(r, log_tails(r)),
                            prairielearn.bad_input)}


def write(out: Path, data: dict) -> None:
    """Atomically: a platform reading it mid-write sees the old file or the new one."""
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
    os.replace(tmp, out)


def unwrap(submission: Path, lab: Lab) -> Path:
    """A folder whose files are all inside one sub-folder (a student zipped their
    folder, and the platform unzipped it) is graded from that sub-folder."""
    if not submission.is_dir() or any((submission / ex.path / ex.entry).is_file()
                                      for ex in lab.exercises):
        return submission
    inside = [p for p in submission.iterdir()
              if not p.name.startswith((".", "__MACOSX"))]
    return inside[0] if len(inside) == 1 and inside[0].is_dir() else submission


def format_error(submission: Path, platform: str) -> str | None:
    """Bad input, said once: a missing submission, or (PrairieLearn, where it costs no
    attempt) a server.py that does not compile."""
    if not submission.exists():
        return f"no {submission.name} in your submission: upload {submission.name}"
    try:
        check_submission(submission)
    except UsageError as exc:
        return str(exc)
    if platform == "prairielearn" and submission.is_file():
        try:
            compile(submission.read_bytes(), submission.name, "exec")
        except SyntaxError as exc:
            return f"{submission.name} is not valid Python: line {exc.lineno}: {exc.msg}"
        except ValueError as exc:  # null bytes
            return f"{submission.name} is not valid Python: {exc}"
    return None


def autograde(platform: str, lab: Lab, submission: Path, out: Path, exercise_ids: list[str],
              budget: float, results_root: Path) -> RunReport | None:
    make, bad_input = WRITERS[platform]
    submission = unwrap(submission, lab)
    if why := format_error(submission, platform):
        write(out, bad_input(why))
        return None
    exercises = [ex for ex in lab.exercises if not exercise_ids or ex.id in exercise_ids]
    if not exercises:
        raise UsageError(f"no exercise {exercise_ids} in {lab.name}")
    run_id = new_run_id()
    report = RunReport(lab, run_id, results_root / lab.name / run_id, "local", "linux")
    started = time.monotonic()
    done: dict[str, list[CheckResult]] = {}
    for ex in exercises:
        pending = [r for x in exercises for r in done.get(x.id) or placeholders(
            x, "not graded: the grading was cut off before this exercise (time limit)")]
        report.results = pending
        report.seconds = time.monotonic() - started
        write(out, make(report))
        if time.monotonic() - started > budget:
            done[ex.id] = placeholders(ex, f"not graded: the time budget of {budget:g} s "
                                       "ran out before this exercise")
            continue
        try:
            one = grade(lab, submission, "local", "linux", results_root,
                        exercise_ids=[ex.id], progress=print)
        except (UsageError, StackError) as exc:
            done[ex.id] = placeholders(ex, f"not graded: {exc}")
            continue
        done[ex.id] = one.results
        report.load.update(one.load)
        report.logs.update(one.logs)
    report.results = [r for ex in exercises for r in done[ex.id]]
    report.seconds = time.monotonic() - started
    write(out, make(report))
    return report


def main(argv: list[str]) -> int:
    args = argparse.ArgumentParser(prog="python -m grader.export.autograde")
    args.add_argument("platform", choices=sorted(WRITERS))
    args.add_argument("lab")
    args.add_argument("submission", type=Path)
    args.add_argument("out", type=Path)
    args.add_argument("exercises", nargs="*")
    args.add_argument("--budget", type=float, default=540.0,
                      help="seconds after which no further exercise starts (default 540)")
    a = args.parse_intermixed_args(argv)
    bad_input = WRITERS[a.platform][1]
    try:
        print(sandbox.enter(), flush=True)  # may fork: the rest runs in a network namespace
        results_root = Path(tempfile.mkdtemp(prefix="iolab-results-"))  # root-only (0700)
        report = autograde(a.platform, load_lab(a.lab), a.submission, a.out, a.exercises,
                           a.budget, results_root)
        if report is not None:
            summary = report.summary
            print(f"{a.lab}: {summary.score:g}/{summary.max_score:g} "
                  f"({report.seconds:.1f} s); the run's files: {report.folder}")
    except Exception as exc:  # noqa: BLE001 - the platform must get a results file
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        write(a.out, bad_input(f"the autograder failed ({type(exc).__name__}: {exc}); "
                               "tell your instructor"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
