"""`python -m grader measure`: the wait-call probe, the files it writes, and the
command itself on the reference servers and on a server that crashes at
select()'s limit. Figures are compared as ratios within one run only."""

import argparse
import csv
import os
import resource
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import LAB_X, SERVERS, grade, reference_submission, write_lab

from grader.errors import UsageError
from grader.labspec import load_lab
from grader.measure import Measurement, Point, Subject, per_user, read_probe, subjects
from grader.measure_report import CHARTS, COLUMNS, levels_arg, terminal, write

PROBE = SERVERS / "waitprobe"

needs_fds = pytest.mark.skipif(resource.getrlimit(resource.RLIMIT_NOFILE)[1] < 4096,
                               reason="needs a hard RLIMIT_NOFILE of 4096 or more")


def rows_of(csv_path: Path) -> dict[tuple[str, str, int], dict]:
    with csv_path.open() as fh:
        return {(r["server"], r["mode"], int(r["level"])): r for r in csv.DictReader(fh)}


def run_folder(results: Path) -> Path:
    (folder,) = (results / "lab-3").glob("measure-*")
    return folder


# --- the probe, in a real Python process of its own -------------------------------

PROBED = """
import select, socket
a, b = socket.socketpair()
c, d = socket.socketpair()
b.send(b"x")                                   # a is readable, c is not
select.select([a, c], [], [], 0)               # 2 watched, 1 ready
p = select.poll(); p.register(a, select.POLLIN); p.register(c, select.POLLIN)
p.poll(0)                                      # 2 watched, 1 ready
p.unregister(c); p.poll(0)                     # 1 watched, 1 ready
e = select.epoll(); e.register(a.fileno(), select.EPOLLIN); e.register(c, select.EPOLLIN)
e.poll(0)                                      # 2 watched, 1 ready
with select.epoll() as f:
    f.register(c, select.EPOLLIN); f.poll(0)   # 1 watched, 0 ready
c.close()
try:
    select.select([c], [], [], 0)              # a closed socket: the error passes through
except ValueError:
    print("raised")
"""


def test_probe_records_every_wait_call(tmp_path):
    out = tmp_path / "waits"
    env = dict(os.environ, PYTHONPATH=str(PROBE), IOLAB_WAITPROBE=str(out))
    proc = subprocess.run([sys.executable, "-c", PROBED], env=env, capture_output=True,
                          text=True, timeout=60, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["raised"]
    calls, overhead = read_probe(out)
    assert [(kind, watched, ready) for _, _, watched, ready, kind, _ in calls] == [
        ("select", 2, 1), ("poll", 2, 1), ("poll", 1, 1), ("epoll", 2, 1), ("epoll", 1, 0)]
    assert all(cpu >= 0 for _, cpu, *_ in calls) and overhead >= 0


def test_probe_changes_nothing_without_its_variable(tmp_path):
    code = "import select; print(select.select.__module__, type(select.epoll()).__name__)"
    env = dict(os.environ, PYTHONPATH=str(PROBE))
    env.pop("IOLAB_WAITPROBE", None)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=60).stdout.split()
    assert out == ["select", "epoll"]


# --- what the command is given ----------------------------------------------------

def test_levels_and_users():
    assert levels_arg("0,100,500") == [0, 100, 500]
    for bad in ("", "0,a", "500,100", "-1,0", "0,0"):
        with pytest.raises(argparse.ArgumentTypeError):
            levels_arg(bad)
    assert [per_user(n) for n in (0, 100, 1000, 1100, 2000, 5000)] == [1, 100, 1000, 550,
                                                                       1000, 1000]


def test_subjects_are_the_labs_select_poll_epoll_exercises(tmp_path):
    lab = load_lab("lab-3")
    sub = reference_submission(tmp_path, lab)
    found = subjects(lab, sub)
    assert [(s.name, s.path.relative_to(sub).as_posix(), s.missing) for s in found] == [
        ("select", "server.py", ""), ("poll", "poll/server.py", ""),
        ("epoll", "epoll/server.py", "")]
    (sub / "epoll" / "server.py").unlink()
    assert "not submitted" in subjects(lab, sub)[2].missing
    lone = subjects(lab, SERVERS / "epoll_server.py")
    assert [(s.name, s.path) for s in lone] == [("epoll", SERVERS / "epoll_server.py")]


def test_bad_input_is_one_line_and_exit_2(tmp_path):
    proc = grade("measure", "lab-3", "--submission", str(tmp_path / "nothing"))
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert "does not exist" in proc.stderr
    proc = grade("measure", "lab-3", "--levels", "100,0")
    assert proc.returncode == 2 and "increasing" in proc.stderr


def test_a_lab_without_select_poll_epoll_is_refused(tmp_path):
    lab = write_lab(tmp_path / "labs", "lab-x", LAB_X.replace("model: select",
                                                              "model: iterative"))
    with pytest.raises(UsageError, match="no select, poll or epoll exercise"):
        subjects(lab, lab.starter)


# --- the files, from points given by hand (the writer, not the measurement) ---------

