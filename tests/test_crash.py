"""A crash says what crashed: when the server dies, the terminal, results.json and
report.html show the exception its log ends with (and, when the OS profile hid what
it reached for, what to use instead); the checks it kept from running collapse into
one row with that reason; the grader stops waiting the moment the server exits.
"""

from __future__ import annotations

import errno
import json
import os
import socket

import pytest
from conftest import BROKEN, REPO, grade, leftovers_of, quiet, results_folder, write_lab

from grader import crashlog
from grader.lineclient import why_failed
from grader.results import rows
from grader.runner import grade as grade_in_process

LAB = """\
lab: crash
title: crashes
exercises:
  - id: one
    title: t
    model: {model}
    checks:
      - {{check: line.basic, points: 1}}
      - {{check: line.split, points: 1}}
      - {{check: robust.reset, points: 1}}
      - {{check: line.pipelined, points: 1}}
      - {{check: robust.concurrent, points: 1, clients: 5}}
"""
SYNTAX_ERROR = "import socket\ndata = socket.socket().recv(1):\n"
EPOLL_AT_START = """\
import select, socket

def main():
    ep = select.epoll()

main()
"""


def labs_with(tmp_path, model: str = "select"):
    return write_lab(tmp_path / "labs", "crash", LAB.format(model=model))


def submission(tmp_path, source: str):
    folder = tmp_path / "submission"
    folder.mkdir()
    (folder / "server.py").write_text(source)
    return folder


def test_a_syntax_error_is_shown_once_and_the_grader_does_not_wait_for_it(tmp_path):
    labs_with(tmp_path)
    proc = grade("crash", "--mode", "local", "--submission",
                 str(submission(tmp_path, SYNTAX_ERROR)),
                 env=dict(os.environ, IOLAB_LABS=str(tmp_path / "labs")))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    out = proc.stdout
    why = "your server exited with code 1 before it listened: SyntaxError: invalid syntax " \
          "(server.py line 2)"
    assert "  FAIL  5 checks not run" in out and f"        {why}\n" in out, out
    assert out.count("  FAIL  ") == 1, out  # one row, not one per check
    assert "| SyntaxError: invalid syntax" in out  # the end of its log, once
    assert "within" not in out  # it never sat out the 20 s wait: the server had exited
    folder = results_folder(proc)
    data = json.loads((folder / "results.json").read_text())
    assert all(why in t["output"] for t in data["tests"]), data["tests"]
    assert why in data["output"] and data["extra_data"]["crashes"] == {"one": why}
    page = (folder / "report.html").read_text()
    assert page.count("5 checks not run") == 1 and "SyntaxError: invalid syntax" in page
    assert "<details class=\"crash\" open>" in page
    assert "could not reach a verdict" not in page  # the server's fault, not the grader's


def test_what_the_os_profile_hid_is_named_with_what_to_use(tmp_path):
    lab = labs_with(tmp_path, model="selectors")
    report = grade_in_process(lab, submission(tmp_path, EPOLL_AT_START), "local", "windows",
                              tmp_path / "results", progress=quiet)
    (row,) = rows(report.results)
    assert row.count == 5 and row.outcome.status == "failed"
    assert row.outcome.got == (
        "not run: your server exited with code 1 before it listened: AttributeError: module "
        "'select' has no attribute 'epoll' (server.py line 4, in main)")
    assert row.outcome.hint.startswith(
        "select.epoll does not exist on windows: use selectors.DefaultSelector")
    assert "select.epoll does not exist on windows" in report.crashes["one"]


def test_the_checks_a_crash_stopped_collapse_into_one_row(tmp_path):
    lab = labs_with(tmp_path)
    report = grade_in_process(lab, BROKEN / "dies_on_reset.py", "local", "linux",
                              tmp_path / "results", progress=quiet)
    shown = rows(report.results)
    assert [(r.check, r.status.value, r.count) for r in shown] == [
        ("line.basic", "passed", 1), ("line.split", "passed", 1),
        ("robust.reset", "failed", 1), ("line.pipelined … robust.concurrent", "failed", 2)]
    reset, skipped = shown[2], shown[3]
    crash = ("your server exited with code 1 during the check 'clients that reset (RST) do "
             "not kill the server': ConnectionResetError")
    assert skipped.outcome.got.startswith(f"not run: {crash}"), skipped.outcome.got
    assert "flawed.py line" in skipped.outcome.got  # where it was raised
    assert crash.split(" during")[0] in reset.outcome.hint  # the check it died in says so too


