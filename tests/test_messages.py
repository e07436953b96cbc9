"""The grader never says something untrue, and always says why: each message a
student met in the lab-3 walkthrough (shared/reviews/student-walkthrough.md),
against a server with exactly that mistake, and hints that fit the exercise's
model (labs-review item 29)."""

from __future__ import annotations

import subprocess

import pytest
from conftest import BROKEN, REPO, quiet, write_lab

from grader.checks import hints
from grader.lineclient import first_difference, first_mismatch
from grader.results import print_table
from grader.runner import grade
from grader.stage import run_network_stage
from servers.platforms import MODELS

# The walkthrough's run 8: the step-1 code pasted into poll, registered for POLLOUT always.
POLLOUT_ALWAYS = '''\
import os, select, socket

listener = socket.create_server((os.environ["HOST"], int(os.environ["PORT"])))
listener.setblocking(False)
poller = select.poll()
poller.register(listener, select.POLLIN)
conns, inbufs, outbufs = {}, {}, {}
while True:
    for fd, events in poller.poll():
        if fd == listener.fileno():
            conn, _ = listener.accept()
            conn.setblocking(False)
            conns[fd2 := conn.fileno()], inbufs[fd2], outbufs[fd2] = conn, bytearray(), bytearray()
            poller.register(conn, select.POLLIN | select.POLLOUT)   # the mistake
            continue
        sock = conns[fd]
        if events & select.POLLIN:
            data = sock.recv(65536)
            if not data:
                poller.unregister(fd)
                sock.close()
                del conns[fd], inbufs[fd], outbufs[fd]
                continue
            inbufs[fd] += data
            *lines, rest = inbufs[fd].split(b"\\n")
            outbufs[fd] += b"".join(b"%d %s\\n" % (len(x), x) for x in lines)
            inbufs[fd][:] = rest
        if events & select.POLLOUT and outbufs[fd]:
            del outbufs[fd][:sock.send(outbufs[fd])]
'''


def stage(addr, checks: list[str], model: str = "select", os_name: str = "linux",
          pid: int | None = None) -> dict[str, dict]:
    plan = [{"check": c, "model": model, "os_name": os_name, "server_pid": pid} for c in checks]
    result = run_network_stage(addr, plan, 10.0)
    return dict(zip(checks, result["outcomes"]))


def test_line_large_blames_the_framing_when_the_length_prefix_is_wrong(start_server):
    """Walkthrough friction 2: the replies' length prefix shows the line was answered in
    pieces; send() is not the culprit."""
    large = stage(start_server(BROKEN / "no_framing.py"), ["line.large"])["line.large"]
    assert large["status"] == "failed"
    assert "your server answered a recv() chunk, not a line. A 64 KiB line arrives in many " \
        "chunks" in large["hint"], large
    assert "send()" not in large["hint"]


@pytest.mark.parametrize("at", [0, 1, 4095, 4096, 4097, 6 * 1024 * 1024 - 1])
def test_the_first_difference_is_found_at_its_byte(at):
    """first_mismatch compares 4 KiB blocks (line.large's 6 MiB a byte at a time took
    2 CPU-seconds per grading): the byte it names is the first that differs, on either
    side of a block's edge; a reply cut short has no differing byte, only its length."""
    expected = bytes(97 + i % 26 for i in range(256)) * (6 * 4096)
    got = expected[:at] + b"!" + expected[at + 1:]
    assert first_mismatch(got, expected) == at
    assert first_difference(got, expected).startswith(f"reply 1 differs at byte {at}: ")
    assert first_mismatch(expected[:at], expected) is None
    assert first_mismatch(expected, expected) is None


@pytest.mark.parametrize("model, words", [
    ("select", "keep the rest in a per-connection output buffer and send it when the socket is "
               "writable again"),
    ("thread", "use sendall(), which loops until every byte is sent"),
])
def test_line_large_blames_send_when_the_replies_are_cut(start_server, model, words):
    large = stage(start_server(BROKEN / "partial_sends.py"), ["line.large"], model)["line.large"]
    assert large["status"] == "failed" and words in large["hint"], large
    assert "thread" not in large["hint"]  # no "or use sendall in a thread" for anyone


