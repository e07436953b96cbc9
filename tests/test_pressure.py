"""The checks that push a server (robust.backpressure, robust.idle_timeout) and
the blocking-call lesson (robust.stall): each fails a server with exactly its
flaw (tests/broken/) and passes the reference, in local mode; one docker run
grades lab-4's protocol reference and the lesson in the real stack.
"""

import pytest
from conftest import BROKEN, REPO, SERVERS, leftovers_of, quiet, write_lab

from grader.runner import grade
from grader.stage import run_network_stage


def judge(start_server, path, check: str, model: str, **params) -> dict:
    addr = start_server(path)
    item = {"check": check, "params": params, "model": model, "os_name": "linux",
            "server_pid": addr.pid}
    return run_network_stage(addr, [item], 10.0)["outcomes"][0]


@pytest.mark.parametrize("path, model", [
    (SERVERS / "asyncio_protocol_server.py", "asyncio_protocol"),
    (SERVERS / "asyncio_server.py", "asyncio"),
    (BROKEN / "correct.py", "selectors"),
])
def test_backpressure_passes_a_server_that_stops_reading(start_server, path, model):
    outcome = judge(start_server, path, "robust.backpressure", model)
    assert outcome["status"] == "passed", outcome
    assert "without reading" in outcome["figure"]


@pytest.mark.parametrize("broken, model, words", [
    ("protocol_no_flow_control", "asyncio_protocol", "pause_reading()"),
    ("no_backpressure", "selectors", "drop its read interest"),
])
def test_backpressure_fails_a_server_whose_replies_pile_up(start_server, broken, model, words):
    outcome = judge(start_server, BROKEN / f"{broken}.py", "robust.backpressure", model)
    assert outcome["status"] == "failed", outcome
    assert "expected the server's memory to grow by at most 32 MiB" in (
        f"expected {outcome['expected']}"), outcome
    assert "MiB: it kept reading" in outcome["got"] and words in outcome["hint"]


def test_idle_timeout_closes_idle_clients_and_keeps_active_ones(start_server):
    outcome = judge(start_server, SERVERS / "asyncio_protocol_server.py", "robust.idle_timeout",
                    "asyncio_protocol", timeout=2.0)
    assert outcome["status"] == "passed", outcome
    assert "2 idle clients closed" in outcome["figure"] and "kept and served" in outcome["figure"]


def test_idle_timeout_fails_a_server_that_keeps_silent_clients(start_server):
    outcome = judge(start_server, BROKEN / "protocol_no_idle_timeout.py", "robust.idle_timeout",
                    "asyncio_protocol", timeout=2.0)
    assert outcome["status"] == "failed", outcome
    assert "a silent client" in outcome["got"] and "still open" in outcome["got"]
    assert "call_later" in outcome["hint"]


def test_stall_shows_a_blocking_call_serving_one_client_at_a_time(start_server):
    outcome = judge(start_server, BROKEN / "protocol_blocking_call.py", "robust.stall",
                    "asyncio_protocol")
    assert outcome["status"] == "failed", outcome
    assert "one client at a time" in outcome["got"]
    assert "run_in_executor" in outcome["hint"]


def test_stall_passes_clients_served_side_by_side(start_server):
    outcome = judge(start_server, BROKEN / "protocol_correct.py", "robust.stall",
                    "asyncio_protocol")
    assert outcome["status"] == "passed", outcome
    assert "side by side" in outcome["figure"]


DOCKER_LAB = """\
lab: lab-4
title: lab-4's new checks in the stack
exercises:
  - id: blocking-call
    title: the lesson
    model: asyncio
    entry: blocking_server.py
    checks:
      - {check: robust.stall, points: 0, required: false, expect: fail}
  - id: protocol
    title: asyncio.Protocol
    model: asyncio_protocol
    entry: protocol_server.py
    checks:
      - {check: line.basic, points: 1}
      - {check: model.conformance, points: 1}
      - {check: robust.backpressure, points: 1}
      - {check: robust.idle_timeout, points: 1, timeout: 2}
"""


@pytest.mark.docker
def test_docker_grades_the_protocol_reference_and_the_lesson(docker_engine, tmp_path):
    lab = write_lab(tmp_path / "labs", "lab-4", DOCKER_LAB)
    submission = tmp_path / "submission"
    submission.mkdir()
    for source, name in ((SERVERS / "asyncio_protocol_server.py", "protocol_server.py"),
                         (SERVERS / "lineproto.py", "lineproto.py"),
                         (REPO / "labs/lab-4/starter/blocking_server.py", "blocking_server.py")):
        (submission / name).write_bytes(source.read_bytes())
    report = grade(lab, submission, "docker", "linux", tmp_path / "results", progress=quiet)
    got = {(r.exercise, r.check): r.outcome for r in report.results}
    summary = {k: (o.status, o.figure, o.got) for k, o in got.items()}
    assert report.passed, summary
    assert "one client at a time" in got["blocking-call", "robust.stall"].figure, summary
    assert "multiplexing with epoll" in got["protocol", "model.conformance"].figure, summary
    assert "MiB" in got["protocol", "robust.backpressure"].figure, summary
    assert leftovers_of(report.run_id) == []
