"""Charts as hand-written inline SVG: one module for report.html and the bench.

No JavaScript, no CDN, no plotting library: a report must open offline, in a
course platform's sandboxed viewer, years later, and a chart must be a file a
README can show. matplotlib would bring numpy and style its SVG inline where
the report styles charts with its own CSS, and would still leave the Locust
data handling (grader/charts.py) to us.

    line_chart(title, [Series("epoll", [(0, 66), (1000, 67)])], x_label=..., y_label=...)
    bar_chart(title, {"select": {"10 clients": 41000, "100 clients": 39000}}, x_label=...)

One axis rule (nice_ceiling) and one number format (short) for every chart.
Every chart carries its own <style>, so it looks the same in a page or alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape

PALETTE = ["#1f6feb", "#d9822b", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#17becf"]
THRESHOLD = "#b42318"  # red: where a threshold lies
STYLE = ("<style>.ctitle{font:600 13px system-ui,sans-serif;fill:#1f2328}"
         ".tick{font:11px system-ui,sans-serif;fill:#57606a}"
         ".legend{font:11px system-ui,sans-serif;fill:#1f2328}"
         ".note{font:11px system-ui,sans-serif;fill:#57606a}"
         ".cempty{font:13px system-ui,sans-serif;fill:#6e7781}"
         ".grid{stroke:#eaeef2}.axis{stroke:#8c959f}</style>")


@dataclass
class Series:
    label: str
    points: list[tuple[float, float]]  # (x, y); a series may stop early
    color: str = ""  # "" : the palette's next colour
    dashed: bool = False
    width: float = 2.0


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


def _open(width: int, height: int, title: str) -> list[str]:
    return [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {width} '
            f'{height}" width="{width}" height="{height}" role="img" aria-label="{escape(title)}">',
            STYLE, f"<title>{escape(title)}</title>",
            f'<rect x="0" y="0" width="{width}" height="{height}" fill="#fff"/>',
            f'<text x="12" y="17" class="ctitle">{escape(title)}</text>']


def _colored(series: list[Series]) -> list[Series]:
    return [s if s.color else Series(s.label, s.points, PALETTE[i % len(PALETTE)], s.dashed,
                                     s.width) for i, s in enumerate(series)]


def line_chart(title: str, series: list[Series], *, x_label: str, y_label: str,
               thresholds: list[tuple[str, float]] = (), notes: list[str] = (),
               x_ticks: list[float] | None = None, empty: str = "no data",
               width: int = 480, height: int = 250) -> str:
    """Lines over x from 0, a y axis from 0, optional dashed thresholds and notes.
    x_ticks: where to label the x axis (default: evenly, at a nice step)."""
    series = _colored(series)
    left, right, top, bottom = 58, 14, 50 + 14 * len(notes), 36
    plot_w, plot_h = width - left - right, height - top - bottom
    points = [p for s in series for p in s.points]
    parts = _open(width, height, title)
    if not points:
        parts.append(f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle" '
                     f'class="cempty">{escape(empty)}</text></svg>')
        return "\n".join(parts)
    x_max = max(max(p[0] for p in points), 1.0)
    y_top = nice_ceiling(max([p[1] for p in points] + [v for _, v in thresholds]) * 1.05)

    def x(t: float) -> float:
        return left + plot_w * t / x_max

    def y(v: float) -> float:
        return top + plot_h * (1 - min(v, y_top) / y_top)

    for i in range(5):  # horizontal grid and y labels
        v = y_top * i / 4
        parts.append(f'<line x1="{left}" y1="{y(v):.1f}" x2="{width - right}" y2="{y(v):.1f}" '
                     f'class="{"axis" if i == 0 else "grid"}"/>')
        parts.append(f'<text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end" '
                     f'class="tick">{short(v)}</text>')
    if x_ticks is None:
        step = nice_ceiling(x_max / 6)
        x_ticks = [i * step for i in range(int(x_max / step + 1e-9) + 1)]
    for t in x_ticks:
        parts.append(f'<line x1="{x(t):.1f}" y1="{top + plot_h}" x2="{x(t):.1f}" '
                     f'y2="{top + plot_h + 4}" class="axis"/>')
        parts.append(f'<text x="{x(t):.1f}" y="{top + plot_h + 16}" text-anchor="middle" '
                     f'class="tick">{short(t)}</text>')
    parts.append(f'<text x="{width - right}" y="{height - 4}" text-anchor="end" '
                 f'class="tick">{escape(x_label)}</text>')
    parts.append(f'<text x="12" y="{top + plot_h / 2:.1f}" text-anchor="middle" class="tick" '
                 f'transform="rotate(-90 12 {top + plot_h / 2:.1f})">{escape(y_label)}</text>')
    for label, value in thresholds:
        parts.append(f'<line x1="{left}" y1="{y(value):.1f}" x2="{width - right}" '
                     f'y2="{y(value):.1f}" stroke="{THRESHOLD}" stroke-width="1.2" '
                     f'stroke-dasharray="6 4"/>')
        parts.append(f'<text x="{width - right - 2}" y="{y(value) - 4:.1f}" text-anchor="end" '
                     f'class="tick" fill="{THRESHOLD}">{escape(label)}</text>')
    for s in reversed(series):  # the first series last: on top
        parts += _polyline(s, x, y, y_label)
    parts += _legend(series, 31)
    parts += [f'<text x="12" y="{52 + 14 * i}" class="note">{escape(n)}</text>'
              for i, n in enumerate(notes)]
    parts.append("</svg>")
    return "\n".join(parts)


def _polyline(s: Series, x, y, unit: str) -> list[str]:
    if not s.points:
        return []
    coords = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in s.points)
    dash = ' stroke-dasharray="5 3"' if s.dashed else ""
    out = [f'<polyline fill="none" stroke="{s.color}" stroke-width="{s.width}" '
           f'stroke-linejoin="round"{dash} points="{coords}"><title>{escape(s.label)}'
           f"</title></polyline>"]
    if len(s.points) <= 40:
        out += [f'<circle cx="{x(t):.1f}" cy="{y(v):.1f}" r="2.5" fill="{s.color}">'
                f"<title>{escape(s.label)}: {v:,.4g} {escape(unit)} at {t:g}</title></circle>"
                for t, v in s.points]
    return out


def _legend(series: list[Series], row: float) -> list[str]:
    """One row under the title: a short line in each series' style, then its label."""
    out, lx = [], 12.0
    for s in series:
        dash = ' stroke-dasharray="5 3"' if s.dashed else ""
        out.append(f'<line x1="{lx:.0f}" y1="{row}" x2="{lx + 16:.0f}" y2="{row}" '
                   f'stroke="{s.color}" stroke-width="{s.width}"{dash}/>')
        out.append(f'<text x="{lx + 20:.0f}" y="{row + 4}" class="legend">{escape(s.label)}</text>')
        lx += 34 + 5.6 * len(s.label)
    return out