def test_never_closes_says_the_step_that_is_missing(start_server):
    """Walkthrough friction 3: the server stopped reading at EOF but never closed once
    its output was sent; the hint says that step, not the one already done."""
    eof = stage(start_server(BROKEN / "eof_ignored.py"), ["robust.eof"])["robust.eof"]
    assert eof["got"].startswith("the connection stayed open")
    assert "close it once its output buffer has been fully sent: check after each send" in \
        eof["hint"]


def test_a_server_asking_for_pollout_with_nothing_to_send_is_told_so(tmp_path, start_server):
    """Walkthrough friction 4: not "it sleeps in running" with a hint about threads."""
    (tmp_path / "server.py").write_text(POLLOUT_ALWAYS)
    addr = start_server(tmp_path / "server.py")
    found = stage(addr, ["model.conformance", "resource.idle_cpu"], "poll", pid=addr.pid)
    conformance, idle = found["model.conformance"], found["resource.idle_cpu"]
    assert conformance["status"] == idle["status"] == "failed", found
    assert "it never sleeps" in conformance["got"] and "sleeps in running" not in \
        conformance["got"]
    for outcome in (conformance, idle):
        assert outcome["hint"].startswith("poll() returns at once while a socket with nothing "
                                          "to send is registered for POLLOUT"), outcome
        assert "thread" not in outcome["hint"] and "fork" not in outcome["hint"]


def test_the_windows_select_limit_is_not_told_in_linux_numbers(tmp_path):
    """Walkthrough B3: a selectors server crashing at Windows' 512 sockets was told about
    1024 and to "use poll or epoll", neither of which Windows has."""
    lab = write_lab(tmp_path / "labs", "w", """\
lab: w
title: t
exercises:
  - id: selectors
    title: t
    model: selectors
    checks:
      - {check: robust.fd_limit, points: 1, connections: 1100}
""")
    report = grade(lab, BROKEN / "correct.py", "local", "windows", tmp_path / "r", progress=quiet)
    (result,) = report.results
    text = result.outcome.explain()
    assert result.outcome.status == "failed"
    assert "FD_SETSIZE is 512 sockets on Windows" in text, text
    assert "1024" not in text and "poll" not in text.replace("select", ""), text
    assert "ValueError: too many file descriptors in select() (Windows limit 512)" in text
    assert "close new clients past that many" in text


@pytest.mark.parametrize("model", sorted(MODELS))
def test_hints_fit_the_model(model):
    """labs-review item 29: no "sendall in a thread" for an iterative server, no "every
    ready connection" for a thread pool."""
    send, concurrent = hints.partial_send(model), hints.concurrent(model)
    if model in hints.BLOCKING:
        assert "sendall()" in send and "writable" not in send
        assert "ready" not in concurrent
    elif model == "asyncio":
        assert "drain()" in send
    elif model == "asyncio_protocol":
        assert "transport.write()" in send
    else:
        assert "output buffer" in send and "sendall" not in send
    if model in hints.WRITE_INTEREST:
        assert hints.WRITE_INTEREST[model] in hints.spinning(model)


def test_the_table_has_subtotals_and_no_trailing_spaces(tmp_path):
    lab = write_lab(tmp_path / "labs", "t", """\
lab: t
title: t
exercises:
  - id: eof
    title: t
    model: select
    checks:
      - {check: line.basic, points: 1}
      - {check: robust.eof, points: 2, timeout: 1}
""")
    report = grade(lab, BROKEN / "eof_ignored.py", "local", "linux", tmp_path / "r",
                   progress=quiet)
    lines: list[str] = []
    print_table(report, out=lambda text="": lines.extend(text.split("\n")))
    assert "t / eof  1/3" in lines, lines  # the exercise's subtotal
    assert not [line for line in lines if line != line.rstrip()], lines
    assert any(line.startswith("  FAIL  half-close") and " 0/2" in line for line in lines)


def test_the_first_make_installs_without_an_editable_warning_box(tmp_path):
    """Walkthrough friction 8: an editable install (-e) printed setuptools'
    BuildBackendWarning box on the first `make lab-3`; the code runs from the
    checkout, so the venv takes a plain install."""
    commands = subprocess.run(["make", "-n", "venv", f"VENV={tmp_path / 'venv'}"], cwd=REPO,
                              capture_output=True, text=True, check=True).stdout
    install = [line for line in commands.splitlines() if "install" in line and ".[test]" in line]
    assert install and not [line for line in install if " -e " in line], commands