def test_files_say_where_a_server_stopped_and_escape_it(tmp_path):
    run = Measurement("lab-3", tmp_path, tmp_path, [Subject(n, n, tmp_path / f"{n}.py")
                                                  for n in ("select", "poll", "epoll")],
                      [0, 1000, 2000], ["idle"], 1.0, machine={
                          "nproc": 2, "cpu": "x", "kernel": "k", "python": "3",
                          "load_before": 0.0, "load_after": 0.0, "pinned": [1]})
    for level in (0, 1000, 2000):
        for name, cost in (("select", 1 + level / 10), ("poll", 1 + level / 9), ("epoll", 2)):
            p = Point(name, "idle", level, wait_us=cost, p50_us=100, p99_us=900)
            if name == "select" and level == 2000:
                p.status, p.cause = "crashed", "ValueError: <script>fd</script>"
                p.note = "the server exited: " + p.cause
            run.points.append(p)
    files = write(run)
    svg = (tmp_path / "wait_idle.svg").read_text()
    assert svg.count("<polyline") == 3
    assert "select stops at 2000: crashed (ValueError: &lt;script&gt;" in svg
    page = (tmp_path / "measure.html").read_text()
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert 'href="measure.csv"' in page and page.count("<svg") == 3
    assert {f.name for f in files} >= {"measure.csv", "measure.html", "wait_idle.svg"}
    rows = rows_of(tmp_path / "measure.csv")
    assert list(next(iter(rows.values()))) == COLUMNS
    assert rows[("select", "idle", 2000)]["status"] == "crashed"
    text = "\n".join(terminal(run))
    assert "At 1000 idle connections: select 101.0 µs/call" in text
    assert "select/epoll 50.5×" in text and "note (idle): select at 2000: crashed" in text


# --- the command, for real ------------------------------------------------------

@pytest.fixture(scope="module")
def reference_run(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("measure")
    sub = reference_submission(tmp, "lab-3")
    proc = grade("measure", "lab-3", "--submission", str(sub), "--levels", "0,1000",
                 "--duration", "0.7", "--results", str(tmp / "results"), timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return run_folder(tmp / "results")


@pytest.mark.slow
@needs_fds
def test_measure_on_the_references_draws_three_series(reference_run):
    rows = rows_of(reference_run / "measure.csv")
    for name in ("select", "poll", "epoll"):
        for level in (0, 1000):
            assert rows[(name, "idle", level)]["status"] == "ok", rows[(name, "idle", level)]
        assert float(rows[(name, "idle", 1000)]["watched"]) >= 1000
        assert int(rows[(name, "idle", 1000)]["held"]) == 1000
    for name in CHARTS:
        assert (reference_run / name).is_file()
    assert (reference_run / "wait_idle.svg").read_text().count("<polyline") == 3
    assert (reference_run / "wait_active.svg").read_text().count("<polyline") == 3
    assert (reference_run / "measure.html").read_text().count("<svg") == len(CHARTS)


@pytest.mark.slow
@needs_fds
def test_select_and_poll_grow_with_idle_fds_and_epoll_does_not(reference_run):
    """The notes' claim, as ratios within one run (no absolute timing)."""
    rows = rows_of(reference_run / "measure.csv")
    wait = {(n, lv): float(rows[(n, "idle", lv)]["wait_us"])
            for n in ("select", "poll", "epoll") for lv in (0, 1000)}
    growth = {n: wait[(n, 1000)] - wait[(n, 0)] for n in ("select", "poll", "epoll")}
    for name in ("select", "poll"):
        assert wait[(name, 1000)] >= 3 * wait[(name, 0)], wait
        assert wait[(name, 1000)] >= 3 * wait[("epoll", 1000)], wait  # the gap at 1000
        assert growth[name] >= 5 * abs(growth["epoll"]), growth       # epoll stays flat


@pytest.mark.slow
@needs_fds
def test_all_active_calls_return_many_ready(reference_run):
    rows = rows_of(reference_run / "measure.csv")
    for name in ("select", "poll", "epoll"):
        row = rows[(name, "active", 1000)]
        assert row["status"] == "ok" and int(row["chorus_replies"]) >= 1000, row
        assert float(row["ready"]) > 2, row  # many connections ready in one call
    assert ("select", "active", 0) not in rows  # no connection to make active


CRASHES_AT_FD_1024 = '''
import os, select, socket
listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind((os.environ["HOST"], int(os.environ["PORT"])))
listener.listen(1024)
conns = []
while True:   # no refusal: the socket with fd 1024 makes select() raise ValueError
    readable, _, _ = select.select([listener, *conns], [], [])
    for sock in readable:
        if sock is listener:
            conns.append(listener.accept()[0])
            continue
        data = sock.recv(65536)
        if not data:
            conns.remove(sock)
            sock.close()
        for line in data.splitlines():
            sock.sendall(b"%d %s\\n" % (len(line), line))
'''


@pytest.mark.slow
@needs_fds
def test_a_select_server_that_crashes_at_its_limit_is_a_note(tmp_path):
    sub = tmp_path / "submission"
    sub.mkdir()
    (sub / "server.py").write_text(textwrap.dedent(CRASHES_AT_FD_1024))
    proc = grade("measure", "lab-3", "--submission", str(sub), "--levels", "0,1100,2000",
                 "--duration", "0.5", "--only", "idle", "--results", str(tmp_path / "r"),
                 timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    folder = run_folder(tmp_path / "r")
    rows = rows_of(folder / "measure.csv")
    assert rows[("select", "idle", 0)]["status"] == "ok"
    crash = rows[("select", "idle", 1100)]
    assert crash["status"] == "crashed", crash
    assert "ValueError" in crash["cause"], crash
    assert rows[("select", "idle", 2000)]["status"] == "not run"   # not run past the crash
    assert "not submitted" in rows[("poll", "idle", 0)]["note"]
    svg = (folder / "wait_idle.svg").read_text()
    assert "select stops at 1100: crashed (ValueError" in svg
    assert "select at 1100: crashed" in proc.stdout
    assert not (sub / "server.py.waits").exists() and sorted(p.name for p in sub.iterdir()) == [
        "server.py"]   # nothing written into the submission