def bar_chart(title: str, groups: dict[str, dict[str, float]], *, x_label: str,
              width: int = 720) -> str:
    """groups: label -> {series: value}; horizontal bars, one row of bars per label."""
    names = list(dict.fromkeys(s for g in groups.values() for s in g))
    bar, gap, left, right, top = 9, 8, 150, 40, 50
    rows = len(groups) * (bar * len(names) + gap)
    height = top + rows + 40
    plot_w = width - left - right
    v_max = nice_ceiling(max((v for g in groups.values() for v in g.values()), default=1))
    parts = _open(width, height, title)
    parts += _legend([Series(n, [], PALETTE[i % len(PALETTE)], width=8)
                      for i, n in enumerate(names)], 33)
    for i in range(6):
        v = v_max * i / 5
        px = left + plot_w * v / v_max
        parts.append(f'<line x1="{px:.1f}" x2="{px:.1f}" y1="{top}" y2="{top + rows}" '
                     'class="grid"/>')
        parts.append(f'<text x="{px:.1f}" y="{top + rows + 16}" text-anchor="middle" '
                     f'class="tick">{short(v)}</text>')
    y = top
    for label, values in groups.items():
        parts.append(f'<text x="{left - 6}" y="{y + bar * len(names) / 2 + 4:.1f}" '
                     f'text-anchor="end" class="legend">{escape(label)}</text>')
        for i, name in enumerate(names):
            if name in values:
                parts.append(f'<rect x="{left}" y="{y}" width="{plot_w * values[name] / v_max:.1f}"'
                             f' height="{bar - 1}" fill="{PALETTE[i % len(PALETTE)]}">'
                             f"<title>{escape(label)}, {escape(name)}: {values[name]:,.0f}"
                             "</title></rect>")
            y += bar
        y += gap
    parts.append(f'<text x="{width - right}" y="{height - 6}" text-anchor="end" '
                 f'class="tick">{escape(x_label)}</text>')
    parts.append("</svg>")
    return "\n".join(parts)