@pytest.mark.parametrize("log, found", [
    ('  File "/submission/server.py", line 27\n    x = 1:\n         ^\n'
     "SyntaxError: invalid syntax\n", "SyntaxError: invalid syntax (server.py line 27)"),
    # compose's prefix, and the innermost frame in the server's own code, not the emulation's
    ("server-1  | Traceback (most recent call last):\n"
     'server-1  |   File "/submission/server.py", line 9, in main\n'
     "server-1  |     sel.select()\n"
     'server-1  |   File "/usr/lib/python3.12/selectors.py", line 323, in select\n'
     "server-1  |     r, w, _ = self._select(self._readers, self._writers, [], timeout)\n"
     'server-1  |   File "/opt/iolab/servers/platforms.py", line 109, in __call__\n'
     "server-1  |     raise ValueError(...)\n"
     "server-1  | ValueError: too many file descriptors in select() (Windows limit 512)\n",
     "ValueError: too many file descriptors in select() (Windows limit 512) "
     "(server.py line 9, in main)"),
    ("select_server listening on 0.0.0.0:9000\nMemoryError\n", "MemoryError"),
    ("listening\nclient gone\n", None),  # no exception: nothing is made up
])
def test_the_last_exception_is_read_from_the_log(log, found):
    crash = crashlog.last_exception(log)
    assert (str(crash) if crash else None) == found


def test_every_hidden_name_has_what_to_use_instead():
    from servers.platforms import HIDDEN, INSTEAD
    for os_name, hidden in HIDDEN.items():
        for module, attribute in hidden:
            crash = crashlog.Crash(f"AttributeError: module '{module}' has no attribute "
                                   f"'{attribute}'")
            assert crashlog.hidden_by_profile(crash, os_name) == (
                f"{module}.{attribute} does not exist on {os_name}: "
                f"use {INSTEAD[(module, attribute)]}")
            assert crashlog.hidden_by_profile(crash, "linux") == ""  # linux hides nothing
    select_limit = crashlog.Crash("ValueError: too many file descriptors in select() "
                                  "(Windows limit 512)")
    assert "at most 512 sockets" in crashlog.hidden_by_profile(select_limit, "windows")


@pytest.mark.docker
def test_docker_a_syntax_error_is_shown_and_not_waited_for(docker_engine, tmp_path):
    labs_with(tmp_path)
    proc = grade("crash", "--mode", "docker", "--submission",
                 str(submission(tmp_path, SYNTAX_ERROR)),
                 env=dict(os.environ, IOLAB_LABS=str(tmp_path / "labs")))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "before it listened: SyntaxError: invalid syntax (server.py line 2)" in proc.stdout
    folder = results_folder(proc)
    stage = json.loads((folder / "one" / "network.json").read_text())
    # the stage saw the server's processes gone (the container's state), not a 20 s timeout
    assert stage["outcomes"][0]["got"] == "not run: your server exited before it listened"
    assert leftovers_of(folder.name) == []


FD_LIMIT_LAB = """\
lab: crash
title: crashes
exercises:
  - id: one
    title: t
    model: select
    checks:
      - {check: robust.fd_limit, points: 1, connections: 1100}
      - {check: line.basic, points: 1}
"""


@pytest.mark.docker
def test_docker_a_crashed_server_is_not_a_name_resolution_failure(docker_engine, tmp_path):
    """The walkthrough's B4: lab-3's starter dies at fd 1024 in the middle of the check;
    once its container is gone its name no longer resolves, which is not the student's
    news. The grader talks to the address it resolved before, and says what crashed."""
    write_lab(tmp_path / "labs", "crash", FD_LIMIT_LAB)
    proc = grade("crash", "--mode", "docker", "--submission", str(REPO / "labs/lab-3/starter"),
                 env=dict(os.environ, IOLAB_LABS=str(tmp_path / "labs")))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "name resolution" not in proc.stdout, proc.stdout
    assert "ValueError: filedescriptor out of range in select() (server.py line" in proc.stdout
    assert "not run: your server exited with code 1 during the check 'more than 1024 " \
           "connections at once'" in proc.stdout
    assert leftovers_of(results_folder(proc).name) == []


