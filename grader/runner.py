"""Grade one submission for one lab: the generic engine.

For each exercise in lab.yaml: skip it as unavailable when the chosen OS
profile lacks its model; otherwise start the server (docker or local), run the
network checks next to it, run the load phase (for relative thresholds, with the
machine's calibration: grader/calibration.py), stop everything, and turn
outcomes into CheckResults. Nothing here knows what a check does.
"""

from __future__ import annotations

import difflib
import os
import shutil
import time
from pathlib import Path

from grader import calibration
from grader.checks import CheckContext, Stage, run_check
from grader.crashlog import hidden_by_profile, last_exception
from grader.errors import StackError, UsageError
from grader.labspec import CheckEntry, Exercise, Lab
from grader.load.lock import exclusive_load
from grader.outcome import CheckResult, Outcome, Status
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


def submitted(submission: Path, exercise: Exercise, single_file: bool) -> bool:
    folder, entry = resolve_submission(submission, exercise, single_file)
    return (folder / entry).is_file()


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
    exercises = chosen_exercises(lab, exercise_ids)
    if single_file and not exercise_ids:
        exercises = exercises[:1]
    missing = [ex for ex in exercises if not submitted(submission, ex, single_file)]
    for ex in missing:
        # An exercise asked for by name, one in the submission folder itself, or nothing
        # at all to grade: the submission is wrong, not the server (one line, exit 2).
        if exercise_ids or ex.path == "." or len(missing) == len(exercises):
            raise UsageError(missing_exercise(submission, ex))
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


def chosen_exercises(lab: Lab, exercise_ids: list[str] | None) -> list[Exercise]:
    """The exercises named (all when none are); an unknown name is bad input."""
    ids = [ex.id for ex in lab.exercises]
    for name in exercise_ids or []:
        if name not in ids:
            close = difflib.get_close_matches(name, ids, n=1)
            guess = f": did you mean {close[0]}?" if close else ""
            raise UsageError(f"no exercise {name!r} in {lab.name}{guess} "
                             f"(choose from {', '.join(ids)})")
    return [ex for ex in lab.exercises if not exercise_ids or ex.id in exercise_ids]


def missing_exercise(submission: Path, ex: Exercise) -> str:
    """Why an exercise's file is not where the grader looks, and what to pass instead."""
    if ex.path == ".":
        return (f"{submission} has no {ex.entry}: the exercise {ex.id!r} runs "
                f"`python {ex.entry}` in your submission folder")
    wanted = Path(ex.path) / ex.entry
    if (submission / ex.entry).is_file():  # the exercise's own folder was given
        parent = (f" ({submission.parent})" if (submission.parent / wanted).is_file() else "")
        return (f"{submission} has no {wanted}: for the exercise {ex.id!r} pass the folder that "
                f"holds {wanted}{parent}, or the file itself ({submission / ex.entry})")
    return (f"{submission} has no {wanted}: the exercise {ex.id!r} is graded from "
            f"{ex.path}/{ex.entry} in your submission folder")


