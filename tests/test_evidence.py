"""grader/evidence.py: what /proc shows of a process, read from outside it."""

import os
import subprocess
import sys
import time

import pytest

from grader import evidence

SLEEPER = """
import select, socket, sys, threading
ep = select.epoll()
a, b = socket.socketpair()
lock = threading.Lock(); lock.acquire()
for _ in range(3):
    threading.Thread(target=lock.acquire, daemon=True).start()
print("ready", flush=True)
select.select([a], [], [])
"""

FORKER = """
import os, time
for _ in range(2):
    if os.fork() == 0:
        time.sleep(60); os._exit(0)
print("ready", flush=True)
time.sleep(60)
"""


@pytest.fixture
def spawn():
    procs = []

    def start(code: str, *args: str, argv0: str = sys.executable) -> subprocess.Popen:
        proc = subprocess.Popen([argv0, "-c", code, *args], stdout=subprocess.PIPE, text=True,
                                start_new_session=True)
        procs.append(proc)
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(0.2)  # let every thread reach its blocking call
        return proc

    yield start
    for proc in procs:
        os.killpg(proc.pid, 9)
        proc.wait()


def test_snapshot_sees_threads_fds_epoll_and_what_each_thread_sleeps_in(spawn):
    proc = spawn(SLEEPER)
    snap = evidence.snapshot(proc.pid)
    assert (snap.processes, snap.threads) == (1, 4)
    assert snap.eventpoll == 1 and snap.sockets == 2 and not snap.edge_triggered
    assert snap.blocked["futex"] == 3
    assert snap.blocked_in_any(evidence.MULTIPLEXERS["select"])


def test_without_syscall_rights_wchan_tells_the_same(spawn, monkeypatch):
    proc = spawn(SLEEPER)
    real = evidence._read
    monkeypatch.setattr(evidence, "_read",
                        lambda path: None if path.endswith("/syscall") else real(path))
    blocked = evidence.snapshot(proc.pid).blocked
    assert blocked["futex"] == 3
    assert blocked["select/poll"] == 1  # wchan: both sleep in poll_schedule_timeout


def test_tree_counts_forked_children(spawn):
    proc = spawn(FORKER)
    assert evidence.snapshot(proc.pid).processes == 3
    assert set(evidence.tree(proc.pid)) >= {proc.pid}


def test_cpu_rate_tells_spinning_from_sleeping(spawn):
    sleeping = spawn("import time; print('ready', flush=True); time.sleep(60)")
    spinning = spawn("print('ready', flush=True)\nwhile True: pass")
    assert evidence.cpu_rate(sleeping.pid, 0.5) < 0.05
    assert evidence.cpu_rate(spinning.pid, 0.5) > 0.1  # a whole core when the machine is idle


def test_find_server_skips_the_container_init(spawn, tmp_path):
    init = tmp_path / "docker-init"
    init.symlink_to(sys.executable)
    child = (f"import subprocess, time; subprocess.Popen([{sys.executable!r}, '-c', "
             "'import time; time.sleep(60)', '/submission/server.py']); time.sleep(0.5); "
             "print('ready', flush=True); time.sleep(60)")
    wrapper = spawn(child, "/submission/server.py", argv0=str(init))
    found = evidence.find_server(uid=os.getuid())
    assert found in evidence.tree(wrapper.pid) and found != wrapper.pid
    assert evidence.cmdline(found)[-1] == "/submission/server.py"


def test_a_gone_process_reads_as_nothing():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    assert not evidence.alive(proc.pid)
    assert evidence.fds(proc.pid) is None and evidence.tasks(proc.pid) == []
