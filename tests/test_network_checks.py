"""The network checks against servers broken on purpose, one flaw each.

A grader that passes a broken server is our worst bug: every flaw must fail
exactly the check aimed at it, and a correct server must pass them all.
"""

import pytest
from conftest import BROKEN

from grader.stage import run_network_stage

NETWORK_CHECKS = ["line.basic", "line.split", "line.pipelined", "line.large",
                  "robust.silent_client", "robust.reset", "robust.eof", "robust.concurrent"]


def failing(addr, wait=10.0) -> dict[str, dict]:
    result = run_network_stage(addr, [{"check": c} for c in NETWORK_CHECKS], wait)
    return {c: o for c, o in zip(NETWORK_CHECKS, result["outcomes"]) if o["status"] != "passed"}


def test_correct_server_passes_every_network_check(start_server):
    assert failing(start_server(BROKEN / "correct.py")) == {}


@pytest.mark.parametrize("flaw, check, words", [
    ("eof_ignored", "robust.eof", "stayed open"),
    ("eof_drops_owed", "robust.eof", "only"),
])
def test_one_flaw_fails_exactly_its_check(start_server, flaw, check, words):
    failed = failing(start_server(BROKEN / f"{flaw}.py"))
    assert list(failed) == [check]
    assert words in failed[check]["expected"] + failed[check]["got"]
    assert failed[check]["hint"], "a failure must say what to try"


def test_partial_sends_fail_the_checks_with_replies_larger_than_a_send(start_server):
    """line.large, and robust.eof: the replies it owes at the EOF are 3x the socket
    buffers, so they are sent in parts too."""
    failed = failing(start_server(BROKEN / "partial_sends.py"))
    assert set(failed) == {"line.large", "robust.eof"}
    assert "expected" in failed["line.large"]["expected"] + failed["line.large"]["got"]


def test_one_client_at_a_time_fails_the_checks_of_concurrency(start_server):
    """A silent client blocks it, and robust.concurrent's lockstep rounds hold every
    client until all are answered."""
    failed = failing(start_server(BROKEN / "iterative_blocks.py"))
    assert set(failed) == {"robust.silent_client", "robust.concurrent"}
    assert "silent" in failed["robust.silent_client"]["expected"]


def test_no_framing_fails_the_framing_checks(start_server):
    failed = failing(start_server(BROKEN / "no_framing.py"))
    assert {"line.split", "line.pipelined"} <= set(failed)
    assert "line.basic" not in failed  # whole small lines look right: only framing catches it
    assert "recv() chunk" in failed["line.split"]["hint"]


# A reply per recv() chunk, from a server that reads late (a busy machine): whatever
# has arrived by then is one chunk.
LATE_READER = """\
import os, socket, threading, time

def serve(conn):
    with conn:
        while True:
            time.sleep(0.3)
            data = conn.recv(65536)
            if not data:
                return
            line = data.rstrip(b"\\n")
            conn.sendall(b"%d %s\\n" % (len(line), line))

listener = socket.create_server((os.environ["HOST"], int(os.environ["PORT"])))
while True:
    threading.Thread(target=serve, args=(listener.accept()[0],), daemon=True).start()
"""


def test_line_basic_does_not_depend_on_when_the_server_reads(start_server, tmp_path):
    """line.basic sends a line only once the one before it is answered: a per-chunk
    server passes it however late it reads (line.split and line.pipelined judge
    framing). With lines 50 ms apart, a starter on a busy machine passed or failed it
    by luck: one of ten runs of the determinism test failed it."""
    (tmp_path / "late.py").write_text(LATE_READER)
    addr = start_server(tmp_path / "late.py")
    result = run_network_stage(addr, [{"check": "line.basic"}, {"check": "line.split"}], 10.0)
    basic, split = result["outcomes"]
    assert basic["status"] == "passed", basic
    assert split["status"] == "failed", split


def test_dies_on_reset_fails_the_reset_check_first(start_server):
    failed = failing(start_server(BROKEN / "dies_on_reset.py"))
    assert "robust.reset" in failed
    assert not {"line.basic", "line.split", "line.pipelined", "line.large"} & set(failed)


def test_never_listening_server_is_an_error_not_a_pass(start_server):
    addr = start_server(BROKEN / "never_listens.py", wait=0)
    result = run_network_stage(addr, [{"check": c} for c in NETWORK_CHECKS], wait=2.0)
    assert result["listening"] is False
    assert {o["status"] for o in result["outcomes"]} == {"error"}
    assert "never accepted a connection" in result["outcomes"][0]["got"]
