"""Latency at microsecond resolution: Locust rounds response times to whole
milliseconds ("p50 0 ms" for a server answering in 150 µs); the load user's own
round trips are kept in µs (grader/load/latency.py), shipped from workers to the
master with Locust's report_to_master / worker_report events, written to
<prefix>_latency.json, and read by the grader into LoadStats, load.latency,
report.html and the terminal."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import pytest
from conftest import REPO, SERVERS

from grader import charts
from grader.checks import REGISTRY, CheckContext, run_check
from grader.checks.load import P95_FLOOR_US, latency_ceiling
from grader.load import latency
from grader.load.stats import LoadStats, read_stats
from grader.proc import free_port, stop_group


def test_buckets_keep_three_significant_digits():
    assert [latency.bucket(x) for x in (0.4, 149.6, 999.4, 1234.5, 98_765, 1_234_567)] == \
        [0, 150, 999, 1230, 98_800, 1_230_000]
    for us in (3.0, 150.0, 7_777.0, 123_456.0):
        assert abs(latency.bucket(us) - us) <= us * 0.005 + 0.5


def test_percentiles_are_the_nearest_rank():
    counts = {100: 50, 200: 45, 5000: 5}  # 100 replies
    assert [latency.percentile(counts, q) for q in (0.5, 0.95, 0.96, 1.0)] == \
        [100.0, 200.0, 5000.0, 5000.0]
    assert latency.percentile({}, 0.5) == 0.0


def test_a_workers_reports_add_up_on_the_master_exactly(tmp_path):
    worker, master = latency.Recorder(), latency.Recorder()
    for i in range(1000):
        worker.record(100 + i % 7, 1000.0 + i / 500)
        if i % 300 == 0:  # Locust's periodic stats report, and the final one
            master.add(worker.take())
    master.add(worker.take())
    assert master.total == worker.total and sum(master.total.values()) == 1000
    assert master.seconds == worker.seconds and set(master.seconds) == {1000, 1001}
    master.write(tmp_path / "stats_latency.json")
    back = latency.read(tmp_path / "stats_latency.json")
    assert back["total"] == master.total and back["per_second"] == master.seconds


def test_latency_is_shown_in_microseconds_for_fast_servers():
    assert [latency.shown(x) for x in (0, 420, 999.6, 1240, 17_345, 250_400)] == \
        ["0 µs", "420 µs", "1 ms", "1.24 ms", "17.3 ms", "250 ms"]


def stats(p50: float, p95: float, p99: float, source: str = "grader") -> LoadStats:
    return LoadStats(requests=1000, failures=0, rps=1000.0, p50_us=p50, p95_us=p95,
                     p99_us=p99, users=20, latency_source=source)


def test_load_latency_judges_microseconds():
    ctx = CheckContext(params={"max_p95_ratio": 5.0, "max_p95_ms": None}, load=stats(180, 420, 900),
                       reference=stats(150, 380, 700))
    passed = run_check(REGISTRY["load.latency"], ctx)
    assert passed.passed and passed.figure == "p50 180 µs, p95 420 µs, p99 900 µs"
    # a fast reference counts as the noise floor: 5 × 3 ms, said so
    ceiling, basis = latency_ceiling(ctx.params, ctx.reference)
    assert ceiling == 5 * P95_FLOOR_US and basis == "5× the reference's 380 µs, counted as 10 ms"
    slow = CheckContext(params=ctx.params, load=stats(9_000, 140_000, 180_000),
                        reference=stats(150, 380, 700))
    failed = run_check(REGISTRY["load.latency"], slow)
    assert not failed.passed and failed.expected.startswith("p95 ≤ 50 ms")
    assert failed.got == "p95 140 ms"


def test_without_the_file_latency_is_locusts_and_says_so(tmp_path):
    prefix = tmp_path / "stats"
    (tmp_path / "stats.json").write_text(json.dumps([{
        "num_requests": 10, "num_failures": 0, "start_time": 1.0, "last_request_timestamp": 2.0,
        "response_times": {"0": 6, "1": 3, "7": 1}}]))
    old = read_stats(prefix)
    assert (old.p50_us, old.p95_us, old.latency_source) == (0.0, 7000.0, "locust")
    figure = run_check(REGISTRY["load.latency"], CheckContext(params={}, load=old)).figure
    assert figure.endswith("(Locust's whole ms)")
    recorder = latency.Recorder()
    for us in [120] * 6 + [180] * 3 + [950]:
        recorder.record(us, 1.5)
    recorder.write(tmp_path / "stats_latency.json")
    new = read_stats(prefix)
    assert (new.p50_us, new.p95_us, new.p99_us, new.latency_source) == (120, 950, 950, "grader")
    assert new.to_dict()["p95_ms"] == 0.95


def test_the_latency_chart_is_in_microseconds_for_a_fast_server():
    fast = stats(150, 400, 800)
    fast.span = (1000.2, 1003.0)
    fast.latency_seconds = {1000: {150: 9, 400: 1}, 1001: {140: 9, 380: 1},
                            1002: {160: 9, 420: 1}}
    svg = charts.latency_chart(fast, None, ceiling=50_000)
    assert ">µs<" in svg and ">ms<" not in svg
    assert "p95 threshold 50 ms (far above)" in svg  # a note, not a line flattening the data
    slow = stats(9_000, 40_000, 80_000)
    slow.latency_seconds = {1000: {9000: 9, 40_000: 1}}
    assert ">ms<" in charts.latency_chart(slow, None, ceiling=15_000)


@pytest.mark.slow
def test_workers_ship_microseconds_to_the_master_the_locust_way(start_server, tmp_path):
    """A real Locust master and two workers (processes, the stack's way without Docker):
    the master's <prefix>_latency.json counts every reply Locust counted, in µs."""
    host, port = start_server(SERVERS / "epoll_server.py")
    master_port = free_port()
    env = dict(os.environ, LOCUST_LOCUSTFILE=str(REPO / "grader/load/locustfile.py"),
               LOCUST_USER_CLASSES="LineUser", LOCUST_HOST=f"tcp://{host}:{port}")
    prefix = tmp_path / "stats"
    master = subprocess.Popen(
        [sys.executable, "-m", "locust", "--master", "--headless", "--only-summary",
         "--master-bind-port", str(master_port), "--expect-workers", "2", "-u", "4", "-r", "4",
         "-t", "2s", "--json-file", str(prefix), "--loglevel", "WARNING"],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        start_new_session=True)
    _wait_port(master_port)
    workers = [subprocess.Popen(
        [sys.executable, "-m", "locust", "--worker", "--master-port", str(master_port),
         "--loglevel", "WARNING"], cwd=REPO, env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True) for _ in range(2)]
    try:
        assert master.wait(90) == 0, master.stderr.read()[-2000:]
    finally:
        for proc in (master, *workers):
            stop_group(proc, grace=5)
    entries = json.loads((tmp_path / "stats.json").read_text())
    counted = sum(e["num_requests"] - e["num_failures"] for e in entries)
    times = latency.read(tmp_path / "stats_latency.json")
    assert times is not None, "the master wrote no latency file"
    assert sum(times["total"].values()) == counted > 100
    loaded = read_stats(prefix)
    assert loaded.latency_source == "grader" and 0 < loaded.p50_us <= loaded.p99_us


def _wait_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return
        except OSError:
            time.sleep(0.1)


def test_users_never_served_travel_from_the_workers_to_the_file(tmp_path):
    """locustfile's NeverServed: each worker counts them and ships the count with its
    stats report; the master adds them up and writes them with the histogram."""
    worker, master = latency.Recorder(), latency.Recorder()
    for _ in range(3):
        worker.never_served()
    master.add(worker.take(), worker.take_unserved())
    master.add(worker.take(), worker.take_unserved())  # nothing new: nothing counted twice
    master.write(tmp_path / "x_latency.json")
    assert latency.read(tmp_path / "x_latency.json")["unserved"] == 3
