"""The class summary of a batch: class.csv, summary.json, summary.md, summary.html.

Everything is computed from the students' rows (grade.json, whose verdicts come
from run.json through report.py's `summarize`) and, for the load figures, from
each student's results.json (`extra_data.load`: the submission's and the
calibration's LoadStats, measured on the same machine in the same run).

summary.html is what an instructor opens: the score distribution, each check's
pass rate across the class (what the class struggles with, hardest first),
each exercise's throughput and p99 against the reference, the error rows, the
suspiciously similar pairs with their fragments, and who was graded when, by
which grader version, on which machine. Charts come from grader/svg.py; the
page is a jinja2 template with autoescaping (grader/templates/summary.html.j2).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from pathlib import Path

from markupsafe import Markup

from grader.charts import REFERENCE, SUBMISSION
from grader.classdir import Row
from grader.results import TEMPLATES, badge
from grader.svg import Series, bar_chart, line_chart

VERDICTS = ("passed", "failed", "error")
SHOWN_PAIRS = 50  # similar pairs with fragments on the page (all of them: summary.json)
CALIBRATION_SIDES = ("reference", "calibration")  # whichever the runner measured


def counts_of(rows: list[Row]) -> dict[str, int]:
    return {v: sum(r.verdict == v for r in rows) for v in VERDICTS}


def exercises_of(rows: list[Row]) -> list[str]:
    found: list[str] = []
    for row in rows:
        found += [e for e in row.exercises if e not in found]
    return found


def atomic_write(path: Path, text: str) -> None:
    """Write beside, then rename: a reader (or a killed batch) never sees half a file."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def class_csv(rows: list[Row], root: Path) -> str:
    exercises = exercises_of(rows)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["student", "score", "max_score", "verdict"]
                     + [f"{e} {k}" for e in exercises for k in ("score", "verdict")]
                     + ["seconds", "graded_at", "grader_version", "graded_on", "submission_sha",
                        "results", "error"])
    for row in rows:
        cells = []
        for e in exercises:
            ex = row.exercises.get(e)
            cells += [f"{ex['score']:g}", ex["verdict"]] if ex else ["", ""]
        folder = root / row.student
        writer.writerow([row.student, f"{row.score:g}", f"{row.max_score:g}", row.verdict,
                         *cells, f"{row.seconds:.1f}", row.graded_at, row.grader,
                         row.graded_on, row.key.get("submission", "")[:12],
                         row.student if folder.is_dir() else "", row.error])
    return out.getvalue()


def student_dict(row: Row, root: Path) -> dict:
    def file(name: str) -> str | None:
        return f"{row.student}/{name}" if (root / row.student / name).exists() else None

    return {"student": row.student, "submission": row.submission, "verdict": row.verdict,
            "passed": row.verdict == "passed", "score": row.score, "max_score": row.max_score,
            "exit_code": row.exit_code, "seconds": round(row.seconds, 1),
            "error": row.error or None, "graded_at": row.graded_at, "grader": row.grader,
            "graded_on": row.graded_on, "key": row.key, "kept": row.kept,
            "results": file("results.json"), "junit": file("junit.xml"),
            "report": file("report.html"), "log": file("grader.log"),
            "exercises": row.exercises}


def write_tables(root: Path, rows: list[Row], info: dict) -> list[Path]:
    """class.csv, summary.json and summary.md (rewritten as each student finishes)."""
    exercises, counts = exercises_of(rows), counts_of(rows)
    atomic_write(root / "class.csv", class_csv(rows, root))
    summary = {**info, "counts": counts, "exercises": exercises,
               "students": [student_dict(r, root) for r in rows]}
    atomic_write(root / "summary.json", json.dumps(summary, indent=2))
    atomic_write(root / "summary.md", TEMPLATES.get_template("summary.md.j2").render(
        info=info, rows=rows, counts=counts, exercises=exercises))
    return [root / "class.csv", root / "summary.json", root / "summary.md"]


def load_figures(root: Path, rows: list[Row]) -> dict[str, list[dict]]:
    """Per exercise, per student: the submission's and the calibration's ok replies/s
    and p99 (ms), from results.json's extra_data.load."""
    out: dict[str, list[dict]] = {}
    for row in rows:
        try:
            data = json.loads((root / row.student / "results.json").read_text())
        except (OSError, ValueError):
            continue
        for exercise, sides in ((data.get("extra_data") or {}).get("load") or {}).items():
            mine = sides.get("submission")
            side = next((s for s in CALIBRATION_SIDES if sides.get(s)), None)
            ref = sides[side] if side else None
            if not mine:
                continue
            out.setdefault(exercise, []).append(
                {"student": row.student, "rps": ok_rps(mine), "p99": mine.get("p99_ms", 0.0),
                 "ref_rps": ok_rps(ref) if ref else None,
                 "ref_p99": ref.get("p99_ms") if ref else None, "side": side})
    return out


def ok_rps(stats: dict) -> float:
    requests = stats.get("requests") or 0
    return stats.get("rps", 0.0) * (requests - stats.get("failures", 0)) / requests \
        if requests else 0.0


