"""`make bench` in small: the smoke run CI does (local mode, < 60 s), and the charts."""

import csv
import subprocess
import sys
import xml.etree.ElementTree as ET

from conftest import REPO

from bench.svg import bar_chart, line_chart


def test_smoke_bench_writes_csv_charts_and_summary(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "bench.run", "--smoke", "--out", str(tmp_path)],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    for name in ("scale.csv", "duel.csv", "idle.csv", "c10k.csv", "throughput.svg",
                 "idle_latency.svg", "summary.md"):
        assert (tmp_path / name).is_file(), name
    with (tmp_path / "scale.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert {r["server"] for r in rows} >= {"epoll", "asyncio"}
    assert all(int(r["errors"]) == 0 and float(r["rps"]) > 0 for r in rows), rows
    with (tmp_path / "c10k.csv").open() as fh:
        c10k = next(csv.DictReader(fh))
    assert c10k["idle_held"] == c10k["idle"] and c10k["errors"] == "0", c10k
    summary = (tmp_path / "summary.md").read_text()
    for words in ("Mode: **local**", "ratios from one run", "epoll / asyncio streams replies/s",
                  "poll / epoll p50 latency", "C10K", "Machine: "):
        assert words in summary, words
    for name in ("throughput.svg", "idle_latency.svg"):
        ET.fromstring((tmp_path / name).read_text())  # well-formed SVG


def test_charts_are_svg_and_keep_every_series():
    svg = line_chart("t", "x", "y", {"select": [(0, 10), (1000, 90)], "epoll": [(0, 10), (5000, 11)]},
                     notes=["select at 5000 idle: not served"])
    root = ET.fromstring(svg)
    assert root.tag.endswith("svg")
    assert svg.count("<polyline") == 2 and "not served" in svg
    bars = bar_chart("t", "replies/s", {"epoll": {"1 clients": 5.0, "10 clients": 9.0},
                                        "asyncio": {"1 clients": 4.0}})
    ET.fromstring(bars)
    assert bars.count("<rect") == 1 + 2 + 3  # background, legend, bars