def grade_exercise(report: RunReport, ex: Exercise, submission: Path, single_file: bool,
                   progress) -> list[CheckResult]:
    if report.os_name in ("linux", "macos", "windows") and report.os_name not in ex.oses:
        why = unavailable_reason(ex.model, report.os_name)
        progress(f"[{ex.id}] unavailable on {report.os_name}: {why}")
        return [_result(ex, check, Outcome.unavailable(why), required=False)
                for check in ex.checks]
    folder, entry = resolve_submission(submission, ex, single_file)
    if not (folder / entry).is_file():
        why = Outcome(False, got=f"not submitted: {folder / entry} does not exist", skipped=True)
        return [_result(ex, check, why, os_name=report.os_name) for check in ex.checks]
    if ex.kind == "module":
        return grade_module(report, ex, folder, entry, single_file, progress)
    if ex.shared and not single_file:
        folder = with_shared(folder, submission, ex.shared, report.folder / ex.id / "submission")
    target = target_for(report, ex.id, folder, entry, limits=ex.limits)
    outcomes: dict[int, tuple[Outcome, float]] = {}
    ours = ""  # the grading machinery failed: its error stands, whatever the server did
    try:
        outcomes = run_stages(report, ex, target, progress)
    except StackError as exc:
        ours = str(exc)
    except UsageError:
        raise
    except Exception as exc:  # noqa: BLE001 - a crash of the grader is an error, never a pass
        ours = f"the grader crashed: {type(exc).__name__}: {exc}"
    finally:
        target.settle()
        state, ended = target.server_state(), target.exited()
        report.logs[ex.id] = log = target.server_log()
        target.stop()
    if ours:
        progress(f"[{ex.id}] error: {ours}")
        outcomes = {i: (Outcome.not_run(ours, status=Status.ERROR), 0.0)
                    for i in range(len(ex.checks))}
    if ended and state and ours:
        report.crashes[ex.id] = crash_reason(ex, {}, state, log, report.os_name)[0]
    elif ended and state:
        why, hint, explains = crash_reason(ex, outcomes, state, log, report.os_name)
        report.crashes[ex.id] = why + (f"; {hint}" if hint else "")
        progress(f"[{ex.id}] {report.crashes[ex.id]}")
        blame(outcomes, why, hint, explains)
    elif state:  # alive, but it ran into a limit
        blame(outcomes, state, "", None)
    return [_result(ex, check, *outcomes.get(i, (Outcome.error("not run"), 0.0)),
                    os_name=report.os_name) for i, check in enumerate(ex.checks)]


COPY_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", ".git", ".venv", ".pytest_cache")


def with_shared(folder: Path, submission: Path, shared: list[str], staged: Path) -> Path:
    """The folder to run an exercise from: its own folder when the `shared` files
    (lab.yaml: a module the student writes once at the top of the submission, e.g.
    linebuf.py) are already beside its entry; otherwise a copy of it with them added
    (a file of the same name in the exercise's folder wins, as Python's import would).
    Readable by all: docker mode runs the server as another uid. A missing shared
    file is left out: the server's own ImportError then says what is missing."""
    wanted = [name for name in shared
              if (submission / name).is_file() and not (folder / name).exists()]
    if not wanted:
        return folder
    # links stay links: the grader never reads a file through one for the server
    shutil.copytree(folder, staged, symlinks=True, dirs_exist_ok=True, ignore=COPY_IGNORE)
    for name in wanted:
        shutil.copy2(submission / name, staged / name, follow_symlinks=False)
    for path in [staged, *staged.rglob("*")]:
        if not path.is_symlink():
            path.chmod(path.stat().st_mode | (0o555 if path.is_dir() else 0o444))
    return staged


def crash_reason(ex: Exercise, outcomes: dict, state: str, log: str,
                 os_name: str) -> tuple[str, str, list[int]]:
    """(why, hint, the checks it explains) for a server that ended during grading: how
    it ended, at which check, the exception its log ends with, and what the OS profile
    hid from it. A check that failed while the server still ran keeps its own reason,
    unless a limit ended it (memory, processes, time: they build up before they kill)."""
    network = [i for i, c in enumerate(ex.checks) if c.stage == Stage.NETWORK and i in outcomes]
    loads = [i for i, c in enumerate(ex.checks) if c.stage == Stage.LOAD and i in outcomes]
    ran = [i for i in network if not outcomes[i][0].skipped]
    first = outcomes[network[0]][0].got if network else ""
    if not ran and ("before it listened" in first or "never accepted" in first):
        when, explains = " before it listened", []
    elif ran and any(outcomes[i][0].skipped for i in network + loads):
        last = ex.checks[ran[-1]].title
        when = f" {'after' if outcomes[ran[-1]][0].passed else 'during'} the check {last!r}"
        explains = [ran[-1]]
    else:  # during the last network check or the load phase
        when, explains = "", ran[-1:] + loads
    if "limit" in state:  # memory, processes, time: a limit builds up, an exception is
        explains = network + loads  # one moment, so it may explain every failure before
    ended, _, rest = state.partition("; ")
    crash = last_exception(log)
    why = f"{ended}{when}: {crash}" if crash else (
        f"{ended}{when}" + (": its log (server.log) says why" if "exited" in ended else ""))
    return why + (f"; {rest}" if rest else ""), hidden_by_profile(crash, os_name), explains


