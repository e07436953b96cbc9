"""Write a run's results: results.json (Gradescope), junit.xml, report.html,
and what the terminal shows (live progress, then the table of checks).

Writers read only CheckResults, plus the load statistics the runner kept
(report.load) for report.html's charts, which grader/charts.py draws.
"""

from __future__ import annotations

import html
import json
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from xml.etree import ElementTree as ET

from grader import charts
from grader.outcome import CheckResult

MARK = {"passed": "PASS", "failed": "FAIL", "error": "ERROR", "unavailable": "N/A"}


def write_all(report) -> list[Path]:
    folder = report.folder
    for exercise, log in report.logs.items():
        (folder / exercise).mkdir(exist_ok=True)
        (folder / exercise / "server.log").write_text(log)
    (folder / "results.json").write_text(json.dumps(gradescope(report), indent=2))
    (folder / "junit.xml").write_bytes(junit(report))
    (folder / "report.html").write_text(html_report(report), encoding="utf-8")
    return [folder / "results.json", folder / "junit.xml", folder / "report.html"]


def totals(report) -> tuple[float, float]:
    """(score, most): unavailable exercises count for neither."""
    score = sum(r.score for r in report.results)
    most = sum(r.max_score for r in report.results if r.outcome.status != "unavailable")
    return score, most


def _numbers(report) -> dict[int, str]:
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
    if r.outcome.status == "error":
        return f"ERROR, no verdict (not a pass): {r.outcome.explain()}"
    if r.outcome.status == "unavailable":
        return f"not run: {r.outcome.got}"
    if r.outcome.passed:
        return r.outcome.figure
    return "; ".join(x for x in (r.outcome.figure, r.outcome.explain()) if x)


def _load_data(report) -> dict:
    out = {}
    for exercise, sides in (getattr(report, "load", None) or {}).items():
        out[exercise] = {side: stats.to_dict() if stats is not None else None
                         for side, stats in sides.items()}
    return out


def gradescope(report) -> dict:
    """Gradescope's autograder results (results.json); see
    tests/gradescope_results.schema.json for the fields it accepts."""
    tests = []
    numbers = _numbers(report)
    for i, r in enumerate(report.results):
        status = r.outcome.status
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
        if status != "unavailable":  # a check not run is neither green nor red
            test["status"] = "passed" if r.outcome.passed else "failed"
        tests.append(test)
    score, most = totals(report)
    verdict = "every required check passed" if report.passed else "not yet: see the failed checks"
    load = _load_data(report)
    leaderboard = []
    for exercise, sides in load.items():
        if sides.get("submission"):
            mine = sides["submission"]
            ok_rps = mine["rps"] * (1 - mine["failures"] / mine["requests"]) if mine["requests"] else 0
            leaderboard += [{"name": f"{exercise}: replies/s", "value": round(ok_rps, 1)},
                            {"name": f"{exercise}: p95 ms", "value": mine["p95_ms"],
                             "order": "asc"}]
    data = {
        "score": score,
        "execution_time": round(report.seconds, 1),
        "output": f"{report.lab.name}: {score:g}/{most:g}, {verdict} "
                  f"({report.mode} mode, os={report.os_name}, run {report.run_id})",
        "output_format": "text",
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "extra_data": {"lab": report.lab.name, "run_id": report.run_id, "mode": report.mode,
                       "os": report.os_name, "passed": report.passed, "max_score": most,
                       "load": load},
        "tests": tests,
    }
    if leaderboard:
        data["leaderboard"] = leaderboard
    return data


