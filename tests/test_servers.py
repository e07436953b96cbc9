"""Every reference server through the LINE/1 battery (local mode), and one
docker run that grades several references in the real stack with the model
checks, reading the evidence from inside the stack.
"""

import os
import subprocess
import sys

import pytest
from conftest import REPO, SERVERS, leftovers_of, models_submission, quiet, write_lab

from grader.lineclient import exchange, reply_for
from grader.proc import free_port, stop_group, wait_listening
from grader.runner import grade
from grader.stage import run_network_stage
from servers.platforms import MODELS

BATTERY = ["line.basic", "line.split", "line.pipelined", "line.large",
           "robust.silent_client", "robust.reset", "robust.eof", "robust.concurrent"]
RUNS_HERE = [m for m in MODELS if (SERVERS / f"{m}_server.py").is_file() and m != "kqueue"]
# One client at a time, by design: a silent client stalls it, and clients in lockstep
# (robust.concurrent) wait at the barrier for the one it is not serving.
EXPECTED_FAILURES = {"iterative": {"robust.silent_client", "robust.concurrent"}}
SIT_OUT = 2.0  # s: the reply timeout of a check failed by design (10 s only waits longer)


def battery_item(check: str, model: str) -> dict:
    """A battery check as lab.yaml would give it for `model`, quicker to fail by design."""
    return {"check": check, "model": model} | (
        {"params": {"timeout": SIT_OUT}} if check in EXPECTED_FAILURES.get(model, ()) else {})


@pytest.mark.parametrize("model", RUNS_HERE)
def test_reference_passes_the_line1_battery(start_server, model):
    addr = start_server(SERVERS / f"{model}_server.py")
    # the model as lab.yaml gives it (a thread pool's clients do not go in lockstep)
    result = run_network_stage(addr, [battery_item(c, model) for c in BATTERY], 10.0)
    failed = {c for c, o in zip(BATTERY, result["outcomes"]) if o["status"] != "passed"}
    assert failed == EXPECTED_FAILURES.get(model, set()), result["outcomes"]


def test_every_server_file_is_a_model_in_the_table():
    files = {p.name.removesuffix("_server.py") for p in SERVERS.glob("*_server.py")}
    assert files <= set(MODELS)
    readme = (SERVERS / "README.md").read_text()
    for model in files:
        assert f"`{model}_server.py`" in readme


def run_alone(name: str, os_name: str = "linux") -> subprocess.CompletedProcess:
    env = dict(os.environ, HOST="127.0.0.1", PORT=str(free_port()), IOLAB_OS=os_name,
               PYTHONPATH=str(SERVERS / "osprofile"))
    return subprocess.run([sys.executable, str(SERVERS / name)], env=env, capture_output=True,
                          text=True, timeout=20)


