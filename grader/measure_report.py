"""What `python -m grader measure` writes: measure.csv, the charts (SVG, drawn by
grader/svg.py, the one chart module), measure.html (a jinja2 template beside
report.html.j2, autoescaped) and the key figures for the terminal."""

from __future__ import annotations

import argparse
import csv
import json
from dataclasses import fields
from pathlib import Path

from markupsafe import Markup

from grader import measure as measuring
from grader.labspec import load_lab
from grader.measure import LEVELS, MODES, Measurement, Point
from grader.paths import RESULTS, shown
from grader.report import new_run_id
from grader.results import TEMPLATES
from grader.svg import PALETTE, Series, line_chart

CSV_FILE, HTML_FILE = "measure.csv", "measure.html"
KEY_LEVEL = 1000  # the notes' claim is shown at this many connections
COLUMNS = [f.name for f in fields(Point)]
CHARTS = {  # file -> (mode, figure, title, y label)
    "wait_idle.svg": ("idle", "wait_us", "One wait call's CPU time while connections idle",
                      "µs of CPU per wait call (median)"),
    "latency_p50_idle.svg": ("idle", "p50_us", "The active client's reply latency, p50",
                             "µs, median round trip"),
    "latency_p99_idle.svg": ("idle", "p99_us", "The active client's reply latency, p99",
                             "µs, 99th percentile"),
    "wait_active.svg": ("active", "wait_us_per_reply",
                        "All connections active: wait-call CPU per reply",
                        "µs of wait-call CPU per reply"),
}
X_LABEL = {"idle": "connections held idle (+1 active client)",
           "active": "connections, each sending a line every 0.5 s"}


def write(run: Measurement) -> list[Path]:
    """Every file of the run into run.folder; returns them, the page last."""
    written = [write_csv(run, run.folder / CSV_FILE)]
    svgs = {}
    for name, spec in CHARTS.items():
        if spec[0] in run.modes:
            svgs[name] = chart(run, *spec)
            (run.folder / name).write_text(svgs[name], encoding="utf-8")
            written.append(run.folder / name)
    (run.folder / "measure.json").write_text(json.dumps(
        {"machine": run.machine, "seconds": run.seconds, "levels": run.levels,
         "duration": run.duration}, indent=1))
    page = run.folder / HTML_FILE
    page.write_text(html(run, svgs), encoding="utf-8")
    return written + [page]


def write_csv(run: Measurement, path: Path) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        out = csv.DictWriter(fh, fieldnames=COLUMNS)
        out.writeheader()
        for p in run.points:
            row = {c: getattr(p, c) for c in COLUMNS}
            out.writerow({k: round(v, 2) if isinstance(v, float) else v for k, v in row.items()})
    return path


def colors(run: Measurement) -> dict[str, str]:
    """One colour per server in every chart: select blue, poll orange, epoll green."""
    return {s.name: PALETTE[i % len(PALETTE)] for i, s in enumerate(run.subjects)}


def chart(run: Measurement, mode: str, figure: str, title: str, y_label: str) -> str:
    """One line per server over the levels it coped with; where it stopped is a note."""
    color = colors(run)
    series = [Series(s.name, [(p.level, getattr(p, figure)) for p in run.series(mode, s.name)
                              if p.ok], color[s.name]) for s in run.subjects]
    return line_chart(title, series, x_label=X_LABEL[mode], y_label=y_label,
                      notes=run.chart_notes(mode), x_ticks=ticks(run.levels, mode),
                      width=470, height=290)


def ticks(levels: list[int], mode: str) -> list[int]:
    """The levels as x ticks, leaving out one too close to the last kept (0 and 100
    would overlap on an axis to 5000)."""
    kept: list[int] = []
    for x in levels:
        if (mode == "idle" or x) and (not kept or x - kept[-1] >= max(levels) / 16):
            kept.append(x)
    return kept


def ratio(a: float, b: float) -> str:
    return f"{a / b:.1f}×" if a and b else "—"


def at_level(run: Measurement, mode: str, level: int, figure: str) -> dict[str, float]:
    return {p.server: getattr(p, figure) for p in run.points
            if p.mode == mode and p.level == level and p.ok}


def key_figures(run: Measurement) -> list[str]:
    """The sentences the chart proves, with this run's numbers."""
    lines = []
    for mode, figure, unit in (("idle", "wait_us", "µs/call"),
                               ("active", "wait_us_per_reply", "µs/reply")):
        got = at_level(run, mode, KEY_LEVEL, figure)
        if mode not in run.modes or not got:
            continue
        each = ", ".join(f"{name} {value:,.1f} {unit}" for name, value in got.items())
        gaps = ", ".join(f"{name}/epoll {ratio(value, got['epoll'])}"
                         for name, value in got.items() if name != "epoll" and "epoll" in got)
        what = "idle connections" if mode == "idle" else "connections all active"
        lines.append(f"At {KEY_LEVEL} {what}: {each}" + (f" ({gaps})" if gaps else ""))
    return lines


