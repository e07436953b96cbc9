"""Two small hand-written SVG charts (no plotting dependency): a line chart
and a grouped horizontal bar chart."""

from __future__ import annotations

from html import escape

COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#17becf"]
FONT = 'font-family="sans-serif" font-size="12"'


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    step = 10 ** len(str(int(value))) / 10
    for mult in (1, 2, 2.5, 5, 10):
        if value <= step * mult:
            return step * mult
    return value


def _fmt(value: float) -> str:
    return f"{value / 1000:g}k" if value >= 10_000 else f"{value:g}"


def line_chart(title: str, x_label: str, y_label: str,
               series: dict[str, list[tuple[float, float]]], notes: list[str] = ()) -> str:
    """series: name -> [(x, y)]; a series may stop early (e.g. select past FD_SETSIZE)."""
    w, h, left, right, top, bottom = 720, 420, 70, 150, 40, 60
    pw, ph = w - left - right, h - top - bottom
    xs = [x for pts in series.values() for x, _ in pts] or [1]
    ys = [y for pts in series.values() for _, y in pts] or [1]
    x_max, y_max = max(xs) or 1, _nice_max(max(ys))

    def px(x):
        return left + pw * x / x_max

    def py(y):
        return top + ph - ph * y / y_max

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" {FONT}>',
           f'<rect width="{w}" height="{h}" fill="white"/>',
           f'<text x="{w / 2}" y="22" text-anchor="middle" font-size="15">{escape(title)}</text>']
    for i in range(6):
        y = y_max * i / 5
        out.append(f'<line x1="{left}" x2="{left + pw}" y1="{py(y):.1f}" y2="{py(y):.1f}" '
                   'stroke="#ddd"/>')
        out.append(f'<text x="{left - 6}" y="{py(y) + 4:.1f}" text-anchor="end">{_fmt(y)}</text>')
    for x in sorted(set(xs)):
        out.append(f'<text x="{px(x):.1f}" y="{top + ph + 18}" text-anchor="middle">{_fmt(x)}</text>')
    out.append(f'<line x1="{left}" x2="{left + pw}" y1="{top + ph}" y2="{top + ph}" stroke="black"/>')
    out.append(f'<line x1="{left}" x2="{left}" y1="{top}" y2="{top + ph}" stroke="black"/>')
    out.append(f'<text x="{left + pw / 2}" y="{h - 20}" text-anchor="middle">{escape(x_label)}</text>')
    out.append(f'<text x="16" y="{top + ph / 2}" text-anchor="middle" '
               f'transform="rotate(-90 16 {top + ph / 2})">{escape(y_label)}</text>')
    for i, (name, pts) in enumerate(series.items()):
        color = COLORS[i % len(COLORS)]
        path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in pts)
        out.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
        out += [f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3" fill="{color}"/>' for x, y in pts]
        ly = top + 10 + 18 * i
        out.append(f'<line x1="{left + pw + 15}" x2="{left + pw + 35}" y1="{ly}" y2="{ly}" '
                   f'stroke="{color}" stroke-width="2"/>')
        out.append(f'<text x="{left + pw + 40}" y="{ly + 4}">{escape(name)}</text>')
    for i, note in enumerate(notes):
        out.append(f'<text x="{left + 8}" y="{top + 14 + 15 * i}" fill="#555">{escape(note)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def bar_chart(title: str, x_label: str, groups: dict[str, dict[str, float]]) -> str:
    """groups: label -> {series: value}; horizontal bars, one row per label."""
    names = list(dict.fromkeys(s for g in groups.values() for s in g))
    bar, gap, left, right, top = 9, 8, 150, 40, 50
    rows = len(groups) * (bar * len(names) + gap)
    w, h = 720, top + rows + 60
    pw = w - left - right
    v_max = _nice_max(max((v for g in groups.values() for v in g.values()), default=1))
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" {FONT}>',
           f'<rect width="{w}" height="{h}" fill="white"/>',
           f'<text x="{w / 2}" y="20" text-anchor="middle" font-size="15">{escape(title)}</text>']
    for i, name in enumerate(names):
        color = COLORS[i % len(COLORS)]
        out.append(f'<rect x="{left + 120 * i}" y="30" width="10" height="10" fill="{color}"/>')
        out.append(f'<text x="{left + 120 * i + 14}" y="39">{escape(name)}</text>')
    for i in range(6):
        v = v_max * i / 5
        x = left + pw * v / v_max
        out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{top + rows}" stroke="#ddd"/>')
        out.append(f'<text x="{x:.1f}" y="{top + rows + 16}" text-anchor="middle">{_fmt(v)}</text>')
    y = top
    for label, values in groups.items():
        out.append(f'<text x="{left - 6}" y="{y + bar * len(names) / 2 + 4:.1f}" '
                   f'text-anchor="end">{escape(label)}</text>')
        for i, name in enumerate(names):
            if name in values:
                width = pw * values[name] / v_max
                out.append(f'<rect x="{left}" y="{y}" width="{width:.1f}" height="{bar - 1}" '
                           f'fill="{COLORS[i % len(COLORS)]}"/>')
            y += bar
        y += gap
    out.append(f'<text x="{left + pw / 2}" y="{h - 14}" text-anchor="middle">{escape(x_label)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"
