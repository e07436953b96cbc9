"""The class folder of a batch: one folder per student, each stamped with its key.

    <class>/<student>/            that student's results (results.json, report.html, ...)
    <class>/<student>/grade.json  the row of class.csv and the key it was graded under:
                                  the submission's, the lab's and the grader's hashes,
                                  when, by which grader version, on which machine

grade.json is written last and a student's folder is swapped in whole (a
rename), so a folder with a grade.json is a finished grading: an interrupted
batch (Ctrl-C, SIGTERM, a killed process, a dead machine) resumes by grading
the students without one, and a rerun grades again only those whose key
changed (fingerprint.py). One batch at a time writes into a class folder (a
lock file); a second one is told so and exits 2.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from grader.errors import UsageError
from grader.outcome import Status
from grader.report import RUN_FILE, by_exercise, read_run, summarize

try:
    import fcntl  # POSIX only
except ImportError:  # Windows: no lock; do not run two batches into one folder there
    fcntl = None

GRADE_FILE = "grade.json"
INCOMING = ".incoming"  # gradings in progress (on this machine, or arriving from a worker)


@dataclass
class Row:
    """One student's line in the class summary."""

    student: str
    submission: str
    verdict: str = "error"  # passed | failed | error
    score: float = 0.0
    max_score: float = 0.0
    exit_code: int | None = None
    seconds: float = 0.0
    error: str = ""
    exercises: dict[str, dict] = field(default_factory=dict)
    key: dict = field(default_factory=dict)  # submission, lab, grader (fingerprint.py)
    graded_at: str = ""  # UTC, ISO 8601
    graded_on: str = ""  # the machine (and worker) that graded it
    kept: bool = False  # this batch found it current and did not grade it again

    @property
    def grader(self) -> str:
        return self.key.get("grader", "")

    def to_dict(self) -> dict:
        data = dict(self.__dict__)
        data.pop("kept")
        return data

    @classmethod
    def from_dict(cls, data: dict) -> Row:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


def now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def row_from_folder(student: str, submission: str, folder: Path, meta: dict) -> Row:
    """A finished grading's row: score, verdict and per-exercise figures from its
    run.json, summed with report.py's `summarize` (the one definition of passed)."""
    row = Row(student, submission, exit_code=meta.get("exit_code"),
              seconds=meta.get("seconds", 0.0), error=meta.get("error", ""))
    if not (folder / RUN_FILE).exists():
        row.error = row.error or f"the grader wrote no {RUN_FILE}"
        return row
    try:
        _, results = read_run(folder)
    except (ValueError, KeyError, TypeError) as exc:
        row.error = f"unreadable {RUN_FILE}: {exc}"
        return row
    summary = summarize(results)
    row.score, row.max_score = summary.score, summary.max_score
    for exercise, checks in by_exercise(results).items():
        part = summarize(checks)
        row.exercises[exercise] = {"score": part.score, "max_score": part.max_score,
                                   "verdict": part.verdict.value,
                                   "checks": {r.check: r.status.value for r in checks}}
    if summary.verdict == Status.ERROR:
        row.error = row.error or "some check could not reach a verdict (see report.html)"
    if row.error:
        row.verdict = "error"
    else:
        row.verdict = "failed" if summary.verdict == Status.FAILED else "passed"
    return row


class ClassFolder:
    def __init__(self, root: Path):
        self.root = root
        self._lock = None

    def __enter__(self) -> ClassFolder:
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = (self.root / ".batch.lock").open("a")
        if fcntl is not None:
            try:
                fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                self._lock.close()
                raise UsageError(f"another batch is writing into {self.root}: wait for it to "
                                 "finish, or pass another --out folder")
        shutil.rmtree(self.root / INCOMING, ignore_errors=True)  # a killed batch's leftovers
        return self

    def __exit__(self, *exc) -> None:
        shutil.rmtree(self.root / INCOMING, ignore_errors=True)
        if self._lock is not None:
            self._lock.close()

    def incoming(self, student: str) -> Path:
        """An empty place to grade (or unpack) `student` into, away from the current folder."""
        path = self.root / INCOMING / student
        shutil.rmtree(path, ignore_errors=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def stamped(self, student: str) -> Row | None:
        """The row a finished grading left, or None (never graded, or interrupted)."""
        try:
            return Row.from_dict(json.loads((self.root / student / GRADE_FILE).read_text()))
        except (OSError, ValueError, TypeError):
            return None

    def install(self, row: Row, graded: Path) -> Path:
        """Stamp `graded` with its row, then swap it in for the student's folder."""
        (graded / GRADE_FILE).write_text(json.dumps(row.to_dict(), indent=1))
        target = self.root / row.student
        old = self.root / INCOMING / f".{row.student}.old"
        shutil.rmtree(old, ignore_errors=True)
        if target.exists():
            os.replace(target, old)
        os.replace(graded, target)
        shutil.rmtree(old, ignore_errors=True)
        return target
