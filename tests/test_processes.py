"""The checks of a process or thread per connection (grader/checks/processes.py)
against servers broken on purpose (tests/broken/blocking.py, one flaw each):
zombies left by a fork server that never waits, and the thread ceiling, where a
naive server dies and a careful one refuses. The ceiling needs the sandbox: in
local mode that is local_rlimits plus the emulated pids limit (IOLAB_TASKS,
servers/osprofile/sitecustomize.py), here with a small limit to stay quick.
"""

from __future__ import annotations

import json
import os
import re
import subprocess

import pytest
from conftest import BROKEN, SERVERS, grade, results_folder, write_lab

from grader.proc import start_server, stop_group
from grader.stage import run_network_stage
from grader.targets.local import local_rlimits

TASKS = 64  # the emulated pids limit for these tests: a thread server serves TASKS - 1
CLIENTS = 100


@pytest.fixture
def sandboxed():
    """sandboxed(path, tasks) -> (addr, pid): a server under local mode's sandbox."""
    procs: list[subprocess.Popen] = []

    def start(path, tasks: int | None = TASKS):
        env = {"PYTHONPATH": str(SERVERS / "osprofile")}
        if tasks:
            env["IOLAB_TASKS"] = str(tasks)
        proc, port = start_server(path, env=env, stdout=subprocess.PIPE,
                                  preexec_fn=local_rlimits({"nofile": 4096, "pids": 512},
                                                           512 << 20))
        procs.append(proc)
        return ("127.0.0.1", port), proc.pid

    yield start
    for proc in procs:
        stop_group(proc, grace=0)


def judge(server, checks: list[str], model: str, **params) -> list[dict]:
    addr, pid = server
    plan = [{"check": c, "params": params, "model": model, "server_pid": pid} for c in checks]
    return run_network_stage(addr, plan, 10.0)["outcomes"]


# --- robust.no_zombies ----------------------------------------------------------------

@pytest.mark.parametrize("path", [BROKEN / "fork_correct.py", SERVERS / "fork_server.py"])
def test_a_reaping_fork_server_leaves_no_zombies(sandboxed, path):
    [outcome] = judge(sandboxed(path), ["robust.no_zombies"], "fork", clients=20)
    assert outcome["status"] == "passed", outcome
    assert "20 child processes while 20 clients were connected" in outcome["figure"]


def test_a_fork_server_that_never_waits_leaves_zombies(sandboxed):
    [outcome] = judge(sandboxed(BROKEN / "fork_no_reap.py"), ["robust.no_zombies"], "fork",
                      clients=20, wait=1.0)
    assert outcome["status"] == "failed", outcome
    assert "zombies (state Z" in outcome["got"] and "never waited for" in outcome["got"]
    assert "waitpid" in outcome["hint"] and "SIG_IGN" in outcome["hint"]


def test_no_zombies_holds_the_fork_exercise_to_forking(sandboxed):
    [outcome] = judge(sandboxed(SERVERS / "thread_server.py"), ["robust.no_zombies"], "fork",
                      clients=10)
    assert outcome["status"] == "failed"
    assert "never forked" in outcome["got"]


# --- the thread ceiling ----------------------------------------------------------------

CEILING = ["robust.refuse_past_ceiling", "robust.thread_ceiling"]


@pytest.mark.parametrize("path", [BROKEN / "thread_correct.py", SERVERS / "thread_server.py"])
def test_a_server_that_refuses_past_the_ceiling_survives_it(sandboxed, path):
    refuse, lesson = judge(sandboxed(path), CEILING, "thread", clients=CLIENTS)
    assert refuse["status"] == "passed", refuse
    # the emulated limit counts the main thread: TASKS - 1 clients get a thread
    assert refuse["figure"].startswith(f"{TASKS - 1} served, {CLIENTS - TASKS + 1} refused")
    assert lesson["status"] == "failed"  # the lesson: not every client can be served
    assert f"{TASKS - 1} served" in lesson["got"]


