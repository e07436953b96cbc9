"""Read Locust's own output files into the figures the load checks judge."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class LoadStats:
    requests: int
    failures: int
    rps: float  # replies per second over the run
    p50_ms: float
    p95_ms: float
    p99_ms: float
    users: int = 0
    workers: int = 0
    history: list[dict] = field(default_factory=list)  # Locust's stats_history rows

    @property
    def ok_rps(self) -> float:
        """Correct replies per second: failed requests earn nothing."""
        return self.rps * (self.requests - self.failures) / self.requests if self.requests else 0.0

    @property
    def failure_ratio(self) -> float:
        return self.failures / self.requests if self.requests else 1.0

    def to_dict(self) -> dict:
        data = dict(self.__dict__)
        data.pop("history")
        return data


def _number(row: dict, key: str) -> float:
    value = row.get(key, "") or "0"
    try:
        return float(value)
    except ValueError:  # Locust writes "N/A" before the first sample
        return 0.0


def read_stats(prefix: Path) -> LoadStats:
    """Parse <prefix>_stats.csv (the "Aggregated" row) and _stats_history.csv."""
    stats_file = Path(f"{prefix}_stats.csv")
    if not stats_file.exists():
        raise FileNotFoundError(f"Locust wrote no statistics ({stats_file.name} is missing)")
    with stats_file.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    total = next((r for r in rows if r.get("Name") == "Aggregated"), None)
    if total is None:
        raise ValueError(f"{stats_file.name} has no Aggregated row")
    history_file = Path(f"{prefix}_stats_history.csv")
    history = []
    if history_file.exists():
        with history_file.open(newline="") as fh:
            history = [r for r in csv.DictReader(fh) if r.get("Name") == "Aggregated"]
    users = max((int(_number(r, "User Count")) for r in history), default=0)
    return LoadStats(
        requests=int(_number(total, "Request Count")),
        failures=int(_number(total, "Failure Count")),
        rps=_number(total, "Requests/s"),
        p50_ms=_number(total, "50%"),
        p95_ms=_number(total, "95%"),
        p99_ms=_number(total, "99%"),
        users=users,
        history=history,
    )
