"""Write a run's results: results.json (Gradescope), junit.xml, report.html,
and the table on the terminal. Writers read only CheckResults."""

from __future__ import annotations

import html
import json
from pathlib import Path
from xml.etree import ElementTree as ET

from grader.outcome import CheckResult

MARK = {"passed": "PASS", "failed": "FAIL", "error": "ERROR", "unavailable": "N/A"}


def write_all(report) -> list[Path]:
    folder = report.folder
    (folder / "results.json").write_text(json.dumps(gradescope(report), indent=2))
    (folder / "junit.xml").write_bytes(junit(report))
    (folder / "report.html").write_text(html_report(report), encoding="utf-8")
    for exercise, log in report.logs.items():
        (folder / exercise).mkdir(exist_ok=True)
        (folder / exercise / "server.log").write_text(log)
    return [folder / "results.json", folder / "junit.xml", folder / "report.html"]


def gradescope(report) -> dict:
    """Gradescope's autograder results schema (results.json)."""
    tests = []
    for r in report.results:
        test = {
            "name": r.name,
            "score": r.score,
            "max_score": r.max_score,
            "status": "passed" if r.outcome.passed else "failed",
            "output": r.outcome.explain() or r.outcome.figure,
            "visibility": r.visibility,
        }
        if r.outcome.status == "unavailable":
            test["max_score"] = 0
        tests.append(test)
    return {
        "score": sum(r.score for r in report.results),
        "execution_time": round(report.seconds, 1),
        "output": f"{report.lab.name}: {'all required checks passed' if report.passed else 'not yet'}"
                  f" ({report.mode} mode, os={report.os_name}, run {report.run_id})",
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "tests": tests,
    }


def junit(report) -> bytes:
    suites = ET.Element("testsuites", name=report.lab.name)
    by_exercise: dict[str, list[CheckResult]] = {}
    for r in report.results:
        by_exercise.setdefault(r.exercise, []).append(r)
    for exercise, results in by_exercise.items():
        suite = ET.SubElement(suites, "testsuite", name=f"{report.lab.name}.{exercise}",
                              tests=str(len(results)),
                              failures=str(sum(r.outcome.status == "failed" for r in results)),
                              errors=str(sum(r.outcome.status == "error" for r in results)),
                              skipped=str(sum(r.outcome.status == "unavailable" for r in results)))
        for r in results:
            case = ET.SubElement(suite, "testcase", classname=f"{report.lab.name}.{exercise}",
                                 name=r.check, time=f"{r.seconds:.3f}")
            tag = {"failed": "failure", "error": "error", "unavailable": "skipped"}.get(
                r.outcome.status)
            if tag:
                ET.SubElement(case, tag, message=r.outcome.explain()[:500]).text = r.outcome.explain()
            ET.SubElement(case, "system-out").text = r.outcome.figure
    return ET.tostring(suites, encoding="utf-8", xml_declaration=True)


def html_report(report) -> str:
    rows = "\n".join(
        f"<tr class='{r.outcome.status}'><td>{html.escape(r.exercise)}</td>"
        f"<td>{html.escape(r.title)}</td><td>{MARK[r.outcome.status]}</td>"
        f"<td>{r.score:g}/{r.max_score:g}</td><td>{html.escape(r.outcome.figure)}</td>"
        f"<td>{html.escape(r.outcome.explain() if not r.outcome.passed else '')}</td></tr>"
        for r in report.results)
    total = sum(r.score for r in report.results)
    most = sum(r.max_score for r in report.results if r.outcome.status != "unavailable")
    return f"""<!doctype html><html><head><meta charset="utf-8">
<title>{report.lab.name} — {report.run_id}</title>
<style>body{{font:14px system-ui,sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}}
.passed td:nth-child(3){{color:#070}}.failed td:nth-child(3),.error td:nth-child(3){{color:#b00}}
.unavailable{{color:#888}}</style></head><body>
<h1>{html.escape(report.lab.title)} ({report.lab.name})</h1>
<p>Score {total:g} / {most:g} — {report.mode} mode, os={report.os_name}, run {report.run_id},
{report.seconds:.1f} s. Load statistics: <code>*/locust/</code> beside this file.</p>
<table><tr><th>exercise</th><th>check</th><th>verdict</th><th>points</th><th>measured</th>
<th>why, and what to try</th></tr>
{rows}
</table></body></html>
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
    total = sum(r.score for r in report.results)
    most = sum(r.max_score for r in report.results if r.outcome.status != "unavailable")
    verdict = "PASSED: every required check passed" if report.passed else "FAILED"
    out(f"\nscore {total:g}/{most:g} — {verdict} ({report.seconds:.1f} s)")
    out(f"results: {report.folder}")