def median(values: list[float]) -> float | None:
    values = sorted(values)
    if not values:
        return None
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2


def load_charts(exercise: str, figures: list[dict]) -> dict:
    """Two charts: the class's throughput and p99, students sorted, each beside the
    calibration measured in that student's own run (same machine, close in time)."""
    by_rps = sorted(figures, key=lambda f: f["rps"])
    by_p99 = sorted(figures, key=lambda f: f["p99"])
    rank = "students, sorted (1 = lowest)"
    label = ("reference, same machine" if any(f["side"] == "reference" for f in figures)
             else "yardstick, same machine")

    def series(items, mine, ref):
        out = [Series("submissions", [(i + 1, f[mine]) for i, f in enumerate(items)],
                      SUBMISSION)]
        refs = [(i + 1, f[ref]) for i, f in enumerate(items) if f[ref] is not None]
        if refs:
            out.append(Series(label, refs, REFERENCE, dashed=True))
        return out

    ticks = list(range(1, len(figures) + 1)) if len(figures) <= 12 else None
    ref_rps = median([f["ref_rps"] for f in figures if f["ref_rps"] is not None])
    ref_p99 = median([f["ref_p99"] for f in figures if f["ref_p99"] is not None])
    return {
        "exercise": exercise, "students": len(figures),
        "median_rps": median([f["rps"] for f in figures]), "ref_rps": ref_rps,
        "median_p99": median([f["p99"] for f in figures]), "ref_p99": ref_p99,
        "ref_label": label.split(",")[0],
        "charts": [Markup(line_chart(f"{exercise}: correct replies/s", series(by_rps, "rps",
                                                                            "ref_rps"),
                                     x_label=rank, y_label="replies/s", x_ticks=ticks)),
                   Markup(line_chart(f"{exercise}: p99 latency", series(by_p99, "p99", "ref_p99"),
                                     x_label=rank, y_label="ms", x_ticks=ticks))],
    }


def score_histogram(rows: list[Row]) -> Markup:
    """Students per score band (about ten bands; the top band includes full marks)."""
    graded = [r for r in rows if r.verdict != "error"]
    top = max((r.max_score for r in rows), default=0.0) or 1.0
    width = max(1.0, float(round(top / 10)))
    count = max(1, math.ceil(top / width))
    bands = [0] * count
    for r in graded:
        bands[min(int(r.score // width), count - 1)] += 1
    bins = {f"{i * width:g}–{min((i + 1) * width, top):g} points": {"students": n}
            for i, n in enumerate(bands)}
    if len(rows) != len(graded):
        bins["no grade (error)"] = {"students": len(rows) - len(graded)}
    return Markup(bar_chart("score distribution", bins, x_label="students"))


def pass_rates(rows: list[Row]) -> list[dict]:
    """Each (exercise, check): how many passed among the students it ran for; hardest first."""
    table: dict[tuple[str, str], dict[str, int]] = {}
    for row in rows:
        for exercise, ex in row.exercises.items():
            for check, status in ex.get("checks", {}).items():
                if status == "unavailable":
                    continue
                cell = table.setdefault((exercise, check), {v: 0 for v in VERDICTS})
                cell[status] = cell.get(status, 0) + 1
    out = []
    for (exercise, check), cell in table.items():
        ran = sum(cell.values())
        out.append({"exercise": exercise, "check": check, **cell, "ran": ran,
                    "rate": cell["passed"] / ran if ran else 0.0})
    return sorted(out, key=lambda c: (c["rate"], c["exercise"], c["check"]))


def pass_rate_chart(rates: list[dict]) -> Markup:
    by_check: dict[str, list[int]] = {}
    for c in rates:
        passed, ran = by_check.setdefault(c["check"], [0, 0])
        by_check[c["check"]] = [passed + c["passed"], ran + c["ran"]]
    groups = {check: {"% passed": 100.0 * p / r} for check, (p, r) in
              sorted(by_check.items(), key=lambda kv: kv[1][0] / max(kv[1][1], 1))}
    return Markup(bar_chart("pass rate by check, all exercises (hardest first)", groups,
                            x_label="% of the students it ran for"))


def write_html(root: Path, rows: list[Row], info: dict, similar: dict) -> Path:
    figures = load_figures(root, rows)
    rates = pass_rates(rows)
    css = (Path(__file__).parent / "templates" / "report.css").read_text()
    page = TEMPLATES.get_template("summary.html.j2").render(
        info=info, rows=rows, counts=counts_of(rows), exercises=exercises_of(rows),
        histogram=score_histogram(rows) if rows else None, rates=rates,
        rate_chart=pass_rate_chart(rates) if rates else None,
        loads=[load_charts(e, f) for e, f in figures.items()],
        errors=[r for r in rows if r.verdict == "error"], similar=similar,
        shown_pairs=SHOWN_PAIRS,
        badge=badge, css=Markup(css),
        graders=sorted({r.grader for r in rows if r.grader}),
        has=lambda student, name: (root / student / name).exists())
    atomic_write(root / "summary.html", page)
    return root / "summary.html"
