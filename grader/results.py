"""Write a run's results: results.json (Gradescope), junit.xml, run.json (every
CheckResult, read back by batch grading), report.html, and the terminal table.

Writers read only the RunReport: its CheckResults, their summary
(grader/report.py, the one definition of "passed"), and the load statistics
the runner kept for report.html's charts (grader/charts.py). The page is a
jinja2 template with autoescaping (grader/templates/report.html.j2).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree as ET

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from grader import charts, crashlog
from grader.checks.load import REFERENCE, Scale
from grader.outcome import CheckResult, Outcome, Status
from grader.report import RUN_FILE, RunReport, by_exercise, calibration_side, summarize

MARK = {Status.PASSED: "PASS", Status.FAILED: "FAIL", Status.ERROR: "ERROR",
        Status.UNAVAILABLE: "N/A"}
TEMPLATES = Environment(loader=FileSystemLoader(Path(__file__).parent / "templates"),
                        autoescape=select_autoescape(["html", "j2"]), trim_blocks=True,
                        lstrip_blocks=True)


def write_all(report: RunReport) -> list[Path]:
    folder = report.folder
    for exercise, log in report.logs.items():
        (folder / exercise).mkdir(exist_ok=True)
        (folder / exercise / "server.log").write_text(log)
    files = {RUN_FILE: json.dumps(report.to_dict(), indent=1),
             "results.json": json.dumps(gradescope(report), indent=2),
             "report.html": html_report(report)}
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    (folder / "junit.xml").write_bytes(junit(report))
    return [folder / "results.json", folder / "junit.xml", folder / "report.html",
            folder / RUN_FILE]


def _numbers(report: RunReport) -> dict[int, str]:
    """Gradescope's test numbers: exercise.check, e.g. "1.3"."""
    numbers, exercises = {}, []
    for i, r in enumerate(report.results):
        if r.exercise not in exercises:
            exercises.append(r.exercise)
        before = sum(1 for x in report.results[:i] if x.exercise == r.exercise)
        numbers[i] = f"{exercises.index(r.exercise) + 1}.{before + 1}"
    return numbers


def _output(r: CheckResult) -> str:
    """What Gradescope shows under a test: the figure, or why it failed and a hint."""
    if r.status == Status.ERROR:
        return f"ERROR, no verdict (not a pass): {r.outcome.explain()}"
    if r.status == Status.UNAVAILABLE:
        return f"not run: {r.outcome.got}"
    if r.outcome.passed:
        return r.outcome.figure
    return "; ".join(x for x in (r.outcome.figure, r.outcome.explain()) if x)


def _load_data(report: RunReport) -> dict:
    out = {}
    for exercise, sides in report.load.items():
        out[exercise] = {side: stats.to_dict() if stats is not None else None
                         for side, stats in sides.items()}
    return out


