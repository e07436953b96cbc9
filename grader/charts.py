"""Charts of the load phase for report.html: hand-written inline SVG.

No JavaScript, no CDN, no chart library: the report must open offline, in a
course platform's sandboxed viewer, years later. The data is Locust's own
stats history (`<exercise>/locust/stats_stats_history.csv`, one "Aggregated"
row a second, read by grader.load.stats.read_stats into LoadStats.history).

Throughput comes from Locust's per-second request counts in its final JSON
(complete to the last request), or else from the growth of "Total Request
Count" between two history rows (Locust's own "Requests/s" column is a lagging
sliding average, 0 for the first seconds). Latency is the history's "50%" and
"95%" columns, the percentiles of Locust's recent window, in milliseconds.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass

from grader.checks.load import latency_ceiling, throughput_floor

SUBMISSION = "#1f6feb"  # blue: what the student's server did
REFERENCE = "#d9822b"  # orange: the reference server, same load, same run
THRESHOLD = "#b42318"  # red: where a threshold lies

WIDTH, HEIGHT = 480, 250
LEFT, RIGHT, TOP, BOTTOM = 58, 14, 50, 36


@dataclass
class Series:
    label: str
    points: list[tuple[float, float]]  # (seconds since the load started, value)
    color: str
    dashed: bool = False
    width: float = 2.0


def _number(row: dict, key: str) -> float | None:
    try:
        return float(row.get(key, ""))
    except (TypeError, ValueError):  # "N/A" before the first sample, or missing
        return None


def _rows(history: list[dict]) -> list[dict]:
    """The Aggregated rows, one per timestamp (the last written wins), in time order."""
    by_time: dict[float, dict] = {}
    for row in history:
        if row.get("Name", "Aggregated") != "Aggregated":
            continue
        stamp = _number(row, "Timestamp")
        if stamp is not None:
            by_time[stamp] = row
    return [by_time[t] for t in sorted(by_time)]


def timeline(history: list[dict], origin: float | None = None
             ) -> dict[str, list[tuple[float, float]]]:
    """Locust's stats history -> {"rps", "fail_rps", "p50", "p95", "users"} as (t, value),
    t in seconds since origin (default: the first row)."""
    rows = _rows(history)
    out: dict[str, list[tuple[float, float]]] = {k: [] for k in
                                                  ("rps", "fail_rps", "p50", "p95", "users")}
    if not rows:
        return out
    start = origin if origin is not None else (_number(rows[0], "Timestamp") or 0.0)
    previous = None
    for row in rows:
        t = max(0.0, (_number(row, "Timestamp") or start) - start)
        users = _number(row, "User Count")
        if users is not None:
            out["users"].append((t, users))
        total, failed = _number(row, "Total Request Count"), _number(row, "Total Failure Count")
        if previous is not None and total is not None:
            dt = t - previous[0]
            if dt > 0:
                out["rps"].append((t, max(0.0, (total - previous[1]) / dt)))
                out["fail_rps"].append((t, max(0.0, ((failed or 0) - previous[2]) / dt)))
        elif total is None:  # an older Locust without totals: its own sliding average
            for key, column in (("rps", "Requests/s"), ("fail_rps", "Failures/s")):
                value = _number(row, column)
                if value is not None:
                    out[key].append((t, value))
        if total is not None:
            previous = (t, total, failed or 0.0)
            if not out["rps"]:
                out["rps"].append((t, 0.0))
                out["fail_rps"].append((t, 0.0))
        for key, column in (("p50", "50%"), ("p95", "95%")):
            value = _number(row, column)
            if value is not None and (total is None or total > 0):
                out[key].append((t, value))
    return out


def rates(stats) -> tuple[list[tuple[float, float]], list[tuple[float, float]], float | None]:
    """(replies/s, failures/s, origin) over the load phase.

    From Locust's per-second counts in its final JSON when there (complete, to
    the last request; each second divided by the part of it the run covered),
    else from the CSV history (which misses the last second)."""
    if getattr(stats, "per_second", None) and getattr(stats, "span", None):
        start, end = stats.span
        ok, failed = [(0.0, 0.0)], [(0.0, 0.0)]
        for second, (requests, failures) in stats.per_second.items():
            low, high = max(second, start), min(second + 1, end)
            if high - low < 0.1:  # a sliver of a second: its rate means little
                continue
            t = (low + high) / 2 - start
            ok.append((t, (requests - failures) / (high - low)))
            failed.append((t, failures / (high - low)))
        return ok, failed, start
    line = timeline(stats.history)
    ok = [(t, max(0.0, v - f)) for (t, v), (_, f) in zip(line["rps"], line["fail_rps"])]
    return ok, line["fail_rps"], None


def nice_ceiling(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 × 10^k at or above value (an axis' top)."""
    if value <= 0:
        return 1.0
    exponent = math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        top = step * 10 ** exponent
        if top >= value * 0.999999:
            return top
    return 10 ** (exponent + 1)