def blame(outcomes: dict, why: str, hint: str, explains: list[int] | None) -> None:
    """What ended (or limited) the server explains its failures better than the checks'
    own hints: the checks its end kept from running all get that one reason (shown once),
    the check it died in gets it first in its hint. `explains` None: it still runs (a
    limit it ran into may explain every failure)."""
    for i, (outcome, seconds) in list(outcomes.items()):
        if outcome.passed or why in outcome.explain():
            continue
        if outcome.skipped and explains is not None:
            outcomes[i] = (Outcome.not_run(why, hint), seconds)
        elif explains is None or i in explains:
            outcome.hint = "; ".join(filter(None, [why, hint, outcome.hint]))


def grade_module(report: RunReport, ex: Exercise, folder: Path, entry: str, single_file: bool,
                 progress) -> list[CheckResult]:
    """A module exercise: no server. The submission is staged once (a lone file under
    the exercise's entry name); each check tests a fresh copy of it in a subprocess."""
    staged = report.folder / ex.id / "submission"
    if single_file:
        staged.mkdir(parents=True, exist_ok=True)
        shutil.copy2(folder / entry, staged / ex.entry)
    else:
        shutil.copytree(folder, staged, dirs_exist_ok=True, ignore=COPY_IGNORE)
    progress(f"[{ex.id}] module checks: {len(ex.checks)} (pytest in a subprocess sandbox)")
    results = []
    for check in ex.checks:
        if not check.runs_on(report.os_name):
            results.append(_result(ex, check, Outcome.error("not run"), os_name=report.os_name))
            continue
        started = time.monotonic()
        ctx = CheckContext(params=check.spec.resolve(check.params), model=ex.model,
                           os_name=report.os_name, submission=staged)
        outcome = run_check(check.spec, ctx)
        results.append(_result(ex, check, outcome, round(time.monotonic() - started, 3)))
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
    network = [i for i, c in enumerate(ex.checks)
               if c.stage == Stage.NETWORK and c.runs_on(report.os_name)]
    loads = [i for i, c in enumerate(ex.checks)
             if c.stage == Stage.LOAD and c.runs_on(report.os_name)]
    progress(f"[{ex.id}] starting the server ({report.mode}, os={report.os_name})")
    target.start()
    if loads:  # Locust starts beside the network checks and waits for its phase
        target.prepare_load(ex.load or {})
    progress(f"[{ex.id}] network checks: {len(network)}")
    stage = target.network_stage(network_plan(ex, report.os_name, network), WAIT_FOR_SERVER)
    outcomes = {i: (Outcome(**o), s) for i, o, s in
                zip(network, stage["outcomes"], stage["seconds"] or [0.0] * len(network))}
    if not loads:
        return outcomes
    if not stage["listening"]:
        why = Outcome.not_run("no load phase: the server never listened", status=Status.ERROR)
        return outcomes | {i: (why, 0.0) for i in loads}
    if target.exited():  # died during the network checks: no load phase
        why = Outcome.not_run("no load phase: the server is no longer running")
        return outcomes | {i: (why, 0.0) for i in loads}
    load = ex.load or {}
    progress(f"[{ex.id}] load: {load.get('users')} users for {load.get('duration')} s")
    started = time.monotonic()
    with exclusive_load() as waited:  # one load phase at a time per machine: fair figures
        target.extend_watchdog(waited)
        load_now = calibration.load_average()
        with ticking(progress, f"[{ex.id}] load", float(load.get("duration", 5))):
            stats = target.load_phase(load)
        # the machine's calibration: cached while fresh, else measured now (still locked)
        cal = (calibration.calibrate(report, ex, progress, load_now)
               if calibration.needed(ex, report.os_name, load_params) else None)
        judged = judge_load(ex, loads, stats, cal, report.os_name)
        if cal is not None and cal.reused and failed_relative(ex, judged):
            # A failure is never judged on a cached calibration alone: the machine may
            # have slowed since. Measure it now, beside this load phase, as before.
            cal = calibration.calibrate(report, ex, progress, load_now, again=(
                "a load check failed against the cached calibration: judged again "
                "against one measured now"))
            judged = judge_load(ex, loads, stats, cal, report.os_name)
        if cal is not None and failed_relative(ex, judged) and not target.exited():
            stats, judged = confirm_load(ex, loads, target, load, cal, report.os_name,
                                         (stats, judged), progress)
    side = "reference" if cal is None or cal.source == "reference" else "calibration"
    report.load[ex.id] = {"submission": stats, side: cal.stats if cal else None}
    if cal is not None:
        report.calibrations[ex.id] = cal.to_dict()
    seconds = round(time.monotonic() - started, 3)
    return outcomes | {i: (outcome, seconds) for i, outcome in judged.items()}