def gradescope(report: RunReport) -> dict:
    """Gradescope's autograder results (results.json); see
    tests/gradescope_results.schema.json for the fields it accepts."""
    tests = []
    numbers = _numbers(report)
    for i, r in enumerate(report.results):
        status = r.status.value
        test = {
            "name": r.name,
            "name_format": "text",
            "number": numbers[i],
            "score": r.score,
            "max_score": 0.0 if status == "unavailable" else r.max_score,
            "output": _output(r),
            "output_format": "text",
            "tags": [r.exercise, r.check, status],
            "visibility": r.visibility,
            "extra_data": {"exercise": r.exercise, "check": r.check, "status": status,
                           "figure": r.outcome.figure, "required": r.required,
                           "seconds": r.seconds},
        }
        if r.status != Status.UNAVAILABLE:  # a check not run is neither green nor red
            test["status"] = "passed" if r.outcome.passed else "failed"
        tests.append(test)
    summary = report.summary
    score, most = summary.score, summary.max_score
    verdict = "every required check passed" if report.passed else "not yet: see the failed checks"
    load = _load_data(report)
    leaderboard = []
    for exercise, sides in report.load.items():
        if (mine := sides.get("submission")) is not None:
            # Gradescope's leaderboard (docs/platforms.md): higher is better by default
            leaderboard += [{"name": f"{exercise}: correct replies/s",
                             "value": round(mine.ok_rps, 1), "order": "desc"},
                            {"name": f"{exercise}: p99 latency ms", "value": round(mine.p99_ms, 3),
                             "order": "asc"}]
    data = {
        "score": score,
        "execution_time": round(report.seconds, 1),
        "output": f"{report.lab.name}: {score:g}/{most:g}, {verdict} "
                  f"({report.mode} mode, os={report.os_name}, run {report.run_id})"
                  + "".join(f"\n{ex}: {why}" for ex, why in report.crashes.items()),
        "output_format": "text",
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "extra_data": {"lab": report.lab.name, "run_id": report.run_id, "mode": report.mode,
                       "os": report.os_name, "passed": report.passed, "max_score": most,
                       "load": load, "calibrations": report.calibrations,
                       "crashes": report.crashes},
        "tests": tests,
    }
    if leaderboard:
        data["leaderboard"] = leaderboard
    return data


def _counts(results: list[CheckResult]) -> dict[str, str]:
    """JUnit's counters: failures, errors, skipped (a check not run)."""
    return {attr: str(sum(r.status == status for r in results)) for attr, status in
            (("failures", Status.FAILED), ("errors", Status.ERROR),
             ("skipped", Status.UNAVAILABLE))}


def junit(report: RunReport) -> bytes:
    suites = ET.Element("testsuites", name=report.lab.name, tests=str(len(report.results)),
                        **_counts(report.results), time=f"{report.seconds:.3f}")
    for exercise, results in by_exercise(report.results).items():
        suite = ET.SubElement(suites, "testsuite", name=f"{report.lab.name}.{exercise}",
                              tests=str(len(results)), **_counts(results),
                              time=f"{sum(r.seconds for r in results):.3f}")
        for r in results:
            case = ET.SubElement(suite, "testcase", classname=f"{report.lab.name}.{exercise}",
                                 name=r.check, time=f"{r.seconds:.3f}")
            tag = {Status.FAILED: "failure", Status.ERROR: "error",
                   Status.UNAVAILABLE: "skipped"}.get(r.status)
            if tag:
                ET.SubElement(case, tag, message=r.outcome.explain()[:500]).text = r.outcome.explain()
            ET.SubElement(case, "system-out").text = r.outcome.figure
    return ET.tostring(suites, encoding="utf-8", xml_declaration=True)


def badge(status: Status | str) -> Markup:
    status = Status(status)
    return Markup(f"<span class='badge {status.value}'>{MARK[status]}</span>")


def _links(report: RunReport, exercise: str) -> list[tuple[str, str]]:
    candidates = [
        ("Locust report (submission)", f"{exercise}/locust/report.html"),
        ("Locust report (reference)", f"{exercise}-reference/locust/report.html"),
        ("Locust report (yardstick)", f"{exercise}-calibration/locust/report.html"),
        ("server log", f"{exercise}/server.log"),
        ("Locust CSV statistics", f"{exercise}/locust/stats_stats.csv"),
        ("stats history", f"{exercise}/locust/stats_stats_history.csv"),
    ]
    return [(text, href) for text, href in candidates if (report.folder / href).exists()]


def _exercise_view(report: RunReport, exercise: str, results: list[CheckResult]) -> dict:
    spec = next((ex for ex in report.lab.exercises if ex.id == exercise), None)
    sides = report.load.get(exercise) or {}
    load = None
    if sides.get("submission") is not None:
        name, calibration = calibration_side(sides)
        load = charts.load_view(sides["submission"], calibration, spec.load if spec else None,
                                name=name or "reference",
                                scale=scale_of(report.calibrations.get(exercise), name))
        load["calibration"] = report.calibrations.get(exercise)
    crash = report.crashes.get(exercise, "")
    return {"id": exercise, "title": spec.title if spec else "", "rows": rows(results),
            "summary": summarize(results), "load": load, "links": _links(report, exercise),
            "crash": crash, "log_tail": crashlog.tail(report.logs.get(exercise, ""))
            if crash else []}


