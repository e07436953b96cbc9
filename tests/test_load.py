"""The Locust side: LineUser times every reply, LurkerUser holds idle connections,
the grader runs LineUser only, and WORKERS reaches the load phase.

Locust monkey-patches the standard library with gevent on import, so every
Locust run here is a process of its own (bench.loadgen, grader.load.local, or a fork
of the warm process, grader/load/warm.py).
"""

import json
import os
import resource
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml
from conftest import REPO, SERVERS, grade, leftovers_of, results_folder

from grader.errors import UsageError
from grader.load import gate, warm
from grader.load.stats import read_stats
from grader.proc import stop_group
from grader.targets import LocalTarget


def loadgen(host: str, timeout: float = 60, **cfg) -> dict:
    env = dict(os.environ, IOLAB_LINE_SIZE=str(cfg.pop("line_size", 1024)),
               IOLAB_PIPELINE=str(cfg.pop("pipeline", 1)), IOLAB_REPLY_TIMEOUT="2",
               IOLAB_LURK_CONNECTIONS=str(cfg.pop("per_lurker", 100)), IOLAB_LURK_CHECK="3600")
    cfg = {"host": host, "duration": 0.5, "warmup": 0.2, **cfg}
    proc = subprocess.run([sys.executable, "-m", "bench.loadgen", json.dumps(cfg)], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_parse_host():
    # in a process of its own: importing the locustfile imports Locust, which patches
    code = ("from grader.load.locustfile import parse_host as p; "
            "print(p('tcp://server:9000'), p('127.0.0.1:9001/'), p(':9002'))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                         text=True, timeout=60).stdout
    assert out.split() == "('server', 9000) ('127.0.0.1', 9001) ('127.0.0.1', 9002)".split()


@pytest.mark.parametrize("pipeline", [1, 4])
def test_line_user_gets_every_reply_right(start_server, pipeline):
    host, port = start_server(SERVERS / "epoll_server.py")
    result = loadgen(f"tcp://{host}:{port}", clients=3, pipeline=pipeline)
    assert result["replies"] > 100 and result["errors"] == 0, result
    assert 0 < result["p50_us"] <= result["p99_us"]


def test_line_user_fails_a_server_without_framing(start_server):
    host, port = start_server(REPO / "tests" / "broken" / "no_framing.py")
    result = loadgen(f"tcp://{host}:{port}", clients=2, line_size=200_000)
    assert result["errors"] > 0 and result["replies"] == 0, result


def _second_reply_late_server(delay: float) -> tuple[socket.socket, int]:
    """Answers the 1st line of every pair at once and the 2nd after `delay` s."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve(conn):
        buf, n = b"", 0
        with conn:
            while data := conn.recv(65536):
                buf += data
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    n += 1
                    if n % 2 == 0:
                        time.sleep(delay)
                    conn.sendall(b"%d %s\n" % (len(line), line))

    def accept():
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    return listener, listener.getsockname()[1]


def test_pipelined_replies_are_timed_one_by_one():
    """With 2 lines in flight, a fast and a slow reply: each keeps its own round trip
    (a batch average would put both near delay/2)."""
    listener, port = _second_reply_late_server(0.1)
    try:
        result = loadgen(f"tcp://127.0.0.1:{port}", clients=1, pipeline=2, duration=1.0)
    finally:
        listener.close()
    assert result["errors"] == 0 and result["replies"] >= 4, result
    assert result["p50_us"] < 30_000, result     # the fast half
    assert result["p99_us"] >= 90_000, result    # the slow half: its own ~100 ms


def test_lurkers_hold_idle_connections(start_server):
    host, port = start_server(SERVERS / "epoll_server.py")
    result = loadgen(f"tcp://{host}:{port}", clients=1, idle=300, per_lurker=100)
    assert result["idle_connected"] == 300 and result["idle_held"] == 300, result
    assert result["idle_failed"] == 0 and result["errors"] == 0 and result["replies"] > 0


@pytest.mark.skipif(resource.getrlimit(resource.RLIMIT_NOFILE)[0] < 4096,
                    reason="needs RLIMIT_NOFILE ≥ 4096 (ulimit -n)")
def test_lurkers_see_select_refuse_past_fd_setsize(start_server):
    host, port = start_server(SERVERS / "select_server.py")
    # warmup: a loaded machine takes a while to accept 1100 and close those past fd 1023
    result = loadgen(f"tcp://{host}:{port}", clients=0, idle=1100, per_lurker=1100, warmup=3)
    assert result["idle_connected"] == 1100, result
    assert 1000 <= result["idle_held"] < 1024, result   # fds 0-2 and the listener come first


def test_grader_local_load_runs_line_user_only(start_server, tmp_path):
    host, port = start_server(SERVERS / "epoll_server.py")
    env = dict(os.environ, LOCUST_HOST=f"tcp://{host}:{port}", IOLAB_USERS="2",
               IOLAB_DURATION="1")
    subprocess.run([sys.executable, "-m", "grader.load.local", str(tmp_path / "stats")],
                   cwd=REPO, env=env, timeout=60, check=True, capture_output=True)
    stats = read_stats(tmp_path / "stats")
    assert stats.requests > 0 and stats.failures == 0
    entries = (tmp_path / "stats.json").read_text()  # every request, written at the end
    assert '"LINE"' in entries and "CONNECT" not in entries


@pytest.mark.skipif(not warm.available(), reason="no os.pidfd_open: phases are processes")
def test_warm_phases_are_forks_each_with_its_own_environment(start_server, tmp_path):
    """Two phases from one warm process (Locust imported once): each reads its own
    environment, the locustfile's settings too (imported after the fork): the second
    expects echoed lines (IOLAB_PROTOCOL=echo), so a LINE/1 server fails all of it."""
    host, port = start_server(SERVERS / "epoll_server.py")
    stats = []
    for n, protocol in enumerate(["line", "echo"]):
        out = tmp_path / f"phase-{n}"
        out.mkdir()
        env = dict(os.environ, LOCUST_HOST=f"tcp://{host}:{port}", IOLAB_USERS=str(2 + n),
                   IOLAB_DURATION="1", IOLAB_PROTOCOL=protocol,
                   IOLAB_LOAD_GATE=str(out / gate.GATE_FILE))
        phase = warm.start_phase(env, str(out / "stats"))
        assert isinstance(phase, warm.ForkedPhase) and phase.poll() is None
        if n == 0:
            first_warm = warm._WARM.proc.pid
        gate.open_gate(out / gate.GATE_FILE)
        phase.wait(60)
        stats.append(read_stats(out / "stats"))
    assert warm._WARM.proc.pid == first_warm  # one warm process for both
    assert stats[0].requests > 0 and stats[0].failures == 0 and stats[0].users == 2
    assert stats[1].requests > 0 and stats[1].failures == stats[1].requests, stats[1]
    assert stats[1].users == 3


def _gone(pid: int) -> bool:
    """Dead: reaped, or a zombie until the warm process's next fork reaps it."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


@pytest.mark.skipif(not warm.available(), reason="no os.pidfd_open: phases are processes")
def test_a_warm_phase_waiting_at_its_gate_is_stopped_with_its_group_or_its_warm_process(
        tmp_path):
    """stop_group ends a fork as it ended a Popen'ed phase; a fork whose warm process
    ends (its grader gone, even by SIGKILL, or given up on it) ends with it."""
    env = dict(os.environ, LOCUST_HOST="tcp://127.0.0.1:9", IOLAB_LOAD_GATE=str(tmp_path / "go"))
    phase = warm.start_phase(env, str(tmp_path / "stats"))
    assert os.getpgid(phase.pid) == phase.pid  # a group of its own, as a Popen'ed phase
    deadline = time.monotonic() + 30  # it moves into its folder: leftovers are found by it
    while os.readlink(f"/proc/{phase.pid}/cwd") != str(tmp_path) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert os.readlink(f"/proc/{phase.pid}/cwd") == str(tmp_path)
    stop_group(phase, grace=0)
    assert phase.poll() is not None and _gone(phase.pid)

    orphan = warm.start_phase(env, str(tmp_path / "stats"))
    stop_group(warm._WARM.proc, grace=0)  # the next phase starts another warm process
    orphan.wait(30)
    assert _gone(orphan.pid)


@pytest.mark.slow
@pytest.mark.skipif(not warm.available(), reason="no os.pidfd_open: phases are processes")
def test_a_fork_of_a_warm_process_older_than_a_phase_runs_the_whole_phase(start_server,
                                                                          tmp_path):
    """gevent's loop in a fork keeps the clock of the warm process's last run: the phase's
    30 s safety stop then fired at once, a phase of no length that a server serving one
    client at a time passed (tests/broken/iterative_blocks: users never served)."""
    host, port = start_server(REPO / "tests" / "broken" / "iterative_blocks.py")
    own = warm._Warm()  # its own warm process, started now
    env = dict(os.environ, LOCUST_HOST=f"tcp://{host}:{port}", IOLAB_USERS="20",
               IOLAB_DURATION="2")  # as tests/validity.py's load cases
    try:
        for n in range(2):
            out = tmp_path / f"phase-{n}"
            out.mkdir()
            if n:
                time.sleep(33)  # 2 s of phase + 30 s of margin + 1
            phase = own.fork(dict(env, IOLAB_LOAD_GATE=str(out / gate.GATE_FILE)),
                             str(out / "stats"))
            gate.open_gate(out / gate.GATE_FILE)
            phase.wait(60)
            stats = read_stats(out / "stats")
            assert stats.span and stats.span[1] - stats.span[0] >= 1.5, (n, stats.span)
            assert stats.unserved > 0, (n, stats)  # users waiting past STALL, counted
    finally:
        stop_group(own.proc, grace=0)


def test_compose_selects_line_user_for_master_and_workers():
    services = yaml.safe_load((REPO / "compose.yaml").read_text())["services"]
    for name in ("locust-master", "locust-worker"):
        assert services[name]["environment"]["LOCUST_USER_CLASSES"] == "LineUser"
    assert "IOLAB_WORKERS" in str(services["locust-master"]["environment"]
                                  ["LOCUST_EXPECT_WORKERS"])
    assert services["locust-master"]["environment"]["LOCUST_EXPECT_WORKERS_MAX_WAIT"]


def test_workers_override_beats_lab_yaml(monkeypatch, tmp_path):
    target = LocalTarget(run_dir=tmp_path, label="x", folder=tmp_path, entry="server.py",
                         os_name="linux")
    monkeypatch.delenv("IOLAB_WORKERS", raising=False)
    assert target.load_env({"workers": 2})["IOLAB_WORKERS"] == "2"
    assert target.load_env({})["IOLAB_WORKERS"] == "1"
    monkeypatch.setenv("IOLAB_WORKERS", "4")
    assert target.load_env({"workers": 2})["IOLAB_WORKERS"] == "4"
    monkeypatch.setenv("IOLAB_WORKERS", "zero")
    with pytest.raises(UsageError):
        target.load_env({})


def test_make_passes_workers_through():
    out = subprocess.run(["make", "-n", "lab-3", "WORKERS=3", "MODE=local"], cwd=REPO,
                         capture_output=True, text=True).stdout
    assert "IOLAB_WORKERS=3 " in out


def test_locustfile_is_plain_python_sockets():
    """No C-level blocking IO: only the socket module, which gevent patches."""
    text = Path(REPO / "grader" / "load" / "locustfile.py").read_text()
    for banned in ("import subprocess", "import requests", "import ctypes", "urllib"):
        assert banned not in text


@pytest.mark.docker
def test_docker_load_phase_with_two_workers(docker_engine):
    """WORKERS=2: compose scales locust-worker and the master waits for both
    (it gives up, and writes no statistics, if they do not all connect)."""
    proc = grade("lab-3", "--submission", "servers/select_server.py", "--exercise", "select",
                 env=dict(os.environ, IOLAB_WORKERS="2"))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "load:" in proc.stdout and "PASSED" in proc.stdout
    assert leftovers_of(results_folder(proc).name) == []