def junit(report) -> bytes:
    suites = ET.Element("testsuites", name=report.lab.name, tests=str(len(report.results)),
                        failures=str(sum(r.outcome.status == "failed" for r in report.results)),
                        errors=str(sum(r.outcome.status == "error" for r in report.results)),
                        skipped=str(sum(r.outcome.status == "unavailable" for r in report.results)),
                        time=f"{report.seconds:.3f}")
    by_exercise: dict[str, list[CheckResult]] = {}
    for r in report.results:
        by_exercise.setdefault(r.exercise, []).append(r)
    for exercise, results in by_exercise.items():
        suite = ET.SubElement(suites, "testsuite", name=f"{report.lab.name}.{exercise}",
                              tests=str(len(results)),
                              failures=str(sum(r.outcome.status == "failed" for r in results)),
                              errors=str(sum(r.outcome.status == "error" for r in results)),
                              skipped=str(sum(r.outcome.status == "unavailable" for r in results)),
                              time=f"{sum(r.seconds for r in results):.3f}")
        for r in results:
            case = ET.SubElement(suite, "testcase", classname=f"{report.lab.name}.{exercise}",
                                 name=r.check, time=f"{r.seconds:.3f}")
            tag = {"failed": "failure", "error": "error", "unavailable": "skipped"}.get(
                r.outcome.status)
            if tag:
                ET.SubElement(case, tag, message=r.outcome.explain()[:500]).text = r.outcome.explain()
            ET.SubElement(case, "system-out").text = r.outcome.figure
    return ET.tostring(suites, encoding="utf-8", xml_declaration=True)


STYLE = """
:root{--pass:#1a7f37;--fail:#cf222e;--error:#9a6700;--na:#6e7781;--line:#d0d7de;--muted:#57606a}
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans",sans-serif;margin:0;
 color:#1f2328;background:#f6f8fa}
main{max-width:1080px;margin:0 auto;padding:20px 24px 40px}
.card{background:#fff;border:1px solid var(--line);border-radius:8px;padding:16px 20px;margin-top:16px}
header.card{display:flex;justify-content:space-between;align-items:center;gap:16px;flex-wrap:wrap}
h1{font-size:20px;margin:0 0 4px}h2{font-size:17px;margin:0}h3{font-size:15px;margin:18px 0 8px}
.meta,.note,.muted{color:var(--muted)}.meta{margin:0}
.score{text-align:right}.score b{font-size:28px;display:block;line-height:1.1}
.badge{display:inline-block;font-weight:600;font-size:12px;padding:2px 10px;border-radius:999px;
 color:#fff;letter-spacing:.02em}
.badge.passed{background:var(--pass)}.badge.failed{background:var(--fail)}
.badge.error{background:var(--error)}.badge.unavailable{background:var(--na)}
.counts span{margin-right:12px}
.exhead{display:flex;justify-content:space-between;align-items:baseline;gap:12px}
table{border-collapse:collapse}
table.checks{width:100%;margin-top:10px}
table.checks th,table.checks td{border-bottom:1px solid #eaeef2;padding:7px 8px;text-align:left;
 vertical-align:top}
table.checks th{font-size:12px;color:var(--muted);font-weight:600;border-bottom-color:var(--line)}
td.points{white-space:nowrap;text-align:right}td.verdict{width:64px}
.checkid{display:block;color:var(--muted);font:12px ui-monospace,SFMono-Regular,Menlo,monospace}
.why{font:12px/1.4 ui-monospace,SFMono-Regular,Menlo,monospace;white-space:pre-wrap;
 word-break:break-word;margin:0}
.why b{font-family:system-ui,sans-serif}
tr.unavailable td{color:var(--na)}
table.figures th,table.figures td{border:1px solid #eaeef2;padding:4px 10px;text-align:right}
table.figures tr th:first-child{text-align:left;font-weight:normal;color:var(--muted)}
.charts{display:flex;flex-wrap:wrap;gap:14px;margin-top:12px}
svg.chart{border:1px solid #eaeef2;border-radius:6px;max-width:100%;height:auto}
svg .ctitle{font:600 13px system-ui,sans-serif;fill:#1f2328}
svg .tick{font:11px system-ui,sans-serif;fill:#57606a}
svg .legend{font:11px system-ui,sans-serif;fill:#1f2328}
svg .cempty{font:13px system-ui,sans-serif;fill:#6e7781}
svg .grid{stroke:#eaeef2}svg .axis{stroke:#8c959f}
a{color:#0969da}footer{margin-top:18px;color:var(--muted);font-size:12px}
"""