def test_a_gone_server_is_said_so():
    gone = socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
    assert why_failed(gone) == why_failed(OSError(errno.EHOSTUNREACH, "No route to host")) == \
        "the server is gone (it is no longer running)"
    assert why_failed(ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")) == \
        "Connection refused"


NO_FRAMING_DIES_ON_RESET = '''\
import os, selectors, socket

sel = selectors.DefaultSelector()
listener = socket.create_server((os.environ["HOST"], int(os.environ["PORT"])))
sel.register(listener, selectors.EVENT_READ)
while True:
    for key, _ in sel.select():
        if key.fileobj is listener:
            sel.register(listener.accept()[0], selectors.EVENT_READ)
            continue
        try:
            data = key.fileobj.recv(65536)
        except ConnectionResetError:
            data = b""
        if b"reset me" in data:                 # robust.reset's payload: it dies there
            raise RuntimeError("not today")
        if not data:
            sel.unregister(key.fileobj)
            key.fileobj.close()
            continue
        line = data.rstrip(b"\\n")              # no framing: one reply per chunk
        try:
            key.fileobj.sendall(b"%d %s\\n" % (len(line), line))
        except OSError:
            pass
'''


def test_a_check_failed_before_the_crash_keeps_its_own_reason(tmp_path):
    lab = labs_with(tmp_path)
    report = grade_in_process(lab, submission(tmp_path, NO_FRAMING_DIES_ON_RESET), "local",
                              "linux", tmp_path / "results", progress=quiet)
    by_check = {r.check: r.outcome for r in report.results}
    assert by_check["line.split"].status == "failed"
    assert "exited" not in by_check["line.split"].explain()  # it was alive then
    assert "recv() chunk" in by_check["line.split"].hint
    assert by_check["robust.reset"].hint.startswith(
        "your server exited with code 1 during the check 'clients that reset (RST) do not kill "
        "the server': RuntimeError: not today (server.py line 16)"), by_check["robust.reset"]
    assert by_check["line.pipelined"].skipped and by_check["robust.concurrent"].skipped


def test_the_log_tail_is_what_the_server_printed():
    log = ("Attaching to iolab-x-select_server_1\n"
           + "".join(f"server_1  | line {i}\n" for i in range(12)) + "server_1  | \n")
    assert crashlog.tail(log) == [f"line {i}" for i in range(2, 12)]


def test_a_lesson_the_crash_kept_from_running_is_not_passed(tmp_path):
    """An `expect: fail` check passes by failing; one that never ran showed nothing."""
    lab = write_lab(tmp_path / "labs", "crash", LAB.format(model="select").replace(
        "{check: line.basic, points: 1}",
        "{check: line.basic, points: 0, required: false, expect: fail}"))
    report = grade_in_process(lab, submission(tmp_path, SYNTAX_ERROR), "local", "linux",
                              tmp_path / "results", progress=quiet)
    lesson = report.results[0]
    assert not lesson.outcome.passed and lesson.outcome.got.startswith("not run: your server")
    assert "fails by design" not in lesson.outcome.explain()


SLOW_TO_DIE = """\
import os, socket, time
srv = socket.create_server(("127.0.0.1", int(os.environ["PORT"])))
conn, _ = srv.accept()
conn.recv(1)
conn.close()  # what the interpreter does on its way out of an uncaught MemoryError,
srv.close()   # before the process ends: on a busy machine that can take a while
time.sleep(1.0)
raise MemoryError
"""


def test_a_server_on_its_way_out_is_waited_for_and_its_end_explains_the_check(tmp_path):
    """The check saw the connection close while the server was still ending: the runner
    waits for the end (LocalTarget.settle), so the failure says what ended it."""
    lab = write_lab(tmp_path / "labs", "crash",  # line.basic alone
                    FD_LIMIT_LAB.replace("      - {check: robust.fd_limit, points: 1, "
                                         "connections: 1100}\n", ""))
    report = grade_in_process(lab, submission(tmp_path, SLOW_TO_DIE), "local", "linux",
                              tmp_path / "results", progress=quiet)
    (result,) = report.results
    assert result.outcome.status == "failed"
    assert "MemoryError" in report.crashes.get("one", ""), report.crashes
    assert "your server exited with code 1" in result.outcome.explain(), result.outcome.explain()
