"""OS profiles end to end (local mode, through the runner): an epoll exercise is
unavailable under windows and macos, a selectors server passes under all three
profiles with the mechanism that OS would pick, and a server that sneaks epoll
past the windows profile is caught by the evidence.
"""

import shutil
import subprocess
import sys

import pytest
from conftest import SERVERS, quiet, write_lab

from grader.runner import grade

LAB = """\
lab: profiles
title: OS profiles
exercises:
  - id: {id}
    title: {model}
    model: {model}
    checks:
      - {{check: line.basic, points: 1}}
      - {{check: model.conformance, points: 2, clients: 50}}
"""

SNEAKY = '''\
"""Cheats the windows profile: select.epoll is hidden, so load a fresh select module."""
import importlib.util
import runpy
import select
import sys

spec = importlib.util.find_spec("select")
fresh = importlib.util.module_from_spec(spec)
spec.loader.exec_module(fresh)
for name in dir(fresh):
    if name.startswith(("epoll", "EPOLL")):
        setattr(select, name, getattr(fresh, name))
sys.path.insert(0, {servers!r})
runpy.run_path({servers!r} + "/epoll_server.py", run_name="__main__")
'''


def run(tmp_path, model: str, os_name: str, server: str | None = None, source: str = ""):
    """Grade one exercise of `model` under `os_name`; the submission is a reference copy."""
    lab = write_lab(tmp_path / "labs", "profiles", LAB.format(id=model, model=model))
    submission = tmp_path / f"submission-{os_name}"
    submission.mkdir()
    if source:
        (submission / "server.py").write_text(source)
    else:
        shutil.copy(SERVERS / (server or f"{model}_server.py"), submission / "server.py")
        shutil.copy(SERVERS / "lineproto.py", submission / "lineproto.py")
    report = grade(lab, submission, "local", os_name, tmp_path / "results", progress=quiet)
    return {r.check: r.outcome for r in report.results}


@pytest.mark.parametrize("os_name", ["windows", "macos"])
def test_epoll_exercise_is_unavailable_off_linux(tmp_path, os_name):
    outcomes = run(tmp_path, "epoll", os_name)
    assert {o.status for o in outcomes.values()} == {"unavailable"}
    assert outcomes["model.conformance"].got == (
        f"epoll is not available on {os_name}; this exercise runs on linux")


@pytest.mark.parametrize("os_name, mechanism, sleeps_in", [
    ("linux", "epoll", ("epoll_wait", "epoll_pwait")),
    ("macos", "poll", ("poll", "ppoll")),
    ("windows", "select", ("select", "pselect6")),
])
def test_selectors_server_passes_everywhere_with_that_os_mechanism(tmp_path, os_name,
                                                                    mechanism, sleeps_in):
    outcomes = run(tmp_path, "selectors", os_name)
    assert outcomes["line.basic"].passed
    conformance = outcomes["model.conformance"]
    assert conformance.passed, conformance
    assert f"one thread multiplexing with {mechanism}" in conformance.figure
    assert any(f"in {call}" in conformance.figure for call in sleeps_in)
    assert ("eventpoll fds: 1" in conformance.figure) == (os_name == "linux")


def test_epoll_sneaked_past_the_windows_profile_is_caught(tmp_path):
    outcomes = run(tmp_path, "selectors", "windows", source=SNEAKY.format(servers=str(SERVERS)))
    assert outcomes["line.basic"].passed  # it works: only the evidence can tell
    conformance = outcomes["model.conformance"]
    assert conformance.status == "failed"
    assert "epoll instance (anon_inode:[eventpoll])" in conformance.got
    assert "windows" in conformance.expected


@pytest.mark.parametrize("os_name, server, words", [
    ("macos", "epoll_server.py", "select.epoll is not available"),
    ("windows", "poll_server.py", "select.poll is not available"),
    ("windows", "fork_server.py", "os.fork is not available"),
])
def test_a_server_the_profile_lacks_exits_2_in_one_line(os_name, server, words):
    env = {"IOLAB_OS": os_name, "PYTHONPATH": str(SERVERS / "osprofile"),
           "HOST": "127.0.0.1", "PORT": "0", "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([sys.executable, str(SERVERS / server)], env=env, capture_output=True,
                          text=True, timeout=20)
    assert proc.returncode == 2
    assert words in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_lab_yaml_in_tmp_is_valid(tmp_path):
    lab = write_lab(tmp_path, "profiles", LAB.format(id="select", model="select"))
    assert lab.exercises[0].oses == ["linux", "macos", "windows"]
