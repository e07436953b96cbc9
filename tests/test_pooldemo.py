"""lab-1's connection-pool lesson (grader/pooldemo.py) with real sockets on loopback.

Only what is deterministic is asserted: counts of replies, of TIME_WAIT sockets
and of connections answered past the server's pool. Throughput and latency
ratios are printed by the demo, never asserted here.
"""

from __future__ import annotations

import csv
import sys
import xml.dom.minidom

import pytest
from conftest import SERVERS, grade

from grader import pooldemo

LINUX = sys.platform.startswith("linux")


@pytest.fixture
def pool_server(start_server, monkeypatch):
    """The reference thread pool with POOL_SIZE=4 (the environment is passed on)."""
    monkeypatch.setenv("POOL_SIZE", "4")
    return start_server(SERVERS / "threadpool_server.py")


def test_a_new_connection_per_request_leaves_a_time_wait_socket_each(pool_server):
    phase = pooldemo.per_request(pool_server, requests=200, callers=4)
    assert not phase.failures and len(phase.latencies) == 200
    assert len(phase.ports) == 200  # a local port per request
    tw = pooldemo.count_time_wait(pool_server[1], phase.ports)
    if LINUX:
        # the client closes first, so its end waits; a port is reused (and its
        # TIME_WAIT ended) only on a collision past 1 s: some, never none, remain
        assert 0 < tw <= 200


def test_a_pool_reuses_its_connections(pool_server):
    phase = pooldemo.pooled(pool_server, requests=200, callers=4, size=4)
    assert not phase.failures and len(phase.latencies) == 200
    assert len(phase.ports) == 4
    if LINUX:
        assert pooldemo.count_time_wait(pool_server[1], phase.ports) == 4  # one per connection


def test_a_client_pool_larger_than_the_server_pool_waits(pool_server):
    ceiling = pooldemo.pool_ceiling(pool_server, server_pool=4, extra=2, wait=1.0)
    assert (ceiling.answered, ceiling.starved) == (4, 2)
    assert ceiling.released == 2 and ceiling.answered_after == 2


def test_a_thread_per_connection_has_no_pool_to_wait_for(start_server):
    ceiling = pooldemo.pool_ceiling(start_server(SERVERS / "thread_server.py"), server_pool=4,
                                    extra=2, wait=1.0)
    assert ceiling.starved == 0


def test_pool_demo_command_writes_its_csv_and_chart(tmp_path):
    out = tmp_path / "demo"
    proc = grade("pool-demo", "--server", "servers/threadpool_server.py", "--requests", "300",
                 "--callers", "4", "--pool-size", "4", "--extra", "2", "--wait", "1",
                 "--out", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = list(csv.DictReader((out / "pool.csv").open(encoding="utf-8")))
    assert [r["replies"] for r in rows] == ["300", "300"]
    assert [r["connections"] for r in rows] == ["300", "4"]
    xml.dom.minidom.parse(str(out / "pool.svg"))
    assert "4 answered, 2 waited 1 s unanswered" in proc.stdout
    assert (out / "summary.txt").read_text(encoding="utf-8") in proc.stdout + "\n"


def test_pool_demo_against_a_server_that_cannot_serve_a_pool_fails_with_a_reason(tmp_path):
    proc = grade("pool-demo", "--server", "labs/lab-1/starter/threadpool", "--requests", "50",
                 "--out", str(tmp_path / "demo"))
    assert proc.returncode == 1
    assert "error: the server did not answer every request" in proc.stdout


def test_pool_demo_bad_input_is_one_line_and_exit_2(tmp_path):
    proc = grade("pool-demo", "--server", str(tmp_path / "missing"))
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "is not a server" in proc.stderr
