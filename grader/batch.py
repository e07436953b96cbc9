"""Grade a whole class: `python -m grader batch LAB SUBMISSIONS_DIR [-j N | --cluster ADDRESS]`.

Every folder (or lone .py file) in SUBMISSIONS_DIR is one student's
submission; a folder of cloned GitHub Classroom repositories
(`<assignment>-<login>/`, .git inside) works as it comes: the student is
<login>, and a repository made from a student handout (`python -m grader
handout`) is graded from its `labs/<lab>/starter/`, never from its grader or
workflow, which the student could have edited. Each student is graded by a grader process of its own (grader/job.py),
so one stack per submission, and a crash, a hang or bad input in one
submission is an error row, never the end of the batch.

Where: -j N graders at once on this machine, or --cluster tcp://HOST:8786 on
the workers of a Dask scheduler (grader/cluster.py; each worker grades with
its own Docker engine and the results come back here). Load phases run one at
a time per machine (a lock file), so figures stay fair; --parallel-load turns
that off.

The class folder (default results/<lab>/batch-<SUBMISSIONS_DIR name>/, or --out):
  <student>/            that student's results folder (results.json is
                        Gradescope's format, junit.xml, report.html, grader.log)
  <student>/grade.json  what the grade is keyed by, when and where it was graded
  class.csv             one row per student: score, verdict, per exercise score
                        and verdict, when, by which grader version, on which machine
  summary.json          the same for machines (GitHub Classroom, CI)
  summary.md            a Markdown table (e.g. for $GITHUB_STEP_SUMMARY)
  summary.html          the instructor's view: score distribution, each check's
                        pass rate, throughput and p99 against the reference, the
                        errors, suspiciously similar submissions

Regrades know what is current: a grade is keyed by the submission's content,
the lab's lab.yaml (and the files it names) and the grader's version. Run the
same command again and only new or stale students are graded (a submission
changed, the lab changed, the grader changed); an interrupted batch resumes.
--regrade grades everyone again, --regrade-errors the error rows.

Each student's verdict is read back from their run.json and summed with
grader/report.py's `summarize`: the same definition of "passed" as a single run.
The command line is in grader/cli.py (`batch`); this module is the orchestration.

Exit codes: 0 the batch ran (whatever the students scored); 2 bad input (or
the scheduler unreachable); 130 interrupted (the summary then lists the
submissions graded so far; run again to resume).
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from grader import classreport, job
from grader.classdir import ClassFolder, Row, now, row_from_folder
from grader.cluster import machine_lock, unzip
from grader.dockercli import require_engine
from grader.errors import UsageError
from grader.fingerprint import IGNORED, grader_version, lab_hash, submission_hash
from grader.labspec import Lab, load_lab
from grader.load.lock import LOAD_LOCK_ENV
from grader.report import new_run_id

DEFAULT_TIMEOUT = 900.0  # seconds one submission may take, all exercises included


def find_submissions(folder: Path, lab: Lab | None = None) -> list[tuple[str, Path]]:
    """(student, submission) for every folder or .py file, sorted; names made unique.
    Cloned repositories named <assignment>-<login> (GitHub Classroom) are named <login>;
    a clone of a student handout is graded from its labs/<lab>/starter/ (`in_repo`)."""
    if not folder.is_dir():
        what = "does not exist" if not folder.exists() else "is not a folder"
        raise UsageError(f"submissions folder {folder} {what}: pass a folder that holds one "
                         "folder (or one .py file) per student")
    entries = [p for p in sorted(folder.iterdir())
               if not p.name.startswith(".") and p.name not in IGNORED
               and (p.is_dir() or (p.is_file() and p.suffix == ".py"))]
    if not entries:
        raise UsageError(f"{folder} holds no submissions: put one folder (with server.py) "
                         "or one .py file per student in it")
    prefix = classroom_prefix(entries)
    found, seen = [], set()
    for path in entries:
        name = path.stem if path.is_file() else path.name
        if prefix and (path / ".git").exists():
            name = name[len(prefix):]
        name = re.sub(r"[^A-Za-z0-9._@+-]", "_", name)
        student, n = name, 2
        while student in seen:
            student, n = f"{name}-{n}", n + 1
        seen.add(student)
        found.append((student, in_repo(unwrap(path), lab)))
    return found


def in_repo(path: Path, lab: Lab | None) -> Path:
    """The student's work inside a repository made from a handout (python -m grader
    handout): labs/<lab>/starter/, or starter/; a folder with the lab's files at its
    top (an exercise's server.py, or its sub-folder) is graded as it is."""
    if lab is None or not path.is_dir() or holds_work(path, lab):
        return path
    for inner in (path / "labs" / lab.name / "starter", path / "starter"):
        if inner.is_dir() and holds_work(inner, lab):
            return inner
    return path


def holds_work(folder: Path, lab: Lab) -> bool:
    return any((folder / ex.path / ex.entry).is_file() for ex in lab.exercises)


def classroom_prefix(entries: list[Path]) -> str:
    """GitHub Classroom clones every student's repository as <assignment>-<login>/:
    the assignment part all the repositories share, up to its last "-"; "" if none."""
    repos = [p.name for p in entries if p.is_dir() and (p / ".git").exists()]
    if len(repos) < 2:
        return ""
    common = os.path.commonprefix(repos)
    cut = common.rfind("-")
    prefix = common[:cut + 1] if cut > 0 else ""
    return prefix if all(len(r) > len(prefix) for r in repos) else ""


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


def class_folder(args: argparse.Namespace, lab: Lab) -> Path:
    """--out, or results/<lab>/batch-<name of the submissions folder>: the same
    command twice writes into the same folder, so the second run regrades only
    what changed."""
    if args.out:
        return args.out
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", args.submissions.resolve().name).strip("-")
    return args.results / lab.name / f"batch-{name or 'class'}"


def plan(folder: ClassFolder, students, keys: dict, args) -> tuple[list, dict[str, Row]]:
    """(who to grade, the rows kept as current): a stamped row is kept when its key
    is this run's and it is no interrupted or lost job (those have no key)."""
    todo, kept = [], {}
    for student, submission in students:
        row = folder.stamped(student)
        current = (row is not None and row.key == keys[student] and not args.regrade
                   and not (args.regrade_errors and row.verdict == "error"))
        if current:
            row.kept = True
            kept[student] = row
        else:
            todo.append((student, submission))
    return todo, kept


class Batch:
    """One run of the batch into a class folder (local threads, or a cluster)."""

    def __init__(self, args, lab: Lab, folder: ClassFolder, students, keys, info: dict):
        self.args, self.lab, self.folder = args, lab, folder
        self.students, self.keys, self.info = students, keys, info
        self.spec = job.Spec(lab=lab.name, mode=args.mode, os_name=args.os_name,
                             exercises=list(args.exercise or []), timeout=args.timeout,
                             serial_load=not args.parallel_load)
        self.rows: dict[str, Row] = {}
        self.stopping = threading.Event()
        self.graded = 0

    def ordered(self) -> list[Row]:
        return [self.rows[s] for s, _ in self.students if s in self.rows]

    def record(self, student: str, graded: Path, meta: dict, where: str, total: int) -> None:
        """A finished grading: its row from its run.json, stamped and swapped in."""
        submission = dict(self.students)[student]
        row = row_from_folder(student, str(submission), graded, meta)
        # An interrupted or lost job is no grade under this key: a rerun grades it again.
        row.key = {} if meta.get("infra") else self.keys[student]
        row.graded_at, row.graded_on = now(), where
        self.folder.install(row, graded)
        self.rows[student] = row
        self.graded += 1
        self.info["graded"] = self.graded
        detail = f" — {row.error}" if row.error else ""
        print(f"[{self.graded}/{total}] {student}: {row.score:g}/{row.max_score:g} "
              f"{row.verdict.upper()} ({row.seconds:.1f} s, {where}){detail}", flush=True)
        classreport.write_tables(self.folder.root, self.ordered(), self.info)

    def grade_here(self, todo: list) -> None:
        """-j N graders at once on this machine, load phases one at a time."""
        env = {} if self.args.parallel_load else {LOAD_LOCK_ENV: machine_lock()}
        where = socket.gethostname()

        def one(student: str, submission: Path):
            out = self.folder.incoming(student)
            fresh = job.calibration_env(self.info["batch"])
            return out, job.run(self.spec, submission, out, env={**env, **fresh},
                                should_stop=self.stopping.is_set)

        pool = ThreadPoolExecutor(max_workers=self.args.jobs, thread_name_prefix="batch")
        try:
            futures = {pool.submit(one, s, p): s for s, p in todo}
            for future in as_completed(futures):
                out, meta = future.result()
                if self.stopping.is_set():
                    continue
                self.record(futures[future], out, meta, where, len(todo))
        except KeyboardInterrupt:
            print("interrupted: stopping the graders (each tears its stack down)",
                  file=sys.stderr, flush=True)
            self.stopping.set()
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def grade_on(self, cluster, todo: list) -> None:
        """Every student a task on the cluster; results unpacked here as they come."""
        cluster.submit(self.info["batch"], self.spec,
                       [(s, p, self.keys[s]) for s, p in todo])
        try:
            for student, result in cluster.results():
                graded = self.folder.incoming(student)
                graded.mkdir()
                if result["zip"]:
                    unzip(result["zip"], graded)
                meta = result["meta"]
                if not (graded / job.RESULTS).exists():
                    job.write_error_results(graded, self.spec, meta["error"] or "no results")
                self.record(student, graded, meta, result["graded_on"] or "?", len(todo))
        except KeyboardInterrupt:
            print("interrupted: the workers stop their graders (each tears its stack down)",
                  file=sys.stderr, flush=True)
            cluster.stop()
            raise


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
    students = find_submissions(args.submissions, lab)
    version, lab_key = grader_version(), lab_hash(lab)
    keys = {s: {"submission": submission_hash(p), "lab": lab_key, "grader": version}
            for s, p in students}
    cluster = None
    if args.cluster:
        from grader.cluster import Cluster
        cluster = Cluster(args.cluster, timeout=args.cluster_timeout)
    try:
        if cluster:
            workers = cluster.check_workers(job.Spec(lab=lab.name, mode=args.mode),
                                            {"grader": version, "lab": lab_key},
                                            args.cluster_timeout)
        elif args.mode == "docker":
            require_engine()
        with ClassFolder(class_folder(args, lab)) as folder:
            return grade_class(args, lab, folder, students, keys, cluster,
                               workers if cluster else [])
    finally:
        if cluster:
            cluster.close()


def grade_class(args, lab: Lab, folder: ClassFolder, students, keys, cluster,
                workers: list[str]) -> int:
    todo, kept = plan(folder, students, keys, args)
    where = (f"the cluster at {args.cluster} ({len(workers)} workers: {', '.join(workers)})"
             if cluster else f"this machine, -j {args.jobs}")
    print(f"{lab.name}: {len(students)} submissions, {len(todo)} to grade, {len(kept)} "
          f"current (kept); {args.mode} mode on {where}; class folder {folder.root}",
          flush=True)
    info = {"lab": lab.name, "batch": new_run_id(), "mode": args.mode, "os": args.os_name,
            "submissions": str(args.submissions), "jobs": args.jobs,
            "cluster": args.cluster or None, "grader": keys[students[0][0]]["grader"],
            "graded": 0, "kept": len(kept), "seconds": 0.0, "written": now()}
    batch = Batch(args, lab, folder, students, keys, info)
    batch.rows.update(kept)
    started = time.monotonic()
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    interrupted = False
    try:
        if todo:
            batch.grade_on(cluster, todo) if cluster else batch.grade_here(todo)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        signal.signal(signal.SIGTERM, previous)
    info.update(graded=batch.graded, seconds=round(time.monotonic() - started, 1),
                written=now())
    files = finish(args, lab, folder.root, students, batch.ordered(), info)
    print_class(batch.ordered())
    for path in files:
        print(f"{path.name + ':':<14}{path}")
    if interrupted:
        print(f"interrupted: {len(batch.rows)} of {len(students)} submissions graded; "
              "run the same command again to resume", file=sys.stderr)
        return 130
    return 0


def finish(args, lab: Lab, root: Path, students, rows: list[Row], info: dict) -> list[Path]:
    """The class tables, the similarity flags and summary.html."""
    similar = similarity(args, lab, students)
    info["similar"] = [p.to_dict() for p in similar["pairs"]]
    files = classreport.write_tables(root, rows, info)
    files.append(classreport.write_html(root, rows, info, similar))
    return files


def similarity(args, lab: Lab, students) -> dict:
    if args.no_similarity:
        return {"pairs": [], "note": "Not computed (--no-similarity)."}
    try:
        from grader.similarity import find_similar
        pairs = find_similar(dict(students), [lab.starter] if lab.starter.is_dir() else [],
                             threshold=args.similar_share)
    except ImportError:
        return {"pairs": [], "note": "Not computed: copydetect is not installed "
                                     "(pip install -e '.[cluster]')."}
    return {"pairs": pairs, "note": (
        f"copydetect fingerprints; pairs listed where at least {args.similar_share:.0%} of "
        "one side's code (the lab's starter code left out) matches the other, and students "
        "against the reference servers.")}


def _raise_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt()


def print_class(rows: list[Row], out=print) -> None:
    width = max((len(r.student) for r in rows), default=7)
    out("")
    out(f"{'student':<{width}}  {'score':>9}  verdict")
    for r in rows:
        out(f"{r.student:<{width}}  {f'{r.score:g}/{r.max_score:g}':>9}  {r.verdict}"
            + (" (kept)" if r.kept else "") + (f" ({r.error})" if r.error else ""))
    counts = classreport.counts_of(rows)
    out(f"\n{counts['passed']} passed, {counts['failed']} failed, {counts['error']} errors")