def _verdict_cell(status: str) -> str:
    return f"<span class='badge {status}'>{MARK[status]}</span>"


def _why(r: CheckResult) -> str:
    o, esc = r.outcome, html.escape
    if o.status == "passed":
        return ""
    lines = []
    if o.status == "error":
        lines.append("<b>The grader could not reach a verdict (this is not a pass).</b>")
    if o.expected:
        lines += [f"<b>expected</b> {esc(o.expected)}", f"<b>got</b> {esc(o.got)}"]
    elif o.got:
        lines.append(esc(o.got))
    if o.hint:
        lines.append(f"<b>hint</b> {esc(o.hint)}")
    return f"<p class='why'>{'<br>'.join(lines)}</p>"


def _links(report, exercise: str) -> list[tuple[str, str]]:
    candidates = [
        ("Locust report (submission)", f"{exercise}/locust/report.html"),
        ("Locust report (reference)", f"{exercise}-reference/locust/report.html"),
        ("server log", f"{exercise}/server.log"),
        ("Locust CSV statistics", f"{exercise}/locust/stats_stats.csv"),
        ("stats history", f"{exercise}/locust/stats_stats_history.csv"),
    ]
    return [(text, href) for text, href in candidates if (report.folder / href).exists()]


def _exercise_section(report, exercise: str, results: list[CheckResult]) -> str:
    esc = html.escape
    spec = next((ex for ex in report.lab.exercises if ex.id == exercise), None)
    title = getattr(spec, "title", "")
    rows = "\n".join(
        f"<tr class='{r.outcome.status}'><td class='verdict'>{_verdict_cell(r.outcome.status)}</td>"
        f"<td>{esc(r.title)}<span class='checkid'>{esc(r.check)}"
        f"{'' if r.required else ' · optional'}</span></td>"
        f"<td class='points'>{r.score:g} / {r.max_score:g}</td>"
        f"<td>{esc(r.outcome.figure)}{_why(r)}</td></tr>"
        for r in results)
    got = sum(r.score for r in results)
    most = sum(r.max_score for r in results if r.outcome.status != "unavailable")
    load = (getattr(report, "load", None) or {}).get(exercise)
    links = _links(report, exercise)
    if load and load.get("submission") is not None:
        extra = charts.load_section(exercise, load["submission"], load.get("reference"),
                                    getattr(spec, "load", None), links)
    elif links:
        extra = "<p class='links'>" + " · ".join(
            f"<a href='{esc(h)}'>{esc(t)}</a>" for t, h in links) + "</p>"
    else:
        extra = ""
    return f"""<section class="card exercise" id="ex-{esc(exercise)}">
<div class="exhead"><h2>{esc(exercise)}{' — ' + esc(title) if title else ''}</h2>
<span class="muted">{got:g} / {most:g} points</span></div>
<table class="checks"><tr><th>verdict</th><th>check</th><th>points</th>
<th>measured, and when it fails: why and what to try</th></tr>
{rows}
</table>
{extra}
</section>"""


