"""`make bench` in small: the smoke run CI does (local mode, < 60 s), and the charts."""

import csv
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest
from conftest import REPO

from grader.svg import Series, bar_chart, line_chart, nice_ceiling


@pytest.mark.slow
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
    svg = line_chart("t", [Series("select", [(0, 10), (1000, 90)]),
                           Series("epoll", [(0, 10), (5000, 11)])],
                     x_label="x", y_label="y", notes=["select at 5000 idle: not served"],
                     x_ticks=[0, 1000, 5000])
    root = ET.fromstring(svg)
    assert root.tag.endswith("svg")
    assert svg.count("<polyline") == 2 and "not served" in svg and ">5k<" in svg
    bars = bar_chart("t", {"epoll": {"1 clients": 5.0, "10 clients": 9.0},
                           "asyncio": {"1 clients": 4.0}}, x_label="replies/s")
    ET.fromstring(bars)
    assert bars.count("<rect") == 1 + 3  # background, bars
    assert ">10<" in bars  # the axis runs to nice_ceiling(9) = 10


def test_one_axis_rule():
    assert nice_ceiling(1234) == 2000 and nice_ceiling(0.3) == 0.5 and nice_ceiling(9) == 10
    empty = line_chart("t", [], x_label="x", y_label="y", empty="no data yet")
    assert "no data yet" in empty and "<polyline" not in empty