def test_a_naive_thread_server_dies_at_the_ceiling(sandboxed):
    refuse, lesson = judge(sandboxed(BROKEN / "thread_dies_at_ceiling.py"), CEILING, "thread",
                           clients=CLIENTS)
    assert refuse["status"] == "failed", refuse
    assert "the server died" in refuse["got"] and "RuntimeError" in refuse["hint"]
    assert lesson["status"] == "failed" and "not run" in lesson["got"]  # nothing left to show it


def test_a_refused_client_left_open_is_caught(sandboxed):
    """`except RuntimeError: pass`: CPython closes the socket when `conn` is rebound at
    the next accept(), so only the last refused client is left hanging, every time."""
    [refuse] = judge(sandboxed(BROKEN / "thread_hangs_at_ceiling.py"),
                     ["robust.refuse_past_ceiling"], "thread", clients=CLIENTS, timeout=2.0)
    assert refuse["status"] == "failed", refuse
    assert f"1 neither answered nor closed (from client {CLIENTS})" in refuse["got"]


def test_without_a_ceiling_the_ceiling_checks_are_unavailable(sandboxed):
    outcomes = judge(sandboxed(SERVERS / "thread_server.py", tasks=None), CEILING, "thread",
                     clients=50)
    assert [o["status"] for o in outcomes] == ["unavailable", "unavailable"]
    assert "all were served" in outcomes[0]["got"]


# --- both modes, through the grader ---------------------------------------------------------

LAB = {"lab": "lab-x", "title": "processes and the thread ceiling", "exercises": [
    {"id": "thread-ceiling", "title": "t", "model": "thread", "path": "thread",
     "limits": {"memory": "1536m"}, "checks": [
         {"check": "robust.refuse_past_ceiling", "points": 1, "clients": 600},
         {"check": "robust.thread_ceiling", "points": 0, "required": False, "expect": "fail",
          "clients": 600}]},
    {"id": "fork", "title": "t", "model": "fork", "path": "fork", "checks": [
        {"check": "robust.no_zombies", "points": 2, "wait": 2.0}]}]}


def submission(tmp_path, thread: str, fork: str):
    root = tmp_path / f"{thread}+{fork}"
    for folder, name in (("thread", thread), ("fork", fork)):
        (root / folder).mkdir(parents=True)
        (root / folder / "server.py").write_bytes((BROKEN / f"{name}.py").read_bytes())
        (root / folder / "blocking.py").write_bytes((BROKEN / "blocking.py").read_bytes())
    return root


def verdicts(proc) -> dict[str, str]:
    tests = json.loads((results_folder(proc) / "results.json").read_text())["tests"]
    return {t["name"]: t["status"] for t in tests}


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["local", pytest.param("docker", marks=pytest.mark.docker)])
def test_the_sandbox_sets_the_ceiling_in_both_modes(mode, tmp_path, request):
    if mode == "docker":
        request.getfixturevalue("docker_engine")
    write_lab(tmp_path / "labs", "lab-x", LAB)
    env = {"IOLAB_LABS": str(tmp_path / "labs")}
    good = grade("lab-x", "--mode", mode, "--submission",
                 str(submission(tmp_path, "thread_correct", "fork_correct")),
                 env=dict(os.environ, **env))
    assert good.returncode == 0, good.stdout[-3000:]
    served, refused = map(int, re.search(r"(\d+) served, (\d+) refused", good.stdout).groups())
    assert served + refused == 600
    # pids limit 512, the main thread included: the same ceiling in both modes (the
    # stack runs nothing else inside the server's container: no health check)
    assert served == 511, good.stdout[-3000:]
    bad = grade("lab-x", "--mode", mode, "--submission",
                str(submission(tmp_path, "thread_dies_at_ceiling", "fork_no_reap")),
                env=dict(os.environ, **env))
    assert bad.returncode == 1, bad.stdout[-3000:]
    statuses = verdicts(bad)
    assert statuses["thread-ceiling: past the thread ceiling: refuse the extra clients, keep "
                    "serving the others"] == "failed"
    assert statuses["fork: no zombie processes after clients leave"] == "failed"
