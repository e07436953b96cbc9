"""One student's grading in a process of its own, on this machine or a worker's.

`run(...)` starts `python -m grader.guarded LAB --submission ...` in a session
of its own, waits for it (a timeout, or `should_stop()` for an interrupted
batch, stops it with SIGTERM so it tears its stacks down), and leaves `out/`
complete: that run's files (results.json, run.json, report.html, ...) and
grader.log. A grading that crashed, timed out or was stopped still gets a
results.json saying so: an error, never a silent zero and never a pass.

The same function serves the single-machine batch (a thread per job) and a
cluster worker (grader/cluster.py): one definition of what grading a student
means, wherever it runs.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from grader.paths import REPO
from grader.proc import stop_group
from grader.report import RUN_FILE

LOG = "grader.log"
RESULTS = "results.json"
STOP_GRACE = 90.0  # seconds a stopped grader gets to tear its stacks down
# The per-machine calibration (grader/calibration.py) is measured afresh by the first
# grading of a batch on each machine, then reused and refreshed by its own policy.
CALIBRATION_ENV = "IOLAB_CALIBRATION"
_calibrated: set[str] = set()
_calibrated_lock = threading.Lock()


def calibration_env(batch: str) -> dict:
    """{IOLAB_CALIBRATION: fresh} for this process's first grading of `batch`, else {}."""
    with _calibrated_lock:
        if batch in _calibrated:
            return {}
        _calibrated.add(batch)
    return {CALIBRATION_ENV: "fresh"}
INTERRUPTED = "interrupted"


@dataclass
class Spec:
    """What every job of a batch shares (plain data: it travels to workers)."""

    lab: str
    mode: str = "docker"
    os_name: str = "linux"
    exercises: list[str] = field(default_factory=list)
    timeout: float = 900.0
    serial_load: bool = True  # one load phase at a time on the machine

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def command_for(spec: Spec, submission: Path, results: Path) -> list[str]:
    """The grader run for one submission (tests replace this to simulate a crash).
    grader.guarded is the CLI that also ends (tearing down) when its parent dies."""
    cmd = [sys.executable, "-m", "grader.guarded", spec.lab,
           "--submission", str(submission.resolve()), "--mode", spec.mode,
           "--os", spec.os_name, "--results", str(results)]
    for exercise in spec.exercises:
        cmd += ["--exercise", exercise]
    return cmd


def run(spec: Spec, submission: Path, out: Path, *, env: dict | None = None,
        should_stop: Callable[[], bool] | None = None, on_start=None) -> dict:
    """Grade `submission` into `out` (created; must not exist). Returns what the
    folder cannot say itself: {exit_code, seconds, error, interrupted}."""
    out.mkdir(parents=True)
    work = out.parent / f".{out.name}.work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    env = {**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"}
    meta = {"exit_code": None, "seconds": 0.0, "error": "", "interrupted": False}
    started = time.monotonic()
    try:
        with (out / LOG).open("w") as log:
            if should_stop and should_stop():
                meta["interrupted"] = True
                raise InterruptedError("the batch was stopped before this submission")
            proc = subprocess.Popen(command_for(spec, submission, work), cwd=REPO, env=env,
                                    stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True)
            if on_start:
                on_start(proc)
            meta["exit_code"], meta["error"] = wait(proc, spec.timeout, should_stop)
            meta["interrupted"] = meta["error"].startswith(INTERRUPTED)
    except Exception as exc:  # noqa: BLE001 - one submission must not stop the batch
        meta["error"] = meta["error"] or f"could not run the grader: {type(exc).__name__}: {exc}"
    meta["seconds"] = round(time.monotonic() - started, 1)
    collect(work / spec.lab, out)
    shutil.rmtree(work, ignore_errors=True)
    if not meta["error"] and meta["exit_code"] not in (0, 1):
        meta["error"] = explain_exit(meta["exit_code"], out / LOG)
    elif not meta["error"] and not (out / RUN_FILE).exists():
        meta["error"] = f"the grader wrote no {RUN_FILE}: " + explain_exit(
            meta["exit_code"], out / LOG)
    if meta["error"]:
        write_error_results(out, spec, meta["error"])
    return meta


def wait(proc: subprocess.Popen, timeout: float, should_stop) -> tuple[int | None, str]:
    """(exit code, error): the grader's end, its timeout, or the batch's stop."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return proc.wait(timeout=min(1.0, max(0.0, deadline - time.monotonic()))), ""
        except subprocess.TimeoutExpired:
            pass
        if time.monotonic() >= deadline:
            stop_group(proc, grace=STOP_GRACE)
            return proc.returncode, f"timed out after {timeout:g} s (the grader was stopped)"
        if should_stop and should_stop():
            stop_group(proc, grace=STOP_GRACE)
            return proc.returncode, f"{INTERRUPTED}: the batch was stopped while this was graded"


def collect(runs: Path, out: Path) -> None:
    """The run folder the grader made (results/<lab>/<run-id>/) becomes `out`'s content."""
    found = sorted(p for p in runs.iterdir() if p.is_dir()) if runs.is_dir() else []
    if found:
        for item in found[-1].iterdir():
            shutil.move(str(item), str(out / item.name))


def explain_exit(code: int | None, log: Path) -> str:
    tail = ""
    if log.exists():
        lines = [x for x in log.read_text(errors="replace").splitlines() if x.strip()]
        tail = lines[-1].strip()[:300] if lines else ""
    if code == 2:
        return f"bad submission: {tail.removeprefix('error: ')}" if tail else "bad submission"
    what = f"the grader exited with code {code}" if code is not None else "the grader did not run"
    return f"{what}: {tail}" if tail else what


def write_error_results(out: Path, spec: Spec, error: str) -> None:
    """Gradescope's results.json for a grading that did not finish: it says so, in
    the output and in one test, and is marked as an error (not a grade of 0 points
    the student earned). A results.json the grader did write is kept beside it."""
    if (out / RESULTS).exists():
        return
    message = f"{spec.lab}: NOT GRADED — {error}. This is not a grade of 0 points: " + (
        "fix the submission and submit again." if error.startswith("bad submission")
        else "the grading itself failed; your instructor will grade this submission again.")
    data = {
        "score": 0.0,
        "output": message,
        "output_format": "text",
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "extra_data": {"lab": spec.lab, "status": "error", "error": error, "passed": False,
                       "mode": spec.mode, "os": spec.os_name},
        "tests": [{"name": "grading did not finish", "name_format": "text", "number": "0.1",
                   "score": 0.0, "max_score": 0.0, "status": "failed", "output": message,
                   "output_format": "text", "tags": ["error"], "visibility": "visible",
                   "extra_data": {"status": "error"}}],
    }
    (out / RESULTS).write_text(json.dumps(data, indent=2))