def scale_of(calibration: dict | None, side: str | None) -> Scale:
    """The Scale a run's calibration was judged with (run.json's calibrations entry)."""
    if not calibration or side != "calibration":
        return REFERENCE
    factors = calibration.get("scale") or {}
    return Scale(calibration.get("source", "yardstick"), factors.get("rps", 1.0),
                 factors.get("p95", 1.0))


def html_report(report: RunReport) -> str:
    """A page a student or instructor opens offline: verdicts, figures, load charts."""
    counts = [(s, n) for s in MARK if (n := sum(r.status == s for r in report.results))]
    return TEMPLATES.get_template("report.html.j2").render(
        lab=report.lab, run_id=report.run_id, mode=report.mode, os_name=report.os_name,
        seconds=report.seconds, summary=report.summary, passed=report.passed, counts=counts,
        badge=badge, css=Markup((Path(__file__).parent / "templates" / "report.css").read_text()),
        exercises=[_exercise_view(report, ex, rs)
                   for ex, rs in by_exercise(report.results).items()])


@dataclass
class Row:
    """A line of the terminal table and of report.html: one check, or the checks that
    one event kept from running (a crash, a missing file), shown once with its reason."""

    status: Status
    title: str
    check: str  # the check's registry name, or the first and last of a group
    required: bool
    score: float
    max_score: float  # what it counts for here: nothing when it is not run under this OS
    outcome: Outcome
    count: int = 1


def rows(results: list[CheckResult]) -> list[Row]:
    """One row per check; consecutive checks not run for the same reason make one."""
    out: list[Row] = []
    for r in results:
        last = out[-1] if out else None
        if (last is not None and r.outcome.skipped and last.outcome.skipped
                and r.status == last.status and r.outcome.explain() == last.outcome.explain()):
            last.count += 1
            last.score += r.score
            last.max_score += r.counted_max
            last.required = last.required or r.required
            last.title = f"{last.count} checks not run"
            last.check = f"{last.check.split(' … ')[0]} … {r.check}"
            continue
        out.append(Row(r.status, r.title, r.check, r.required, r.score, r.counted_max,
                       r.outcome))
    return out


def _why(row: Row) -> str:
    """A row's explanation; a group's title already says "not run"."""
    text = row.outcome.explain()
    return text.removeprefix("not run: ") if row.count > 1 else text


def print_table(report: RunReport, out=print) -> None:
    grouped = by_exercise(report.results)
    width = max((len(r.title) for r in report.results), default=20)
    for exercise, results in grouped.items():
        sub = summarize(results)
        out(f"\n{report.lab.name} / {exercise}  {sub.score:g}/{sub.max_score:g}")
        for row in rows(results):
            out(f"  {MARK[row.status]:<5} {row.title:<{width}}  {row.score:g}/{row.max_score:g}"
                f"  {row.outcome.figure}".rstrip())
            if not row.outcome.passed:
                out(f"        {_why(row)}")
        if exercise in report.crashes and (tail := crashlog.tail(report.logs.get(exercise, ""))):
            out(f"        the end of its log ({exercise}/server.log):")
            for line in tail:
                out(f"        | {line}".rstrip())
    summary = report.summary
    verdict = "PASSED: every required check passed" if report.passed else "FAILED"
    out(f"\nscore {summary.score:g}/{summary.max_score:g} — {verdict} ({report.seconds:.1f} s)")
    out(f"results: {report.folder}")
    if (report.folder / "report.html").exists():
        out(f"report:  {report.folder / 'report.html'}")
