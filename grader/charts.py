"""The load phase as charts for report.html: Locust's data turned into series,
drawn by grader/svg.py (one chart module for the report and the bench).

The data is Locust's own stats history (`<exercise>/locust/stats_stats_history.csv`, one "Aggregated"
row a second, read by grader.load.stats.read_stats into LoadStats.history).

Throughput comes from Locust's per-second request counts in its final JSON
(complete to the last request), or else from the growth of "Total Request
Count" between two history rows (Locust's own "Requests/s" column is a lagging
sliding average, 0 for the first seconds). Latency is p50 and p95 of each second
from the load phase's µs histograms (grader/load/latency.py), drawn in µs for a
fast server and in ms otherwise; without them, the history's "50%" and "95%"
columns (Locust's recent window, whole milliseconds).
"""

from __future__ import annotations

from grader.checks.load import latency_ceiling, throughput_floor
from grader.load import latency
from grader.svg import THRESHOLD, Series, line_chart, short

SUBMISSION = "#1f6feb"  # blue: what the student's server did
REFERENCE = "#d9822b"  # orange: the calibration (the reference), same load, same place
TIME_AXIS = "seconds into the load phase"


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


def throughput_chart(submission, reference=None, floor: float | None = None,
                     name: str = "reference") -> str:
    ok, failures, _ = rates(submission)
    series = [Series("submission", ok, SUBMISSION)]
    if reference is not None:
        series.append(Series(name, rates(reference)[0], REFERENCE, dashed=True))
    if any(v > 0 for _, v in failures):
        series.append(Series("submission failures", failures, THRESHOLD, width=1.5))
    thresholds = [(f"threshold {short(floor)}/s", floor)] if floor else []
    return line_chart("Throughput: correct replies per second", series, x_label=TIME_AXIS,
                      y_label="replies/s", thresholds=thresholds,
                      empty="Locust recorded no history")


def percentiles(stats) -> dict[str, list[tuple[float, float]]]:
    """{"p50", "p95"} as (t, µs) over the load phase: from the µs histogram of each
    second (grader/load/latency.py) when there, else Locust's whole-ms history."""
    origin = (getattr(stats, "span", None) or (None,))[0]
    seconds = getattr(stats, "latency_seconds", None)
    if not seconds:
        line = timeline(stats.history, origin)
        return {q: [(t, ms * 1000) for t, ms in line[q]] for q in ("p50", "p95")}
    start = origin if origin is not None else min(seconds)
    return {f"p{q}": [(max(0.0, second + 0.5 - start), latency.percentile(hist, q / 100))
                      for second, hist in sorted(seconds.items())] for q in (50, 95)}


def latency_chart(submission, reference=None, ceiling: float | None = None,
                  name: str = "reference") -> str:
    """p50 and p95 per second, in µs for a fast server and ms otherwise; ceiling in µs."""
    mine = percentiles(submission)
    theirs = percentiles(reference) if reference is not None else {"p50": [], "p95": []}
    values = [v for side in (mine, theirs) for q in side.values() for _, v in q]
    unit, scale = ("µs", 1.0) if max(values, default=0) < 2000 else ("ms", 1000.0)

    def scaled(points):
        return [(t, v / scale) for t, v in points]

    series = [Series("submission p95", scaled(mine["p95"]), SUBMISSION),
              Series("submission p50", scaled(mine["p50"]), SUBMISSION, dashed=True, width=1.2)]
    if reference is not None:
        series += [Series(f"{name} p95", scaled(theirs["p95"]), REFERENCE),
                   Series(f"{name} p50", scaled(theirs["p50"]), REFERENCE, dashed=True,
                          width=1.2)]
    thresholds, notes = [], []
    if ceiling:  # far above the data, a threshold line would flatten it: say it instead
        label = f"p95 threshold {latency.shown(ceiling)}"
        if ceiling <= 2 * max(values, default=0):
            thresholds.append((label, ceiling / scale))
        else:
            notes.append(f"{label} (far above)")
    return line_chart("Latency: response time percentiles", series, x_label=TIME_AXIS,
                      y_label=unit, thresholds=thresholds, notes=notes,
                      empty="Locust recorded no history")


def thresholds_of(load: dict | None, reference, scale=None) -> tuple[float | None, float | None]:
    """(throughput floor, p95 ceiling) exactly as the load checks compute them."""
    limits = (load or {}).get("thresholds") or {}
    floor, _ = throughput_floor(limits, reference, scale)
    ceiling, _ = latency_ceiling(limits, reference, scale)
    return floor or None, ceiling


FIGURES = [("users", lambda s: f"{s.users}"),
           ("requests", lambda s: f"{s.requests:,}"),
           ("failed", lambda s: f"{s.failures:,} ({s.failure_ratio:.2%})"),
           ("correct replies/s", lambda s: f"{s.ok_rps:,.0f}"),
           ("p50 / p95 / p99", lambda s: " / ".join(latency.shown(v) for v in
                                                    (s.p50_us, s.p95_us, s.p99_us)))]


def load_view(submission, reference=None, load: dict | None = None,
              name: str = "reference", scale=None) -> dict:
    """What report.html's load section shows: a table of figures side by side and
    the two charts (SVG markup, safe to insert as is). `reference`: the calibration's
    figures, called `name` (reference, or calibration: the yardstick) and turned
    into the reference's by `scale` for the thresholds."""
    floor, ceiling = thresholds_of(load, reference, scale)
    sides = [("submission", submission)] + ([(name, reference)] if reference else [])
    return {
        "sides": [side for side, _ in sides],
        "rows": [(label, [fmt(stats) for _, stats in sides]) for label, fmt in FIGURES],
        "charts": [throughput_chart(submission, reference, floor, name),
                   latency_chart(submission, reference, ceiling, name)],
    }
