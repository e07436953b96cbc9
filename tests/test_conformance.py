"""The model checks against the reference servers (local mode): each is
recognised as its own model, a thread per client is rejected where one
multiplexing thread is required, busy polling is caught by its CPU time, and
select()'s FD_SETSIZE shows up as the lesson it is.
"""

import pytest
from conftest import SERVERS

from grader.stage import run_network_stage


def judge(start_server, model: str, check: str, exercise: str | None = None,
          os_name: str = "linux", **params) -> dict:
    addr = start_server(SERVERS / f"{model}_server.py", os_name)
    item = {"check": check, "params": params, "model": exercise or model, "os_name": os_name,
            "server_pid": addr.pid}
    return run_network_stage(addr, [item], 10.0)["outcomes"][0]


RECOGNISED = {
    "select": "one thread multiplexing with select",
    "poll": "one thread multiplexing with poll",
    "epoll": "one thread multiplexing with epoll",
    "epoll_et": "multiplexing with epoll (edge-triggered)",
    "selectors": "one thread multiplexing with epoll",
    "asyncio": "one thread multiplexing with epoll",
    "asyncio_protocol": "one thread multiplexing with epoll",
    "thread": "a thread per connection",
    "socketserver": "a thread per connection",
    "threadpool": "a pool of threads",
    "fork": "a process per connection",
    "nonblocking": "one thread busy polling",
    "iterative": "one thread, blocking",
}


@pytest.mark.parametrize("model", RECOGNISED)
def test_each_reference_is_recognised_as_its_own_model(start_server, model):
    outcome = judge(start_server, model, "model.conformance")
    assert outcome["status"] == "passed", outcome
    assert RECOGNISED[model] in outcome["figure"]


@pytest.mark.parametrize("exercise, facility", [
    ("select", "select()"), ("poll", "poll()"), ("epoll", "epoll")])
def test_thread_per_client_is_rejected_where_one_thread_multiplexes(start_server, exercise,
                                                                     facility):
    outcome = judge(start_server, "thread", "model.conformance", exercise)
    assert outcome["status"] == "failed"
    assert "threads" in outcome["got"] and "under 200 clients" in outcome["got"]
    assert f"this exercise requires one thread multiplexing with {facility}" in outcome["got"]


def test_the_wrong_multiplexer_is_named(start_server):
    outcome = judge(start_server, "select", "model.conformance", "epoll")
    assert outcome["status"] == "failed"
    assert "select" in outcome["got"] and "epoll" in outcome["got"]


def test_level_triggered_epoll_is_not_edge_triggered(start_server):
    outcome = judge(start_server, "epoll", "model.conformance", "epoll_et")
    assert outcome["status"] == "failed" and "EPOLLET" in outcome["expected"]


def test_busy_polling_burns_cpu_and_fails_idle_cpu(start_server):
    outcome = judge(start_server, "nonblocking", "resource.idle_cpu")
    assert outcome["status"] == "failed"
    assert "busy polling" in outcome["hint"]


def test_multiplexing_server_idles_at_no_cpu(start_server):
    outcome = judge(start_server, "select", "resource.idle_cpu")
    assert outcome["status"] == "passed", outcome


def test_resource_threads_counts_threads(start_server):
    assert judge(start_server, "epoll", "resource.threads")["status"] == "passed"
    outcome = judge(start_server, "thread", "resource.threads")
    assert outcome["status"] == "failed" and "51 threads" in outcome["figure"]


def test_select_past_fd_setsize_is_the_lesson_not_a_crash(start_server):
    outcome = judge(start_server, "select", "robust.fd_limit", connections=1100)
    assert outcome["status"] == "failed"
    assert "FD_SETSIZE is 1024 on Linux" in outcome["got"]
    assert "select() cannot watch fd 10" in outcome["got"]
    assert "still serves" in outcome["got"]


@pytest.mark.parametrize("model", ["poll", "epoll"])
def test_poll_and_epoll_serve_past_1024_connections(start_server, model):
    outcome = judge(start_server, model, "robust.fd_limit", connections=1100)
    assert outcome["status"] == "passed", outcome