def short(value: float) -> str:
    """Axis labels: 12k, 1.5M, 0.5, 250."""
    magnitude = abs(value)
    for limit, suffix in ((1e6, "M"), (1e3, "k")):
        if magnitude >= limit:
            return f"{value / limit:.3g}{suffix}"
    return f"{value:.3g}"


def line_chart(title: str, unit: str, series: list[Series],
               thresholds: list[tuple[str, float]] = (), empty: str = "no data") -> str:
    """One SVG chart: lines over time, a y axis from 0, optional dashed thresholds."""
    esc = html.escape
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    points = [p for s in series for p in s.points]
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {WIDTH} {HEIGHT}"'
             f' width="{WIDTH}" height="{HEIGHT}" role="img" aria-label="{esc(title)}">',
             f"<title>{esc(title)}</title>",
             f'<rect x="0" y="0" width="{WIDTH}" height="{HEIGHT}" fill="#fff"/>',
             f'<text x="12" y="17" class="ctitle">{esc(title)}</text>']
    if not points:
        parts.append(f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle" '
                     f'class="cempty">{esc(empty)}</text></svg>')
        return "\n".join(parts)
    x_max = max(max(p[0] for p in points), 1.0)
    y_top = nice_ceiling(max([p[1] for p in points] + [v for _, v in thresholds]) * 1.05)

    def x(t: float) -> float:
        return LEFT + plot_w * t / x_max

    def y(v: float) -> float:
        return TOP + plot_h * (1 - min(v, y_top) / y_top)

    for i in range(5):  # horizontal grid and y labels
        v = y_top * i / 4
        parts.append(f'<line x1="{LEFT}" y1="{y(v):.1f}" x2="{WIDTH - RIGHT}" y2="{y(v):.1f}" '
                     f'class="{"axis" if i == 0 else "grid"}"/>')
        parts.append(f'<text x="{LEFT - 6}" y="{y(v) + 4:.1f}" text-anchor="end" '
                     f'class="tick">{short(v)}</text>')
    step = nice_ceiling(x_max / 6)
    t = 0.0
    while t <= x_max + 1e-9:  # x ticks in seconds
        parts.append(f'<line x1="{x(t):.1f}" y1="{TOP + plot_h}" x2="{x(t):.1f}" '
                     f'y2="{TOP + plot_h + 4}" class="axis"/>')
        parts.append(f'<text x="{x(t):.1f}" y="{TOP + plot_h + 16}" text-anchor="middle" '
                     f'class="tick">{t:g}</text>')
        t += step
    parts.append(f'<text x="{WIDTH - RIGHT}" y="{HEIGHT - 4}" text-anchor="end" '
                 f'class="tick">seconds into the load phase</text>')
    parts.append(f'<text x="12" y="{TOP + plot_h / 2:.1f}" text-anchor="middle" class="tick" '
                 f'transform="rotate(-90 12 {TOP + plot_h / 2:.1f})">{esc(unit)}</text>')
    for label, value in thresholds:
        parts.append(f'<line x1="{LEFT}" y1="{y(value):.1f}" x2="{WIDTH - RIGHT}" '
                     f'y2="{y(value):.1f}" stroke="{THRESHOLD}" stroke-width="1.2" '
                     f'stroke-dasharray="6 4"/>')
        parts.append(f'<text x="{WIDTH - RIGHT - 2}" y="{y(value) - 4:.1f}" text-anchor="end" '
                     f'class="tick" fill="{THRESHOLD}">{esc(label)}</text>')
    for s in reversed(series):  # the submission last: on top
        if not s.points:
            continue
        coords = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in s.points)
        dash = ' stroke-dasharray="5 3"' if s.dashed else ""
        parts.append(f'<polyline fill="none" stroke="{s.color}" stroke-width="{s.width}" '
                     f'stroke-linejoin="round"{dash} points="{coords}"><title>{esc(s.label)}'
                     f"</title></polyline>")
        if len(s.points) <= 40:
            parts += [f'<circle cx="{x(t):.1f}" cy="{y(v):.1f}" r="2.5" fill="{s.color}">'
                      f"<title>{esc(s.label)}: {v:,.4g} {esc(unit)} at {t:g} s</title></circle>"
                      for t, v in s.points]
    lx = 12.0  # the legend: one row under the title
    for s in series:
        dash = ' stroke-dasharray="5 3"' if s.dashed else ""
        parts.append(f'<line x1="{lx:.0f}" y1="31" x2="{lx + 16:.0f}" y2="31" '
                     f'stroke="{s.color}" stroke-width="{s.width}"{dash}/>')
        parts.append(f'<text x="{lx + 20:.0f}" y="35" class="legend">{esc(s.label)}</text>')
        lx += 34 + 5.6 * len(s.label)
    parts.append("</svg>")
    return "\n".join(parts)


