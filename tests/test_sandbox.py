"""Untrusted submissions: every hostile server in tests/hostile/ is graded in
docker mode, in one run of the real CLI, with a small lab (IOLAB_LABS) whose
exercises point at them. Each gets 0 on the checks it breaks, with a reason a
student understands; nothing it does leaves its container; the grader
survives and then grades a correct server (servers/select_server.py) right.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml
from conftest import LAB_X, REPO, grader_crashed, leftovers_of, write_lab

from grader.errors import UsageError
from grader.labspec import DEFAULT_LIMITS, load_lab, memory_bytes
from grader.targets import LocalTarget

HOSTILE = Path(__file__).resolve().parent / "hostile"
LOAD = {"users": 5, "spawn_rate": 5, "duration": 2, "line_size": 64,
        "thresholds": {"max_failure_ratio": 0.0, "min_rps": 1}}
BASIC = [{"check": "line.basic", "points": 1}]
CONCURRENT = {"check": "robust.concurrent", "points": 1, "clients": 5, "rounds": 2}
LOADED = [{"check": "load.failures", "points": 1}, {"check": "load.throughput", "points": 1}]


def exercise(name: str, checks: list, limits: dict | None = None, load: bool | dict = False
             ) -> dict:
    ex = {"id": name, "title": f"hostile: {name}", "model": "thread",
          "path": name, "checks": checks}
    if limits:
        ex["limits"] = limits
    if load:
        ex["load"] = load if isinstance(load, dict) else LOAD
    return ex


LAB = {"lab": "lab-sandbox", "title": "hostile submissions", "exercises": [
    exercise("forkbomb", BASIC, {"pids": 64, "timeout": 90}),
    exercise("memhog", BASIC + [CONCURRENT], {"memory": "64m"}),
    exercise("never_listens", BASIC),
    exercise("spinner", BASIC + [CONCURRENT] + LOADED, {"cpus": 0.5}, load=True),
    exercise("flood", BASIC + LOADED, load=True),
    exercise("forger", BASIC),
    exercise("staller", [CONCURRENT], {"timeout": 6}),
    # a longer load: a name lookup of locust-master takes the resolver 10 s to give up
    exercise("prober", BASIC + [CONCURRENT] + LOADED, load=dict(LOAD, duration=8)),
    exercise("correct", BASIC + [{"check": "line.split", "points": 2}, CONCURRENT] + LOADED,
             load=True),
]}


@pytest.fixture
def sandbox_run(tmp_path):
    """(lab dir, submission dir, results dir, host port) for one run."""
    labs = tmp_path / "labs"
    write_lab(labs, "lab-sandbox", LAB)
    submission = tmp_path / "submission"
    shutil.copytree(HOSTILE, submission)
    (submission / "correct").mkdir()
    shutil.copy(REPO / "servers" / "select_server.py", submission / "correct" / "server.py")
    shutil.copy(REPO / "servers" / "lineproto.py", submission / "correct")
    listener = socket.socket()  # on the host: the prober must not reach it
    listener.bind(("0.0.0.0", 0))
    listener.listen()
    reached: list[str] = []

    def watch() -> None:
        listener.settimeout(1)
        while listener.fileno() != -1:
            try:
                conn, addr = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            reached.append(str(addr))
            conn.close()

    threading.Thread(target=watch, daemon=True).start()
    port = listener.getsockname()[1]
    (submission / "prober" / "probe_port").write_text(str(port))
    results = tmp_path / "results"
    yield labs, submission, results, reached
    listener.close()


def test_the_sandbox_lab_is_valid(sandbox_run):
    labs = sandbox_run[0]
    lab = load_lab("lab-sandbox", labs)
    assert lab.exercises[1].limits["memory"] == "64m"
    assert lab.exercises[0].limits["pids"] == 64 and lab.exercises[0].limits["cpus"] == 1.0


def test_nothing_of_the_grader_is_mounted_into_the_server():
    """The server sees its submission (read-only) and the OS profile, nothing else:
    no checks, no hidden tests, no results folder, no Docker socket, no capability."""
    services = yaml.safe_load((REPO / "compose.yaml").read_text())["services"]
    server = services["server"]
    mounts = [v.rsplit(":", 2) for v in server["volumes"]]
    assert [(m[1], m[2]) for m in mounts] == [
        ("/submission", "ro"), ("/opt/iolab/servers/platforms.py", "ro"),
        ("/opt/iolab/servers/osprofile", "ro")]
    assert not any("grader" in m[0] or "results" in m[0] or "docker.sock" in m[0]
                   for m in mounts)
    assert server["read_only"] is True and server["cap_drop"] == ["ALL"]
    assert server["user"] == "10001:10001" and server["networks"] == ["lab"]
    assert "no-new-privileges:true" in server["security_opt"]
    assert "privileged" not in server and "network_mode" not in server
    # The PID namespace the server shares (with the grader's stage, for evidence) is
    # held by an unprivileged, offline placeholder, never by the host's.
    if "pid" in server:
        holder = services[server["pid"].removeprefix("service:")]
        assert server["pid"].startswith("service:") and holder.get("user", "0").split(":")[0] != "0"
        assert holder["cap_drop"] == ["ALL"] and holder["network_mode"] == "none"


@pytest.mark.docker
def test_hostile_submissions_get_zero_with_a_reason(docker_engine, sandbox_run):
    labs, submission, results, reached = sandbox_run
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "grader", "lab-sandbox", "--submission",
                           str(submission), "--results", str(results)],
                          cwd=REPO, env=dict(os.environ, IOLAB_LABS=str(labs)),
                          capture_output=True, text=True, timeout=900)
    seconds = time.monotonic() - started
    out = proc.stdout + proc.stderr
    print(out[-12000:])
    print(f"graded {len(LAB['exercises'])} exercises in {seconds:.0f} s")
    assert proc.returncode == 1, out[-4000:]
    assert not grader_crashed(out), out[-4000:]
    run_dir = next((results / "lab-sandbox").iterdir())
    data = json.loads((run_dir / "results.json").read_text())
    tests = {t["name"].split(": ", 1)[0] + ":" + t["name"].split(": ", 1)[1]: t
             for t in data["tests"]}

    def verdicts(ex: str) -> dict[str, dict]:
        return {k.split(":", 1)[1]: t for k, t in tests.items() if k.startswith(ex + ":")}

    def zero_because(ex: str, title: str, *words: str) -> None:
        test = verdicts(ex)[title]
        assert test["score"] == 0 and test["status"] == "failed", test
        for word in words:
            assert word in test["output"], (word, test["output"])
        assert test["output"].strip() not in ("Killed", "")

    # the fork bomb: never listens, hit its pids limit (64), said so
    zero_because("forkbomb", "a line gets its length and itself back",
                 "never accepted a connection", "limit of 64 processes and threads")
    # the memory hog: killed by the OOM killer at its limit, said so in a student's words
    for title in ("a line gets its length and itself back", "many clients at once"):
        zero_because("memhog", title, "your server was killed: out of memory, limit 64 MiB")
    zero_because("never_listens", "a line gets its length and itself back",
                 "never accepted a connection")
    # the staller: stopped at its exercise's wall-clock limit
    zero_because("staller", "many clients at once",
                 "your server was stopped: grading it took longer than the time limit of 6 s")
    # the spinner serves: the cpus limit leaves the grader its share
    assert verdicts("spinner")["a line gets its length and itself back"]["score"] == 1
    assert verdicts("spinner")["many clients at once"]["score"] == 1
    assert "cpus: 0.5" in (run_dir / "spinner" / "limits.compose.yaml").read_text()
    assert "pids_limit: 64" in (run_dir / "forkbomb" / "limits.compose.yaml").read_text()
    # the flood serves, and its log is capped: 64 KiB kept, 1 MiB in the engine
    assert verdicts("flood")["a line gets its length and itself back"]["score"] == 1
    flood_log = (run_dir / "flood" / "server.log").read_text()
    assert "flood flood" in flood_log and len(flood_log.encode()) <= 64 * 1024 + 4096
    compose = yaml.safe_load((REPO / "compose.yaml").read_text())
    assert compose["services"]["server"]["logging"]["options"]["max-size"] == "1m"
    # the forger: wrong replies score 0; no forged file anywhere in the results
    zero_because("forger", "a line gets its length and itself back", "expected")
    forger_log = (run_dir / "forger" / "server.log").read_text()
    assert "FORGE WROTE /results" not in forger_log and "forge failed" in forger_log
    assert "FORGE WROTE /submission" not in forger_log
    for path in list(results.rglob("*")) + list(submission.rglob("*")):
        if path.is_file() and path.name != "server.py":
            assert "FORGED-RESULTS-FILE" not in path.read_text(errors="replace"), path
    assert data["score"] < 1000
    # the prober: every attempt blocked, nothing reached; its load stats are sane
    prober_log = (run_dir / "prober" / "server.log").read_text()
    attempts = re.findall(r"(REACHED|blocked) ([^:]+:?[^:]*)", prober_log)
    assert attempts and all(kind == "blocked" for kind, _ in attempts), prober_log[-3000:]
    for what in ("internet tcp 1.1.1.1:53", "locust-master:5557", "docker socket", "host "):
        assert f"blocked {what}" in prober_log, what
    assert reached == [], f"the prober reached a port on the host: {reached}"
    # the grader's stage shares the server's PID namespace: seen, but out of reach
    assert "of another user" in prober_log and "grader" in prober_log, prober_log[-3000:]
    for what in ("kill", "ptrace", "environ", "root /results", "fd"):
        assert re.search(rf"blocked pid \d+ {re.escape(what)}", prober_log), what
    networks = {name: svc.get("networks") for name, svc in compose["services"].items()}
    assert networks["server"] == ["lab"] and "lab" not in networks["locust-master"]
    assert all(compose["networks"][n]["internal"] for n in compose["networks"])
    stats = (run_dir / "prober" / "locust" / "stats_stats.csv").read_text()
    assert "Aggregated" in stats and "FORGED" not in stats
    assert all(t["score"] == t["max_score"] for t in verdicts("prober").values()), verdicts("prober")
    # and after all that, a correct server is graded correctly, in the same run
    correct = verdicts("correct")
    assert correct and all(t["score"] == t["max_score"] for t in correct.values()), correct
    assert leftovers_of(run_dir.name) == []


def test_local_mode_limits_timeout_and_log_cap(tmp_path):
    """Local mode applies what setrlimit can and the wall-clock bound; no Docker.
    (No fork bomb here: RLIMIT_NPROC does not bind root, and this is the host.)"""
    lab = {"lab": "lab-local", "title": "limits in local mode", "exercises": [
        # The hog is still filling its 256 MiB when a busy machine's 5 s wait runs
        # out: it waits until the hog dies (its socket closes), which is the point.
        exercise("memhog", [BASIC[0] | {"timeout": 60}], {"memory": "64m"}),
        exercise("staller", [CONCURRENT | {"clients": 3}], {"timeout": 3}),
        exercise("flood", BASIC),
    ]}
    labs = tmp_path / "labs"
    write_lab(labs, "lab-local", lab)
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "grader", "lab-local", "--mode", "local",
                           "--submission", str(HOSTILE), "--results", str(tmp_path / "results")],
                          cwd=REPO, env=dict(os.environ, IOLAB_LABS=str(labs)),
                          capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    print(out)
    assert proc.returncode == 1 and not grader_crashed(out), out[-3000:]
    assert time.monotonic() - started < 120
    run_dir = next((tmp_path / "results" / "lab-local").iterdir())
    tests = {t["name"].split(":")[0]: t for t in
             json.loads((run_dir / "results.json").read_text())["tests"]}
    assert tests["memhog"]["score"] == 0
    assert "ran out of memory (MemoryError), limit 64 MiB" in tests["memhog"]["output"]
    assert tests["staller"]["score"] == 0
    assert "time limit of 3 s" in tests["staller"]["output"]
    assert tests["flood"]["score"] == 1
    log = (run_dir / "flood" / "server.log").read_bytes()
    assert b"flood flood" in log and len(log) <= 64 * 1024


LIMITED = LAB_X.replace("    checks:", "    limits: {LIMITS}\n    checks:")


@pytest.mark.parametrize("limits, words", [
    ("{memory: lots}", "line 7: limits.memory must be a size like 256m"),
    ("{memory: 1m}", "line 7: limits.memory must be at least 16m"),
    ("{pids: 0}", "line 7: limits.pids must be a positive number"),
    ("{cpus: fast}", "line 7: limits.cpus must be a number"),
    ("{timeout: true}", "line 7: limits.timeout must be a number"),
    ("{colour: red}", "line 7: unknown key 'colour' in limits"),
    ("[256m]", "line 7: limits must be a mapping"),
])
def test_broken_limits_point_at_the_line(tmp_path, limits, words):
    with pytest.raises(UsageError) as err:
        write_lab(tmp_path, "lab-x", LIMITED.replace("{LIMITS}", limits))
    assert words in str(err.value)


def test_limits_have_defaults_and_units(tmp_path):
    limits = write_lab(tmp_path, "lab-x", LIMITED.replace("{LIMITS}", "{memory: 1g}")
                       ).exercises[0].limits
    assert limits == {**DEFAULT_LIMITS, "memory": "1g"}
    assert memory_bytes("256m") == 256 << 20 and memory_bytes(4096) == 4096


def test_time_spent_waiting_for_the_load_lock_is_given_back(tmp_path):
    """Another submission's load phase holding the machine's lock is not the server's
    doing: the watchdog (limits.timeout) is pushed back by the time waited."""
    target = LocalTarget(run_dir=tmp_path, label="x", folder=tmp_path, entry="server.py",
                         os_name="linux", limits={"timeout": 300})
    target.start_watchdog()
    try:
        target.extend_watchdog(100)
        assert target._watchdog.interval > 399 and not target.timed_out
    finally:
        target.stop_watchdog()
