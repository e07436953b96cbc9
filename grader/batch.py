"""Grade a whole class: `python -m grader batch LAB SUBMISSIONS_DIR -j N`.

Every folder (or lone .py file) in SUBMISSIONS_DIR is one student's
submission. Each is graded by its own `python -m grader LAB ...` process, so
one stack per submission (compose project names carry that process's run id,
unique across parallel processes) and a crash, a hang or bad input in one
submission is an error row, never the end of the batch.

Writes results/<lab>/batch-<id>/:
  <student>/            that student's results folder (results.json is
                        Gradescope's format, junit.xml, report.html, ...)
  <student>/grader.log  what the grader printed for that student
  class.csv             student, score, max_score, verdict, per exercise score
                        and verdict (a spreadsheet, or a grade-book import)
  summary.json          the same for machines (GitHub Classroom, CI): scores,
                        verdicts, each check's status, where the files are
  summary.md            a Markdown table (e.g. for $GITHUB_STEP_SUMMARY)

Load phases are measured one at a time across the batch (a file lock), so
-j N speeds up the rest without N servers competing for the CPU while their
throughput is judged against the reference. --parallel-load turns that off.

Each student's verdict is read back from their run.json and summed with
grader/report.py's `summarize`: the same definition of "passed" as a single run.
The command line is in grader/cli.py (`batch`); this module is the orchestration.

Exit codes: 0 the batch ran (whatever the students scored); 2 bad input;
130 interrupted (the summary then lists the submissions graded so far).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from grader.dockercli import require_engine
from grader.errors import UsageError
from grader.labspec import load_lab
from grader.load.lock import LOAD_LOCK_ENV
from grader.outcome import Status
from grader.paths import REPO
from grader.proc import stop_group
from grader.report import RUN_FILE, by_exercise, new_run_id, read_run, summarize
from grader.results import TEMPLATES

DEFAULT_TIMEOUT = 900.0  # seconds one submission may take, all exercises included
IGNORED = {"__pycache__", "__MACOSX", ".git", ".venv", "node_modules"}


@dataclass
class Row:
    """One student's line in the class summary."""

    student: str
    submission: Path
    verdict: str = "error"  # passed | failed | error
    score: float = 0.0
    max_score: float = 0.0
    exit_code: int | None = None
    seconds: float = 0.0
    folder: Path | None = None
    error: str = ""
    exercises: dict[str, dict] = field(default_factory=dict)

    def to_dict(self, root: Path) -> dict:
        def file(name: str) -> str | None:
            if self.folder is None or not (self.folder / name).exists():
                return None
            return str((self.folder / name).relative_to(root))

        return {
            "student": self.student, "submission": str(self.submission),
            "verdict": self.verdict, "passed": self.verdict == "passed",
            "score": self.score, "max_score": self.max_score, "exit_code": self.exit_code,
            "seconds": round(self.seconds, 1), "error": self.error or None,
            "results": file("results.json"), "junit": file("junit.xml"),
            "report": file("report.html"), "log": file("grader.log"),
            "exercises": self.exercises,
        }


def find_submissions(folder: Path) -> list[tuple[str, Path]]:
    """(student, submission) for every folder or .py file, sorted; names made unique."""
    if not folder.is_dir():
        what = "does not exist" if not folder.exists() else "is not a folder"
        raise UsageError(f"submissions folder {folder} {what}: pass a folder that holds one "
                         "folder (or one .py file) per student")
    found, seen = [], set()
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or path.name in IGNORED:
            continue
        if path.is_dir() or (path.is_file() and path.suffix == ".py"):
            name = re.sub(r"[^A-Za-z0-9._@+-]", "_", path.stem if path.is_file() else path.name)
            student = name
            n = 2
            while student in seen:
                student, n = f"{name}-{n}", n + 1
            seen.add(student)
            found.append((student, unwrap(path)))
    if not found:
        raise UsageError(f"{folder} holds no submissions: put one folder (with server.py) "
                         "or one .py file per student in it")
    return found


def unwrap(path: Path) -> Path:
    """An unzipped upload is often wrapped in one more folder: look inside it."""
    while path.is_dir():
        entries = [p for p in path.iterdir() if not p.name.startswith(".")
                   and p.name not in IGNORED]
        if len(entries) == 1 and entries[0].is_dir() and not any(
                p.suffix == ".py" for p in entries):
            path = entries[0]
        else:
            break
    return path


def command_for(args: argparse.Namespace, submission: Path, results: Path) -> list[str]:
    """The grader run for one submission (tests replace this to simulate a crash)."""
    cmd = [sys.executable, "-m", "grader", args.lab, "--submission", str(submission.resolve()),
           "--mode", args.mode, "--os", args.os_name, "--results", str(results)]
    for exercise in args.exercise or []:
        cmd += ["--exercise", exercise]
    return cmd


