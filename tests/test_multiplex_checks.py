"""lab-3's multiplexing checks against one-flaw servers and the references.

resource.halfclose_cpu: a half-closed client that does not read must cost no CPU
(tests/broken/halfclose_spin.py keeps asking for reads on it and spins).
robust.refuse_past_fd_setsize: a select() server past FD_SETSIZE refuses cleanly
(the reference) or crashes (the lab-3 starter, before its FD_SETSIZE fix).
"""

import pytest
from conftest import BROKEN, LABS, SERVERS

from grader.stage import run_network_stage


def judge(start_server, path, check: str, model: str, **params) -> dict:
    addr = start_server(path)
    plan = [{"check": check, "params": params, "model": model, "os_name": "linux",
             "server_pid": addr.pid}]
    return run_network_stage(addr, plan, wait=10.0)["outcomes"][0]


def test_halfclose_spin_fails_with_a_hint_for_its_model(start_server):
    outcome = judge(start_server, BROKEN / "halfclose_spin.py", "resource.halfclose_cpu",
                    "selectors")
    assert outcome["status"] == "failed", outcome
    assert outcome["expected"].startswith("at most 0.3 s of 1.5 s"), outcome
    assert "a busy loop" in outcome["got"], outcome
    assert "drop the read interest" in outcome["hint"] and "EVENT_WRITE" in outcome["hint"]


@pytest.mark.parametrize("path", [BROKEN / "correct.py", SERVERS / "poll_server.py",
                                  SERVERS / "epoll_server.py"])
def test_a_server_that_drops_read_interest_at_eof_passes(start_server, path):
    model = path.stem.removesuffix("_server") if path.parent == SERVERS else "selectors"
    outcome = judge(start_server, path, "resource.halfclose_cpu", model)
    assert outcome["status"] == "passed", outcome


def test_select_reference_refuses_past_fd_setsize(start_server):
    outcome = judge(start_server, SERVERS / "select_server.py",
                    "robust.refuse_past_fd_setsize", "select")
    assert outcome["status"] == "passed", outcome
    assert "refused (closed at once" in outcome["figure"], outcome


def test_select_starter_crashes_past_fd_setsize_and_is_told_so(start_server):
    outcome = judge(start_server, LABS / "lab-3" / "starter" / "server.py",
                    "robust.refuse_past_fd_setsize", "select")
    assert outcome["status"] == "failed", outcome
    assert "it crashed, not a clean refusal" in outcome["got"], outcome
    assert "ValueError" in outcome["hint"] and "fileno() is 1024" in outcome["hint"]