def table(run: Measurement, mode: str, figure: str) -> list[str]:
    """Servers down, levels across; a stopped server says how it stopped."""
    levels = [x for x in run.levels if mode == "idle" or x]
    rows = [f"  {'':<8}" + "".join(f"{x:>10}" for x in levels)]
    for s in run.subjects:
        cells = []
        for p in run.series(mode, s.name):
            cells.append(f"{getattr(p, figure):>10,.1f}" if p.ok else
                         f"{'—' if p.status == 'not run' else p.status:>10}")
        rows.append(f"  {s.name:<8}" + "".join(cells))
    return rows


def terminal(run: Measurement) -> list[str]:
    out = []
    if "idle" in run.modes:
        out += ["One wait call's CPU time (µs, median) with N connections held idle:",
                *table(run, "idle", "wait_us"),
                "The active client's reply latency p50 (µs):", *table(run, "idle", "p50_us")]
    if "active" in run.modes:
        out += ["All N connections active: wait-call CPU per reply (µs):",
                *table(run, "active", "wait_us_per_reply"),
                "  ready fds per wait call:", *table(run, "active", "ready")]
    out += key_figures(run)
    out += [f"note ({mode}): {n}" for mode in run.modes for n in run.notes(mode)]
    return out


def html(run: Measurement, svgs: dict[str, str]) -> str:
    css = (Path(__file__).parent / "templates" / "report.css").read_text()
    return TEMPLATES.get_template("measure.html.j2").render(
        run=run, css=Markup(css), charts={k: Markup(v) for k, v in svgs.items()},
        key_figures=key_figures(run), csv_file=CSV_FILE, columns=COLUMNS,
        notes={mode: run.notes(mode) for mode in run.modes},
        rows=[{c: getattr(p, c) for c in COLUMNS} for p in run.points])


def command(args) -> int:
    """`python -m grader measure LAB`: measure, write the files, print the key figures."""
    lab = load_lab(args.lab)
    submission = args.submission or lab.starter
    folder = args.results / lab.name / f"measure-{new_run_id()}"
    modes = [args.only] if args.only else list(MODES)
    print(f"measure {lab.name}: {shown(submission)}, {', '.join(modes)} connections at "
          f"{', '.join(map(str, args.levels))}; every server afresh at every level "
          "(a few minutes)", flush=True)
    run = measuring.measure(lab, submission, folder, levels=args.levels, modes=modes,
                  duration=args.duration, progress=lambda line: print(line, flush=True))
    files = write(run)
    print("\n".join(terminal(run)))
    print(f"chart and figures: {shown(files[-1])} (CSV: {shown(folder / CSV_FILE)})")
    return 0 if any(p.ok for p in run.points) else 1


def levels_arg(text: str) -> list[int]:
    """--levels 0,100,500: connection counts, each 0 or more, in increasing order."""
    try:
        levels = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a list of numbers like 0,100,500")
    if not levels or any(x < 0 for x in levels) or levels != sorted(set(levels)):
        raise argparse.ArgumentTypeError(f"{text!r}: give increasing counts of 0 or more, "
                                         "like 0,100,500")
    return levels


def seconds_arg(text: str) -> float:
    """--duration: a number of seconds, more than 0 and at most 60."""
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value <= 60:
        raise argparse.ArgumentTypeError(f"{text!r}: give seconds between 0.1 and 60")
    return value


def add_verb(verbs) -> None:
    """`measure` among the command line's verbs (grader/cli.py)."""
    gauge = verbs.add_parser("measure", help="time select/poll/epoll on your servers as "
                             "idle connections grow (lab-3 step 5)",
                             description=measuring.__doc__,
                             formatter_class=argparse.RawDescriptionHelpFormatter)
    gauge.add_argument("lab", help="the lab whose select, poll and epoll servers to measure")
    gauge.add_argument("--submission", type=Path, help="your lab folder, or one server .py "
                       "file (default: the lab's starter/)")
    gauge.add_argument("--levels", type=levels_arg,
                       default=",".join(map(str, LEVELS)),
                       help="connections held, e.g. 0,100,500 (default: %(default)s)")
    gauge.add_argument("--duration", type=seconds_arg, default=2.0,
                       help="seconds measured at each point (default 2)")
    gauge.add_argument("--only", choices=MODES,
                       help="one mode: idle connections, or all connections active")
    gauge.add_argument("--results", type=Path, default=RESULTS,
                       help="where results/<lab>/measure-<run-id>/ goes (default: ./results)")
    gauge.set_defaults(run=command)