def throughput_chart(submission, reference=None, floor: float | None = None) -> str:
    ok, failures, _ = rates(submission)
    series = [Series("submission", ok, SUBMISSION)]
    if reference is not None:
        series.append(Series("reference", rates(reference)[0], REFERENCE, dashed=True))
    if any(v > 0 for _, v in failures):
        series.append(Series("submission failures", failures, THRESHOLD, width=1.5))
    thresholds = [(f"threshold {short(floor)}/s", floor)] if floor else []
    return line_chart("Throughput: correct replies per second", "replies/s", series, thresholds,
                      empty="Locust recorded no history")


def latency_chart(submission, reference=None, ceiling: float | None = None) -> str:
    mine = timeline(submission.history, (getattr(submission, "span", None) or (None,))[0])
    series = [Series("submission p95", mine["p95"], SUBMISSION),
              Series("submission p50", mine["p50"], SUBMISSION, dashed=True, width=1.2)]
    if reference is not None:
        theirs = timeline(reference.history, (getattr(reference, "span", None) or (None,))[0])
        series += [Series("reference p95", theirs["p95"], REFERENCE),
                   Series("reference p50", theirs["p50"], REFERENCE, dashed=True, width=1.2)]
    thresholds = [(f"p95 threshold {ceiling:g} ms", ceiling)] if ceiling else []
    return line_chart("Latency: response time percentiles", "ms", series, thresholds,
                      empty="Locust recorded no history")


def thresholds_of(load: dict | None, reference) -> tuple[float | None, float | None]:
    """(throughput floor, p95 ceiling) exactly as the load checks compute them."""
    limits = (load or {}).get("thresholds") or {}
    floor, _ = throughput_floor(limits, reference)
    ceiling, _ = latency_ceiling(limits, reference)
    return floor or None, ceiling


def load_section(exercise: str, submission, reference=None, load: dict | None = None,
                 links: list[tuple[str, str]] = ()) -> str:
    """The HTML for one exercise's load phase: figures side by side, two charts, links."""
    esc = html.escape
    floor, ceiling = thresholds_of(load, reference)
    sides = [("submission", submission)] + ([("reference", reference)] if reference else [])
    rows = [("users", lambda s: f"{s.users}"),
            ("requests", lambda s: f"{s.requests:,}"),
            ("failed", lambda s: f"{s.failures:,} ({s.failure_ratio:.2%})"),
            ("correct replies/s", lambda s: f"{s.ok_rps:,.0f}"),
            ("p50 / p95 / p99", lambda s: f"{s.p50_ms:g} / {s.p95_ms:g} / {s.p99_ms:g} ms")]
    head = "".join(f"<th>{name}</th>" for name, _ in sides)
    body = "".join(f"<tr><th>{label}</th>" + "".join(f"<td>{esc(fmt(s))}</td>" for _, s in sides)
                   + "</tr>" for label, fmt in rows)
    note = ("" if reference else
            "<p class='note'>No reference was measured for this exercise: thresholds are "
            "absolute.</p>")
    link_html = " · ".join(f"<a href='{esc(href)}'>{esc(text)}</a>" for text, href in links)
    return f"""<section class="load" id="load-{esc(exercise)}">
<h3>Load phase</h3>
<table class="figures"><tr><th></th>{head}</tr>{body}</table>
{note}
<div class="charts">
{throughput_chart(submission, reference, floor)}
{latency_chart(submission, reference, ceiling)}
</div>
<p class="links">{link_html}</p>
</section>"""
