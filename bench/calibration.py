"""The yardstick against the reference servers on this machine (grader/calibration.py).

    python -m bench.calibration [--rounds 3] [--modes local,docker] [--out DIR]

For every load exercise of the labs (or those named with --exercises lab-3/select,...),
measures the exercise's reference and the echo yardstick back to back under the
exercise's own load, where a submission runs (local subprocess, or a container with
the exercise's limits), --rounds times, alternating which goes first. Writes
runs.csv (every measurement) and summary.md (per exercise and mode: the medians of
the reference/yardstick ratios of replies/s and p95, the factors calibration.SCALES
holds) under --out (default bench/results/<date>-calibration/).
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from grader import calibration
from grader.labspec import lab_names, load_lab
from grader.paths import REPO
from grader.report import new_run_id

FIELDS = ["lab", "exercise", "model", "mode", "round", "source", "ok_rps", "p50_ms", "p95_ms",
          "p99_ms", "failures", "load_average", "at"]


@dataclass
class Run:
    """What calibration.measure() needs of a grading run."""

    folder: Path
    mode: str
    os_name: str = "linux"
    run_id: str = ""


def exercises(named: list[str]) -> list[tuple[str, object]]:
    out = []
    for lab in lab_names():
        for ex in load_lab(lab).exercises:
            if ex.load and ex.reference and (not named or f"{lab}/{ex.id}" in named):
                out.append((lab, ex))
    return out


def measure_pair(lab: str, ex, mode: str, rnd: int, work: Path) -> list[dict]:
    rows = []
    order = ("reference", "yardstick") if rnd % 2 == 0 else ("yardstick", "reference")
    for source in order:
        run = Run(work / f"{lab}-{ex.id}-{mode}-{rnd}-{source}", mode, run_id=new_run_id())
        run.folder.mkdir(parents=True)
        cal = calibration.measure(run, ex, source, lambda _msg: None, "benchmark")
        s = cal.stats
        rows.append({"lab": lab, "exercise": ex.id, "model": ex.model, "mode": mode,
                     "round": rnd, "source": source,
                     "ok_rps": round(s.ok_rps, 1) if s else 0, "p50_ms": s.p50_ms if s else 0,
                     "p95_ms": s.p95_ms if s else 0, "p99_ms": s.p99_ms if s else 0,
                     "failures": s.failures if s else -1,
                     "load_average": round(cal.load_average, 2),
                     "at": time.strftime("%H:%M:%S", time.gmtime(cal.measured_at))})
        print(rows[-1], flush=True)
    return rows


def ratios(rows: list[dict]) -> dict:
    """Per round: reference / yardstick for replies/s and p95; their medians."""
    by_round: dict[int, dict] = {}
    for r in rows:
        by_round.setdefault(r["round"], {})[r["source"]] = r
    rps, p95 = [], []
    for pair in by_round.values():
        ref, yard = pair.get("reference"), pair.get("yardstick")
        if ref and yard and yard["ok_rps"] > 0 and yard["p95_ms"] > 0:
            rps.append(ref["ok_rps"] / yard["ok_rps"])
            p95.append(ref["p95_ms"] / yard["p95_ms"])
    return {"rps": rps, "p95": p95}


def summary_md(rows: list[dict], started: str, seconds: float) -> str:
    lines = [f"# The yardstick against the references ({started}, {seconds:.0f} s)", "",
             "Back to back under each exercise's own load (20 users, 1 KiB lines, 5 s), "
             "order alternating per round. ratio = reference / yardstick.", "",
             "| lab | exercise | mode | rounds | reference replies/s (median) | yardstick "
             "replies/s (median) | rps ratio median (min-max) | reference p95 ms | "
             "yardstick p95 ms | p95 ratio median | reference p99 ms | yardstick p99 ms | "
             "load avg |", "|" + "---|" * 13]
    keys = sorted({(r["lab"], r["exercise"], r["mode"]) for r in rows})
    for lab, ex, mode in keys:
        mine = [r for r in rows if (r["lab"], r["exercise"], r["mode"]) == (lab, ex, mode)]
        ref = [r for r in mine if r["source"] == "reference"]
        yard = [r for r in mine if r["source"] == "yardstick"]
        q = ratios(mine)

        def med(items, key):
            values = [r[key] for r in items]
            return statistics.median(values) if values else 0.0

        rps = (f"{statistics.median(q['rps']):.2f} ({min(q['rps']):.2f}-{max(q['rps']):.2f})"
               if q["rps"] else "-")
        p95 = f"{statistics.median(q['p95']):.2f}" if q["p95"] else "-"
        loads = [r["load_average"] for r in mine]
        lines.append(f"| {lab} | {ex} | {mode} | {len(q['rps'])} | {med(ref, 'ok_rps'):,.0f} | "
                     f"{med(yard, 'ok_rps'):,.0f} | {rps} | {med(ref, 'p95_ms'):.2f} | "
                     f"{med(yard, 'p95_ms'):.2f} | {p95} | {med(ref, 'p99_ms'):.2f} | "
                     f"{med(yard, 'p99_ms'):.2f} | {min(loads):.1f}-{max(loads):.1f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.calibration")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--modes", default="local,docker")
    parser.add_argument("--exercises", default="", help="lab/exercise,... (default: all)")
    parser.add_argument("--out", type=Path,
                        default=REPO / "bench" / "results" / f"{time.strftime('%Y-%m-%d')}-calibration")
    args = parser.parse_args(argv)
    named = [x for x in args.exercises.split(",") if x]
    args.out.mkdir(parents=True, exist_ok=True)
    started, t0 = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), time.monotonic()
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="iolab-bench-calibration-") as tmp:
        for mode in args.modes.split(","):
            for lab, ex in exercises(named):
                for rnd in range(args.rounds):
                    rows += measure_pair(lab, ex, mode, rnd, Path(tmp))
                    with (args.out / "runs.csv").open("w", newline="") as fh:
                        writer = csv.DictWriter(fh, FIELDS)
                        writer.writeheader()
                        writer.writerows(rows)
    (args.out / "summary.md").write_text(summary_md(rows, started, time.monotonic() - t0))
    print((args.out / "summary.md").read_text())
    print(f"written: {args.out} (cores: {os.cpu_count()})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