def confirm_load(ex: Exercise, loads: list[int], target: Target, load: dict, cal, os_name: str,
                 first: tuple, progress) -> tuple:
    """A relative load failure is confirmed by a second load phase before it counts:
    on a shared machine one phase can be starved by whatever else runs beside it,
    which flipped a correct server's verdict (a reference measured at 0.247 of its own
    calibration). The phase with fewer failed checks is kept. Never passes a flawed
    server: a flaw that costs throughput or latency (one client at a time, per-byte
    work, a blocking call) costs it in both phases."""
    progress(f"[{ex.id}] a load check failed: the load phase once more, to confirm it")
    target.extend_watchdog(float(load.get("duration", 5)) + 30)
    with ticking(progress, f"[{ex.id}] load (again)", float(load.get("duration", 5))):
        stats = target.load_phase(load)
    second = (stats, judge_load(ex, loads, stats, cal, os_name))
    failures = [sum(o.status == Status.FAILED for o in run[1].values()) for run in (first, second)]
    return second if failures[1] < failures[0] else first


def judge_load(ex: Exercise, loads: list[int], stats, cal, os_name: str) -> dict[int, Outcome]:
    """The load checks' outcomes on the submission's statistics and the calibration."""
    return {i: run_check(ex.checks[i].spec, CheckContext(
        params=load_params(ex, ex.checks[i]), model=ex.model, os_name=os_name, load=stats,
        reference=cal.stats if cal else None, scale=cal.scale if cal else None))
        for i in loads}


def failed_relative(ex: Exercise, judged: dict[int, Outcome]) -> bool:
    """A load check with a relative threshold set failed."""
    return any(outcome.status == Status.FAILED and any(
        load_params(ex, ex.checks[i]).get(name) is not None
        for name in ex.checks[i].spec.relative_params) for i, outcome in judged.items())


def _result(ex: Exercise, check: CheckEntry, outcome: Outcome, seconds: float = 0.0,
            required: bool | None = None, os_name: str = "") -> CheckResult:
    if not check.runs_on(os_name):  # lab.yaml: this check cannot be passed under os_name
        outcome, required = Outcome.unavailable(check.unavailable[os_name]), False
    elif check.expect == "fail":
        outcome = expected_failure(outcome)
    return CheckResult(exercise=ex.id, check=check.check, title=check.title,
                       max_score=check.points, outcome=outcome,
                       required=check.required if required is None else required,
                       visibility=check.visibility, seconds=seconds)


def expected_failure(outcome: Outcome) -> Outcome:
    """A check marked `expect: fail` in lab.yaml: this model must fail it (the lesson).
    A check that did not run (the server crashed before it, or never listened) showed
    nothing: it stays a failure, never a lesson passed."""
    if outcome.skipped:
        return outcome
    if outcome.status == Status.FAILED:
        why = f"expected {outcome.expected}, got {outcome.got}" if outcome.expected else outcome.got
        return Outcome(True, figure=f"fails by design, the lesson: {why}")
    if outcome.status == Status.PASSED:
        return Outcome(False, expected="this check to fail for this model (the lesson)",
                       got=f"it passed ({outcome.figure})",
                       hint="this exercise asks for the model that shows the problem; "
                       "did you write a different model?")
    return outcome
