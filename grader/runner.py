"""Grade one submission for one lab: the generic engine.

For each exercise in lab.yaml: skip it as unavailable when the chosen OS
profile lacks its model; otherwise start the server (docker or local), run the
network checks next to it, run the load phase (and, for relative thresholds,
the reference server under the same load in the same run), stop everything,
and turn outcomes into CheckResults. Nothing here knows what a check does.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from grader.checks import CheckContext, Stage, run_check
from grader.errors import StackError, UsageError
from grader.labspec import CheckEntry, Exercise, Lab
from grader.load.lock import exclusive_load
from grader.outcome import CheckResult, Outcome, Status
from grader.paths import REPO
from grader.proc import port_free
from grader.progress import ticking
from grader.report import RunReport, new_run_id
from grader.targets import Target, make_target
from servers.platforms import unavailable_reason

WAIT_FOR_SERVER = 20.0  # seconds a server gets to start listening


def resolve_submission(submission: Path, exercise: Exercise, single_file: bool) -> tuple[Path, str]:
    """(folder, entry) for an exercise; a lone .py file is the whole submission."""
    if single_file:
        return submission.parent, submission.name
    return submission / exercise.path, exercise.entry


def check_submission(submission: Path) -> bool:
    """Bad input is caught before anything starts. Returns True for a lone file."""
    if submission.is_symlink() and not submission.exists():
        raise UsageError(f"submission {submission} is a broken symbolic link or a link loop: "
                         "pass the real folder")
    if not submission.exists():
        raise UsageError(f"submission {submission} does not exist: "
                         "pass a folder with server.py, or a .py file")
    if submission.is_file():
        if submission.suffix != ".py":
            raise UsageError(f"submission {submission} is not a .py file or a folder")
        if not os.access(submission, os.R_OK):
            raise UsageError(f"submission {submission} cannot be read: fix its permissions")
        return True
    try:
        empty = not any(submission.iterdir())
    except OSError as exc:
        raise UsageError(f"submission folder {submission} cannot be read ({exc.strerror}): "
                         "fix its permissions")
    if empty:
        raise UsageError(f"submission folder {submission} is empty: put your server.py in it")
    return False


def grade(lab: Lab, submission: Path, mode: str, os_name: str, results_root: Path, *,
          exercise_ids: list[str] | None = None, port: int | None = None,
          progress=print) -> RunReport:
    """Grade `submission` on every exercise of `lab` (or those named): the engine's
    one entry point, for the command line, batch grading and the tests."""
    single_file = check_submission(submission)
    exercises = [ex for ex in lab.exercises if not exercise_ids or ex.id in exercise_ids]
    if single_file and not exercise_ids:
        exercises = exercises[:1]
    if not exercises:
        raise UsageError(f"no exercise {exercise_ids} in {lab.name}: "
                         f"choose from {', '.join(ex.id for ex in lab.exercises)}")
    for ex in exercises:
        folder, entry = resolve_submission(submission, ex, single_file)
        if ex.path == "." and not (folder / entry).is_file():
            raise UsageError(f"{folder} has no {entry}: the exercise {ex.id!r} runs "
                             f"`python {entry}` in your submission folder")
    if mode == "local" and port and not port_free(port):
        raise UsageError(f"port {port} is already in use on 127.0.0.1: stop what listens "
                         "there, or leave out --port to get a free one")
    run_id = new_run_id()
    report = RunReport(lab, run_id, results_root / lab.name / run_id, mode, os_name, port)
    report.folder.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    for ex in exercises:
        report.results += grade_exercise(report, ex, submission, single_file, progress)
    report.seconds = time.monotonic() - started
    return report


def grade_exercise(report: RunReport, ex: Exercise, submission: Path, single_file: bool,
                   progress) -> list[CheckResult]:
    if report.os_name in ("linux", "macos", "windows") and report.os_name not in ex.oses:
        why = unavailable_reason(ex.model, report.os_name)
        progress(f"[{ex.id}] unavailable on {report.os_name}: {why}")
        return [_result(ex, check, Outcome.unavailable(why), required=False)
                for check in ex.checks]
    folder, entry = resolve_submission(submission, ex, single_file)
    if not (folder / entry).is_file():
        why = f"not submitted: {folder / entry} does not exist"
        return [_result(ex, check, Outcome(False, got=why)) for check in ex.checks]
    if ex.kind == "module":
        return grade_module(report, ex, folder, entry, single_file, progress)
    target = target_for(report, ex.id, folder, entry, limits=ex.limits)
    outcomes: dict[int, tuple[Outcome, float]] = {}
    try:
        outcomes = run_stages(report, ex, target, progress)
    except StackError as exc:
        progress(f"[{ex.id}] error: {exc}")
        outcomes = {i: (Outcome.error(str(exc)), 0.0) for i in range(len(ex.checks))}
    except UsageError:
        raise
    except Exception as exc:  # noqa: BLE001 - a crash of the grader is an error, never a pass
        why = f"the grader crashed: {type(exc).__name__}: {exc}"
        progress(f"[{ex.id}] error: {why}")
        outcomes = {i: (Outcome.error(why), 0.0) for i in range(len(ex.checks))}
    finally:
        state = target.server_state()
        report.logs[ex.id] = target.server_log()
        target.stop()
    results = []
    for i, check in enumerate(ex.checks):
        outcome, seconds = outcomes.get(i, (Outcome.error("not run"), 0.0))
        if state and not outcome.passed and state not in outcome.explain():
            # What ended the server explains the failure better than the check's hint.
            outcome.hint = state + ("; " + outcome.hint if outcome.hint else "")
        results.append(_result(ex, check, outcome, seconds=seconds))
    return results


def grade_module(report: RunReport, ex: Exercise, folder: Path, entry: str, single_file: bool,
                 progress) -> list[CheckResult]:
    """A module exercise: no server. The submission is staged once (a lone file under
    the exercise's entry name); each check tests a fresh copy of it in a subprocess."""
    staged = report.folder / ex.id / "submission"
    if single_file:
        staged.mkdir(parents=True, exist_ok=True)
        shutil.copy2(folder / entry, staged / ex.entry)
    else:
        shutil.copytree(folder, staged, dirs_exist_ok=True, ignore=shutil.ignore_patterns(
            "__pycache__", "*.pyc", ".git", ".venv", ".pytest_cache"))
    progress(f"[{ex.id}] module checks: {len(ex.checks)} (pytest in a subprocess sandbox)")
    results = []
    for check in ex.checks:
        started = time.monotonic()
        ctx = CheckContext(params=check.spec.resolve(check.params), model=ex.model,
                           os_name=report.os_name, submission=staged)
        outcome = run_check(check.spec, ctx)
        results.append(_result(ex, check, outcome, seconds=round(time.monotonic() - started, 3)))
    return results


def target_for(report: RunReport, label: str, folder: Path, entry: str,
               limits: dict | None = None) -> Target:
    port = report.port if not label.endswith("-reference") else None
    return make_target(report.mode, run_dir=report.folder, label=label, folder=folder,
                       entry=entry, os_name=report.os_name, limits=limits,
                       run_id=report.run_id, port=port)


def network_plan(ex: Exercise, os_name: str, indexes: list[int]) -> list[dict]:
    """The network stage's input (grader/stage.py): each check, its parameters, and
    what it holds the server to."""
    return [{"check": ex.checks[i].check, "params": ex.checks[i].spec.resolve(ex.checks[i].params),
             "model": ex.model, "os_name": os_name} for i in indexes]


def load_params(ex: Exercise, check: CheckEntry) -> dict:
    """A load check's parameters: the exercise's thresholds it declares, then its own."""
    thresholds = (ex.load or {}).get("thresholds") or {}
    given = {k: v for k, v in thresholds.items() if k in check.spec.params} | check.params
    return check.spec.resolve(given)


def run_stages(report: RunReport, ex: Exercise, target: Target, progress) -> dict:
    """Network checks, then the load phase; returns {check index: (outcome, s)}."""
    network = [i for i, c in enumerate(ex.checks) if c.stage == Stage.NETWORK]
    loads = [i for i, c in enumerate(ex.checks) if c.stage == Stage.LOAD]
    progress(f"[{ex.id}] starting the server ({report.mode}, os={report.os_name})")
    target.start()
    progress(f"[{ex.id}] network checks: {len(network)}")
    stage = target.network_stage(network_plan(ex, report.os_name, network), WAIT_FOR_SERVER)
    outcomes = {i: (Outcome(**o), s) for i, o, s in
                zip(network, stage["outcomes"], stage["seconds"] or [0.0] * len(network))}
    if not loads:
        return outcomes
    if not stage["listening"]:
        why = Outcome.error("no load phase: the server never listened")
        return outcomes | {i: (why, 0.0) for i in loads}
    if state := target.server_state():  # died during the network checks: no load phase
        why = Outcome(False, got="no load phase: the server is no longer running", hint=state)
        return outcomes | {i: (why, 0.0) for i in loads}
    load = ex.load or {}
    progress(f"[{ex.id}] load: {load.get('users')} users for {load.get('duration')} s")
    started = time.monotonic()
    with exclusive_load() as waited:  # one load phase at a time per machine: fair figures
        target.extend_watchdog(waited)
        with ticking(progress, f"[{ex.id}] load", float(load.get("duration", 5))):
            stats = target.load_phase(load)
        reference = measure_reference(report, ex, progress) if needs_reference(ex) else None
    report.load[ex.id] = {"submission": stats, "reference": reference}
    seconds = round(time.monotonic() - started, 3)
    for i in loads:
        ctx = CheckContext(params=load_params(ex, ex.checks[i]), model=ex.model,
                           os_name=report.os_name, load=stats, reference=reference)
        outcomes[i] = (run_check(ex.checks[i].spec, ctx), seconds)
    return outcomes


def needs_reference(ex: Exercise) -> bool:
    """A load check with a relative threshold set needs a calibration measurement."""
    return bool(ex.reference) and any(
        load_params(ex, c).get(name) is not None
        for c in ex.checks if c.stage == Stage.LOAD for name in c.spec.relative_params)


def measure_reference(report: RunReport, ex: Exercise, progress):
    """The reference server under the same load, same machine, same run."""
    path = REPO / ex.reference
    folder, entry = (path.parent, path.name) if path.is_file() else (path, ex.entry)
    target = target_for(report, f"{ex.id}-reference", folder, entry, limits=ex.limits)
    progress(f"[{ex.id}] measuring the reference {ex.reference} under the same load")
    try:
        target.start()
        stage = target.network_stage([], WAIT_FOR_SERVER)
        if not stage["listening"]:
            return None
        with ticking(progress, f"[{ex.id}] reference load",
                     float((ex.load or {}).get("duration", 5))):
            return target.load_phase(ex.load or {})
    finally:
        target.stop()


def _result(ex: Exercise, check: CheckEntry, outcome: Outcome, required: bool | None = None,
            seconds: float = 0.0) -> CheckResult:
    if check.expect == "fail":
        outcome = expected_failure(outcome)
    return CheckResult(exercise=ex.id, check=check.check, title=check.title,
                       max_score=check.points, outcome=outcome,
                       required=check.required if required is None else required,
                       visibility=check.visibility, seconds=seconds)


def expected_failure(outcome: Outcome) -> Outcome:
    """A check marked `expect: fail` in lab.yaml: this model must fail it (the lesson)."""
    if outcome.status == Status.FAILED:
        why = f"expected {outcome.expected}, got {outcome.got}" if outcome.expected else outcome.got
        return Outcome(True, figure=f"fails by design, the lesson: {why}")
    if outcome.status == Status.PASSED:
        return Outcome(False, expected="this check to fail for this model (the lesson)",
                       got=f"it passed ({outcome.figure})",
                       hint="this exercise asks for the model that shows the problem; "
                       "did you write a different model?")
    return outcome