def html_report(report) -> str:
    """A page a student or instructor opens offline: verdicts, figures, load charts."""
    esc = html.escape
    score, most = totals(report)
    verdict = "passed" if report.passed else "failed"
    counts = {s: sum(r.outcome.status == s for r in report.results) for s in MARK}
    count_html = "".join(f"<span>{_verdict_cell(s)} {n}</span>" for s, n in counts.items() if n)
    by_exercise: dict[str, list[CheckResult]] = {}
    for r in report.results:
        by_exercise.setdefault(r.exercise, []).append(r)
    sections = "\n".join(_exercise_section(report, ex, rs) for ex, rs in by_exercise.items())
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(report.lab.name)}: {score:g}/{most:g} — run {esc(report.run_id)}</title>
<style>{STYLE}</style></head>
<body><main>
<header class="card">
<div><h1>{esc(report.lab.title)} <span class="muted">({esc(report.lab.name)})</span></h1>
<p class="meta">run {esc(report.run_id)} · {esc(report.mode)} mode · os={esc(report.os_name)} ·
{report.seconds:.1f} s</p>
<p class="counts">{count_html}</p></div>
<div class="score"><b>{score:g} / {most:g}</b>
<span class="badge {verdict}">{'PASSED' if report.passed else 'FAILED'}</span>
<div class="muted">{'every required check passed' if report.passed else 'some required check did not pass'}</div></div>
</header>
{sections}
<footer>Written by iolab's grader. Beside this file: <a href="results.json">results.json</a>
(Gradescope), <a href="junit.xml">junit.xml</a>, and per exercise the server's log and
Locust's own statistics (<code>&lt;exercise&gt;/locust/</code>).</footer>
</main></body></html>
"""


def print_table(report, out=print) -> None:
    width = max((len(r.title) for r in report.results), default=20)
    current = None
    for r in report.results:
        if r.exercise != current:
            current = r.exercise
            out(f"\n{report.lab.name} / {current}")
        out(f"  {MARK[r.outcome.status]:<5} {r.title:<{width}}  {r.score:g}/{r.max_score:g}"
            f"  {r.outcome.figure}")
        if not r.outcome.passed:
            out(f"        {r.outcome.explain()}")
    total, most = totals(report)
    verdict = "PASSED: every required check passed" if report.passed else "FAILED"
    out(f"\nscore {total:g}/{most:g} — {verdict} ({report.seconds:.1f} s)")
    out(f"results: {report.folder}")
    if (report.folder / "report.html").exists():
        out(f"report:  {report.folder / 'report.html'}")


# Live progress on the terminal while the stack starts and the load runs.

class Tick(str):
    """A progress message that the next one replaces (a countdown on a terminal)."""


@contextmanager
def ticking(progress, label: str, total: float, every: float = 1.0):
    """While the block runs, report `label: 3/5 s` through progress every second.

    Past `total` it says what it waits for. terminal_progress shows one counting
    line on a terminal and thins the ticks out to a line every few seconds in a
    CI log.
    """
    done = threading.Event()
    started = time.monotonic()

    def tick() -> None:
        while not done.wait(every):
            elapsed = time.monotonic() - started
            if elapsed <= total + every / 2:
                progress(Tick(f"{label}: {min(elapsed, total):.0f}/{total:g} s"))
            else:
                progress(Tick(f"{label}: {elapsed:.0f} s ({total:g} s of load done, "
                              "waiting for Locust's statistics)"))

    thread = threading.Thread(target=tick, name="load-progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


def terminal_progress(stream=None, log_every: float = 5.0):
    """progress() for the command line. On a terminal a Tick rewrites one counting
    line; in a log (not a tty) a Tick is a plain line, one per log_every s at most."""
    stream = stream or sys.stdout
    tty = stream.isatty()
    state = {"open": False, "last": -log_every}
    lock = threading.Lock()

    def progress(message: str) -> None:
        with lock:
            if isinstance(message, Tick):
                if tty:
                    stream.write(f"\r\033[K{message}")
                    state["open"] = True
                elif time.monotonic() - state["last"] >= log_every:
                    state["last"] = time.monotonic()
                    stream.write(f"{message}\n")
            else:
                if state["open"]:
                    stream.write("\r\033[K")
                    state["open"] = False
                state["last"] = time.monotonic()  # a log's next tick comes log_every s later
                stream.write(f"{message}\n")
            stream.flush()

    return progress