class Batch:
    def __init__(self, args: argparse.Namespace, root: Path):
        self.args, self.root = args, root
        self.procs: set[subprocess.Popen] = set()
        self.lock = threading.Lock()
        self.stopping = False

    def grade_one(self, student: str, submission: Path) -> Row:
        row = Row(student, submission)
        work = self.root / ".work" / student
        work.mkdir(parents=True, exist_ok=True)
        log_path = work / "grader.log"
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        if not self.args.parallel_load:
            env[LOAD_LOCK_ENV] = str(self.root / ".load.lock")
        started = time.monotonic()
        try:
            with log_path.open("w") as log:
                if self.stopping:
                    raise InterruptedError("the batch was interrupted before this submission")
                proc = subprocess.Popen(command_for(self.args, submission, work), cwd=REPO,
                                        env=env, stdout=log, stderr=subprocess.STDOUT,
                                        start_new_session=True)
                with self.lock:
                    self.procs.add(proc)
                try:
                    row.exit_code = proc.wait(timeout=self.args.timeout)
                except subprocess.TimeoutExpired:
                    stop_group(proc, grace=90.0)
                    row.error = f"timed out after {self.args.timeout:g} s (the grader was stopped)"
                finally:
                    with self.lock:
                        self.procs.discard(proc)
        except Exception as exc:  # noqa: BLE001 - one submission must not stop the batch
            row.error = row.error or f"could not run the grader: {type(exc).__name__}: {exc}"
        row.seconds = time.monotonic() - started
        row.folder = self.collect(student, work, log_path)
        read_results(row)
        if not row.error and row.exit_code not in (0, 1):
            row.verdict = "error"
            row.error = explain_exit(row.exit_code, row.folder / "grader.log")
        elif not row.error and row.verdict == "error" and not row.exercises:
            row.error = f"the grader wrote no {RUN_FILE}: " + explain_exit(
                row.exit_code, row.folder / "grader.log")
        return row

    def collect(self, student: str, work: Path, log_path: Path) -> Path:
        """Move the run folder to <batch>/<student>/, with the grader's log beside it."""
        target = self.root / student
        runs = sorted(p for p in (work / self.args.lab).glob("*") if p.is_dir()) \
            if (work / self.args.lab).is_dir() else []
        if runs:
            shutil.move(str(runs[-1]), str(target))
        else:
            target.mkdir(parents=True, exist_ok=True)
        shutil.move(str(log_path), str(target / "grader.log"))
        shutil.rmtree(work, ignore_errors=True)
        return target

    def interrupt(self) -> None:
        """Ctrl-C or SIGTERM: stop every grader (each tears its own stack down)."""
        self.stopping = True
        with self.lock:
            procs = list(self.procs)
        for proc in procs:  # SIGTERM: each grader tears its stack down, then exits
            stop_group(proc, grace=90.0)


def explain_exit(code: int | None, log: Path) -> str:
    tail = ""
    if log.exists():
        lines = [x for x in log.read_text(errors="replace").splitlines() if x.strip()]
        tail = lines[-1].strip()[:300] if lines else ""
    if code == 2:
        return f"bad submission: {tail.removeprefix('error: ')}" if tail else "bad submission"
    what = f"the grader exited with code {code}" if code is not None else "the grader did not run"
    return f"{what}: {tail}" if tail else what


def read_results(row: Row) -> None:
    """Score, verdict and per-exercise figures from the student's run.json."""
    if row.folder is None or not (row.folder / RUN_FILE).exists():
        return
    try:
        _, results = read_run(row.folder)
    except (ValueError, KeyError, TypeError) as exc:
        row.error = f"unreadable {RUN_FILE}: {exc}"
        return
    summary = summarize(results)
    row.score, row.max_score = summary.score, summary.max_score
    for exercise, checks in by_exercise(results).items():
        part = summarize(checks)
        row.exercises[exercise] = {"score": part.score, "max_score": part.max_score,
                                   "verdict": part.verdict.value,
                                   "checks": {r.check: r.status.value for r in checks}}
    if summary.verdict == Status.ERROR:
        row.verdict = "error"
        row.error = row.error or "some check could not reach a verdict (see report.html)"
    elif row.error:
        row.verdict = "error"
    else:
        row.verdict = "failed" if summary.verdict == Status.FAILED else "passed"


