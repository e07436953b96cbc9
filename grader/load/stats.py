"""Read Locust's own output files into the figures the load checks judge.

Latency comes from <prefix>_latency.json (grader/load/latency.py: every correct
reply's round trip in µs, 3 significant digits) when the load phase wrote it;
otherwise from Locust's own percentiles, which are whole milliseconds.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

from grader.load import latency


@dataclass
class LoadStats:
    requests: int
    failures: int
    rps: float  # replies per second over the run
    p50_us: float  # reply latency percentiles, in microseconds
    p95_us: float
    p99_us: float
    users: int = 0
    history: list[dict] = field(default_factory=list)  # Locust's stats_history rows
    # from the JSON: the run's start and end (epoch s) and {second: [requests, failures]}
    span: tuple[float, float] | None = None
    per_second: dict[int, list[int]] = field(default_factory=dict)
    # "grader": every correct reply timed in µs (latency.py); "locust": its whole-ms figures
    latency_source: str = "locust"
    latency_seconds: dict[int, dict[int, int]] = field(default_factory=dict)  # {second: µs hist}
    unserved: int = 0  # users that got no reply at all during the run (one client at a time?)

    @property
    def p50_ms(self) -> float:
        return self.p50_us / 1000

    @property
    def p95_ms(self) -> float:
        return self.p95_us / 1000

    @property
    def p99_ms(self) -> float:
        return self.p99_us / 1000

    @property
    def ok_rps(self) -> float:
        """Correct replies per second: failed requests earn nothing."""
        return self.rps * (self.requests - self.failures) / self.requests if self.requests else 0.0

    @property
    def failure_ratio(self) -> float:
        return self.failures / self.requests if self.requests else 1.0

    def to_dict(self) -> dict:
        data = dict(self.__dict__)
        for bulky in ("history", "per_second", "latency_seconds"):
            data.pop(bulky, None)
        return data | {"p50_ms": self.p50_ms, "p95_ms": self.p95_ms, "p99_ms": self.p99_ms}


def _number(row: dict, key: str) -> float:
    value = row.get(key, "") or "0"
    try:
        return float(value)
    except ValueError:  # Locust writes "N/A" before the first sample
        return 0.0


def percentile(histogram: dict[float, int], requests: int, fraction: float) -> float:
    """Locust's own rule (stats.calculate_response_time_percentile) on its histogram."""
    wanted, seen = int(requests * fraction), 0
    for bucket in sorted(histogram, reverse=True):
        seen += histogram[bucket]
        if requests - seen <= wanted:
            return bucket
    return 0.0


def final_totals(json_file: Path) -> dict | None:
    """The run's totals from Locust's --json-file, written once when Locust stops.

    The CSVs are rewritten once a second while the run goes on, so the last
    write misses up to a second of it (for a 2 s run on a busy machine, all of
    it: "0 replies" for a working server). The JSON holds every request.
    """
    try:
        entries = json.loads(json_file.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(entries, list):
        return None
    requests = sum(int(e.get("num_requests", 0)) for e in entries)
    histogram: dict[float, int] = {}
    for e in entries:
        for bucket, count in (e.get("response_times") or {}).items():
            histogram[float(bucket)] = histogram.get(float(bucket), 0) + int(count)
    starts = [e["start_time"] for e in entries if e.get("start_time")]
    lasts = [e["last_request_timestamp"] for e in entries if e.get("last_request_timestamp")]
    span = max(lasts) - min(starts) if starts and lasts else 0.0
    return {
        "requests": requests,
        "failures": sum(int(e.get("num_failures", 0)) for e in entries),
        "rps": requests / span if span > 0 else 0.0,
        "p50_us": percentile(histogram, requests, 0.50) * 1000,
        "p95_us": percentile(histogram, requests, 0.95) * 1000,
        "p99_us": percentile(histogram, requests, 0.99) * 1000,
        "span": (min(starts), max(lasts)) if span > 0 else None,
        "per_second": per_second(entries),
    }


def per_second(entries: list[dict]) -> dict[int, list[int]]:
    """{epoch second: [requests, failures]} summed over Locust's entries."""
    out: dict[int, list[int]] = {}
    for e in entries:
        for index, key in ((0, "num_reqs_per_sec"), (1, "num_fail_per_sec")):
            for second, count in (e.get(key) or {}).items():
                out.setdefault(int(second), [0, 0])[index] += int(count)
    return dict(sorted(out.items()))


def read_stats(prefix: Path) -> LoadStats:
    """Totals from <prefix>.json (complete) or else <prefix>_stats.csv's "Aggregated"
    row; the per-second history (for the report's charts) from _stats_history.csv."""
    final = final_totals(Path(f"{prefix}.json")) or csv_totals(Path(f"{prefix}_stats.csv"))
    history_file = Path(f"{prefix}_stats_history.csv")
    history = []
    if history_file.exists():
        with history_file.open(newline="") as fh:
            history = [r for r in csv.DictReader(fh) if r.get("Name") == "Aggregated"]
    users = max((int(_number(r, "User Count")) for r in history), default=0)
    times = latency.read(Path(f"{prefix}{latency.SUFFIX}"))
    if times:
        final["unserved"] = times["unserved"]
    if times and times["total"]:  # µs, every correct reply: better than Locust's whole ms
        final.update({f"p{q}_us": latency.percentile(times["total"], q / 100)
                      for q in (50, 95, 99)},
                     latency_source="grader", latency_seconds=times["per_second"])
    return LoadStats(**final, users=users, history=history)


def csv_totals(stats_file: Path) -> dict:
    """The totals of the "Aggregated" row, when Locust wrote no JSON."""
    if not stats_file.exists():
        raise FileNotFoundError(f"Locust wrote no statistics ({stats_file.name} is missing)")
    with stats_file.open(newline="") as fh:
        total = next((r for r in csv.DictReader(fh) if r.get("Name") == "Aggregated"), None)
    if total is None:
        raise ValueError(f"{stats_file.name} has no Aggregated row")
    return {"requests": int(_number(total, "Request Count")),
            "failures": int(_number(total, "Failure Count")),
            "rps": _number(total, "Requests/s"), "p50_us": _number(total, "50%") * 1000,
            "p95_us": _number(total, "95%") * 1000, "p99_us": _number(total, "99%") * 1000}