def test_kqueue_is_unavailable_on_linux_with_a_clear_exit_2():
    proc = run_alone("kqueue_server.py")
    assert proc.returncode == 2
    assert "kqueue is not available on this platform" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_make_serve_starts_the_model_asked_for():
    port = free_port()
    proc = subprocess.Popen(["make", "-s", "serve", "MODEL=epoll", f"PORT={port}"], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        assert wait_listening(("127.0.0.1", port), 15)
        got = exchange(("127.0.0.1", port), [b"hello\n"], reply_for(b"hello"))
        assert got == b"5 hello\n"
    finally:
        stop_group(proc, grace=10)
    assert "epoll_server listening on 127.0.0.1" in proc.stderr.read()


DOCKER_LAB = """\
lab: models
title: reference servers in the stack, judged by the model checks
exercises:
  - id: select
    title: select
    model: select
    path: select
    checks:
      - {check: line.basic, points: 1}
      - {check: model.conformance, points: 1}
      - {check: resource.idle_cpu, points: 1}
      - {check: robust.fd_limit, points: 1}
  - id: epoll
    title: epoll
    model: epoll
    path: epoll
    checks:
      - {check: model.conformance, points: 1}
      - {check: robust.fd_limit, points: 1}
  - id: thread-as-epoll
    title: a thread per client handed in for the epoll exercise
    model: epoll
    path: thread
    checks:
      - {check: model.conformance, points: 1}
  - id: nonblocking
    title: busy polling
    model: nonblocking
    path: nonblocking
    checks:
      - {check: model.conformance, points: 1}
      - {check: resource.idle_cpu, points: 1}
"""


@pytest.mark.docker
def test_docker_stack_sees_which_model_each_reference_uses(docker_engine, tmp_path):
    lab = write_lab(tmp_path / "labs", "models", DOCKER_LAB)
    submission = models_submission(tmp_path, ["select", "epoll", "thread", "nonblocking"])
    report = grade(lab, submission, "docker", "linux", tmp_path / "results", progress=quiet)
    got = {(r.exercise, r.check): r.outcome for r in report.results}
    summary = {k: (o.status, o.figure, o.got) for k, o in got.items()}
    assert got["select", "line.basic"].passed, summary
    assert got["select", "model.conformance"].passed, summary
    assert "multiplexing with select" in got["select", "model.conformance"].figure
    assert got["select", "resource.idle_cpu"].passed, summary
    fd_limit = got["select", "robust.fd_limit"]
    assert fd_limit.status == "failed" and "FD_SETSIZE is 1024 on Linux" in fd_limit.got, summary
    assert "still serves" in fd_limit.got  # the lesson, not a crash
    assert got["epoll", "model.conformance"].passed, summary
    assert "eventpoll fds: 1" in got["epoll", "model.conformance"].figure
    assert got["epoll", "robust.fd_limit"].passed, summary
    wrong = got["thread-as-epoll", "model.conformance"]
    assert wrong.status == "failed" and "threads" in wrong.got, summary
    assert got["nonblocking", "model.conformance"].passed, summary
    assert got["nonblocking", "resource.idle_cpu"].status == "failed", summary
    network = (tmp_path / "results").glob("models/*/select/network.json")
    assert all(p.stat().st_uid == os.getuid() for p in network)  # handed back by the stage
    assert leftovers_of(report.run_id) == []


def battery_lab(models) -> str:
    """One exercise per model: the LINE/1 battery and the model check, nothing else."""
    exercises = []
    for model in models:
        checks = []
        for name in BATTERY + ["model.conformance"]:
            expect = (f", expect: fail, timeout: {SIT_OUT}"
                      if name in EXPECTED_FAILURES.get(model, ()) else "")
            checks.append(f"      - {{check: {name}, points: 1{expect}}}")
        exercises.append(f"  - id: {model}\n    title: {model}\n    model: {model}\n"
                         f"    path: {model}\n    checks:\n" + "\n".join(checks))
    return "lab: battery\ntitle: every model\nexercises:\n" + "\n".join(exercises) + "\n"


# Three groups, so that three test workers grade them side by side (one took 3 min).
MODEL_GROUPS = [RUNS_HERE[0::3], RUNS_HERE[1::3], RUNS_HERE[2::3] + ["kqueue"]]


@pytest.mark.docker
@pytest.mark.parametrize("models", MODEL_GROUPS, ids=lambda models: "+".join(models))
def test_docker_every_reference_passes_the_battery_as_its_own_model(models, docker_engine,
                                                                      tmp_path):
    """Issue 3: every model through the battery in the real stack (kqueue: unavailable)."""
    lab = write_lab(tmp_path / "labs", "battery", battery_lab(models))
    report = grade(lab, models_submission(tmp_path, models), "docker", "linux",
                   tmp_path / "results", progress=quiet)
    wrong = {(r.exercise, r.check): (r.outcome.status, r.outcome.explain())
             for r in report.results if not r.outcome.passed and r.exercise != "kqueue"}
    assert wrong == {}
    kqueue = {r.outcome.status for r in report.results if r.exercise == "kqueue"}
    assert kqueue == ({"unavailable"} if "kqueue" in models else set())
    assert report.passed
    assert leftovers_of(report.run_id) == []