def write_summary(root: Path, args, rows: list[Row], seconds: float) -> list[Path]:
    exercises: list[str] = []
    for row in rows:
        exercises += [e for e in row.exercises if e not in exercises]
    with (root / "class.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["student", "score", "max_score", "verdict"]
                        + [f"{e} {k}" for e in exercises for k in ("score", "verdict")]
                        + ["seconds", "results", "error"])
        for row in rows:
            cells = []
            for e in exercises:
                ex = row.exercises.get(e)
                cells += [f"{ex['score']:g}", ex["verdict"]] if ex else ["", ""]
            writer.writerow([row.student, f"{row.score:g}", f"{row.max_score:g}", row.verdict,
                             *cells, f"{row.seconds:.1f}",
                             str(row.folder.relative_to(root)) if row.folder else "", row.error])
    counts = {v: sum(r.verdict == v for r in rows) for v in ("passed", "failed", "error")}
    summary = {
        "lab": args.lab, "batch": root.name, "mode": args.mode, "os": args.os_name,
        "submissions": str(args.submissions), "jobs": args.jobs,
        "seconds": round(seconds, 1), "counts": counts, "exercises": exercises,
        "students": [r.to_dict(root) for r in rows],
    }
    (root / "summary.json").write_text(json.dumps(summary, indent=2))
    (root / "summary.md").write_text(TEMPLATES.get_template("summary.md.j2").render(
        args=args, rows=rows, counts=counts, exercises=exercises, seconds=seconds))
    return [root / "class.csv", root / "summary.json", root / "summary.md"]


def run(args: argparse.Namespace) -> int:
    """Grade every submission in args.submissions; see the module's docstring."""
    if args.jobs < 1:
        raise UsageError(f"-j must be at least 1, got {args.jobs}")
    lab = load_lab(args.lab)
    if args.exercise:
        unknown = set(args.exercise) - {ex.id for ex in lab.exercises}
        if unknown:
            raise UsageError(f"no exercise {sorted(unknown)} in {lab.name}: choose from "
                             f"{', '.join(ex.id for ex in lab.exercises)}")
    students = find_submissions(args.submissions)
    if args.mode == "docker":
        require_engine()
    root = args.results / lab.name / f"batch-{new_run_id()}"
    root.mkdir(parents=True)
    print(f"grading {len(students)} submissions of {lab.name} ({args.mode} mode, "
          f"-j {args.jobs}) into {root}", flush=True)
    batch = Batch(args, root)
    started = time.monotonic()
    rows: dict[str, Row] = {}
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    pool = ThreadPoolExecutor(max_workers=args.jobs, thread_name_prefix="batch")
    interrupted = False
    try:
        futures = {pool.submit(batch.grade_one, s, p): (s, p) for s, p in students}
        for future in as_completed(futures):
            student, submission = futures[future]
            try:
                row = future.result()
            except Exception as exc:  # noqa: BLE001 - recorded, never fatal
                row = Row(student, submission, error=f"{type(exc).__name__}: {exc}")
            rows[student] = row
            detail = f" — {row.error}" if row.error else ""
            print(f"[{len(rows)}/{len(students)}] {student}: {row.score:g}/{row.max_score:g} "
                  f"{row.verdict.upper()} ({row.seconds:.1f} s){detail}", flush=True)
    except KeyboardInterrupt:
        interrupted = True
        print("interrupted: stopping the graders (each tears its stack down)", file=sys.stderr)
        batch.interrupt()
        pool.shutdown(wait=True, cancel_futures=True)
    finally:
        pool.shutdown(wait=True)
        signal.signal(signal.SIGTERM, previous)
    ordered = [rows[s] for s, _ in students if s in rows]
    files = write_summary(root, args, ordered, time.monotonic() - started)
    shutil.rmtree(root / ".work", ignore_errors=True)
    (root / ".load.lock").unlink(missing_ok=True)
    print_class(ordered)
    for path in files:
        print(f"{path.name + ':':<14}{path}")
    if interrupted:
        print(f"interrupted: {len(ordered)} of {len(students)} submissions graded",
              file=sys.stderr)
        return 130
    return 0


def _raise_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt()


def print_class(rows: list[Row], out=print) -> None:
    width = max((len(r.student) for r in rows), default=7)
    out("")
    out(f"{'student':<{width}}  {'score':>9}  verdict")
    for r in rows:
        out(f"{r.student:<{width}}  {f'{r.score:g}/{r.max_score:g}':>9}  {r.verdict}"
            + (f" ({r.error})" if r.error else ""))
    counts = {v: sum(r.verdict == v for r in rows) for v in ("passed", "failed", "error")}
    out(f"\n{counts['passed']} passed, {counts['failed']} failed, {counts['error']} errors")
