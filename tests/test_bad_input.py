"""Bad input gets one clear line on stderr and exit code 2, and nothing starts."""

import os
import socket

import pytest
from conftest import ALL_LABS, LAB_X, grade, write_lab

from grader.errors import UsageError
from grader.labspec import load_lab


def one_error_line(proc) -> str:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def test_missing_submission(tmp_path):
    line = one_error_line(grade("lab-3", "--mode", "local", "--submission", str(tmp_path / "nope")))
    assert "does not exist" in line


def test_empty_submission_folder(tmp_path):
    line = one_error_line(grade("lab-3", "--mode", "local", "--submission", str(tmp_path)))
    assert "empty" in line


def test_folder_without_server_py(tmp_path):
    (tmp_path / "notes.txt").write_text("my server is somewhere else")
    line = one_error_line(grade("lab-3", "--mode", "local", "--submission", str(tmp_path)))
    assert "has no server.py" in line


def test_unknown_lab():
    line = one_error_line(grade("lab-99", "--mode", "local"))
    assert "unknown lab" in line and "lab-3" in line


def test_port_in_use_in_local_mode():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        line = one_error_line(grade("lab-3", "--mode", "local", "--port", str(port),
                                    "--submission", "servers/select_server.py"))
    assert f"port {port} is already in use" in line


def test_no_docker_engine():
    env = {"DOCKER_HOST": "unix:///nonexistent/docker.sock", "PATH": "/usr/bin:/bin"}
    line = one_error_line(grade("lab-3", env=dict(os.environ, **env)))
    assert "Docker engine is not running" in line and "--mode local" in line


GOOD = LAB_X


@pytest.mark.parametrize("broken, words", [
    (GOOD.replace("model: select", "model: selekt"), "line 6: unknown model 'selekt'"),
    (GOOD.replace("line.basic", "line.basik"), "line 8: unknown check 'line.basik'"),
    (GOOD.replace("points: 1", "points: -1"), "line 8: points must be a number"),
    (GOOD.replace("lab: lab-x", "lab: lab-y"), "line 1: lab: says 'lab-y'"),
    (GOOD + "    colour: red\n", "line 9: unknown key 'colour'"),
    (GOOD.replace("title: t\nexercises", "title: [t\nexercises"), "not valid YAML"),
    (GOOD + "    load: {users: 0, duration: 5}\n", "load.users must be a positive number"),
])
def test_broken_lab_yaml_points_at_the_line(tmp_path, broken, words):
    with pytest.raises(UsageError) as err:
        write_lab(tmp_path, "lab-x", broken)
    assert words in str(err.value)


def test_good_lab_yaml_loads(tmp_path):
    lab = write_lab(tmp_path, "lab-x", GOOD)
    assert [ex.id for ex in lab.exercises] == ["select"]
    assert lab.exercises[0].oses == ["linux", "macos", "windows"]


@pytest.mark.parametrize("name", ALL_LABS)
def test_every_shipped_lab_is_valid(name):
    load_lab(name)


@pytest.mark.parametrize("broken, words", [
    (LAB_X.replace("{check: line.basic, points: 1}",
                   "{check: robust.fd_limit, points: 1, conections: 5000, timout: 1}"),
     "line 8: unknown parameter 'conections' for robust.fd_limit (known: connections, timeout)"),
    (LAB_X.replace("points: 1}", "points: 1, timeout: soon}"),
     "line 8: parameter 'timeout' of line.basic must be a number, got 'soon'"),
    (LAB_X.replace("points: 1}", "points: 1, lines: 2.5}"),
     "line 8: unknown parameter 'lines' for line.basic (known: timeout)"),
    (LAB_X + "    load: {users: 1, duration: 1, thresholds: {min_rps_ration: 1}}\n",
     "unknown threshold 'min_rps_ration'"),
])
def test_a_misspelt_check_parameter_is_an_error_with_its_line(tmp_path, broken, words):
    with pytest.raises(UsageError) as err:
        write_lab(tmp_path, "lab-x", broken)
    assert words in str(err.value)


def test_a_misspelt_parameter_is_one_line_and_exit_2_on_the_command_line(tmp_path):
    bad = LAB_X.replace("{check: line.basic, points: 1}",
                        "{check: robust.fd_limit, points: 1, conections: 5000}")
    (tmp_path / "labs" / "lab-x").mkdir(parents=True)
    (tmp_path / "labs" / "lab-x" / "lab.yaml").write_text(bad)
    proc = grade("lab-x", "--mode", "local", "--submission", "servers/select_server.py",
                 env=dict(os.environ, IOLAB_LABS=str(tmp_path / "labs")))
    line = one_error_line(proc)
    assert "lab.yaml line 8: unknown parameter 'conections' for robust.fd_limit" in line


@pytest.mark.parametrize("unavailable, words", [
    ("{windoze: no}", "line 8: unavailable: unknown OS 'windoze'; choose from linux, macos, windows"),
    ("{windows: 512}", "line 8: unavailable: windows: give the reason as text"),
    ("{windows: ''}", "line 8: unavailable: windows: give the reason as text"),
    ("[windows]", "line 8: unavailable: must map an OS to the reason"),
])
def test_a_check_unavailable_on_an_os_needs_a_known_os_and_a_reason(tmp_path, unavailable, words):
    bad = LAB_X.replace("points: 1}", f"points: 1, unavailable: {unavailable}}}")
    with pytest.raises(UsageError) as err:
        write_lab(tmp_path, "lab-x", bad)
    assert words in str(err.value)


def test_a_check_unavailable_where_its_exercise_never_runs_is_an_error(tmp_path):
    bad = LAB_X.replace("model: select", "model: epoll").replace(
        "points: 1}", "points: 1, unavailable: {windows: no epoll there}}")
    with pytest.raises(UsageError) as err:
        write_lab(tmp_path, "lab-x", bad)
    assert "line 8: unavailable: the exercise does not run on windows (it runs on linux)" in str(
        err.value)


def test_a_check_unavailable_on_an_os_keeps_its_reason(tmp_path):
    lab = write_lab(tmp_path, "lab-x", LAB_X.replace(
        "points: 1}", "points: 1, unavailable: {windows: select() takes 512 sockets there}}"))
    check = lab.exercises[0].checks[0]
    assert check.unavailable == {"windows": "select() takes 512 sockets there"}
    assert check.params == {} and not check.runs_on("windows") and check.runs_on("macos")


def test_an_unknown_exercise_says_which_one_was_meant():
    line = one_error_line(grade("lab-3", "--mode", "local", "--exercise", "epol"))
    assert line == ("error: no exercise 'epol' in lab-3: did you mean epoll? "
                    "(choose from select, poll, epoll, selectors, select-limit)")


def test_a_folder_given_for_the_wrong_exercise_is_one_line_and_exit_2():
    line = one_error_line(grade("lab-3", "--mode", "local", "--exercise", "poll",
                                "--submission", "labs/lab-3/starter/poll"))
    assert line == ("error: labs/lab-3/starter/poll has no poll/server.py: for the exercise "
                    "'poll' pass the folder that holds poll/server.py (labs/lab-3/starter), or "
                    "the file itself (labs/lab-3/starter/poll/server.py)")


def test_a_lab_with_nothing_submitted_is_one_line_and_exit_2(tmp_path):
    (tmp_path / "notes.txt").write_text("nothing here yet")
    (tmp_path / "server.py").write_text("")  # select is there; the rest of a lab...
    lab = tmp_path / "labs" / "lab-x"
    lab.mkdir(parents=True)
    (lab / "lab.yaml").write_text(LAB_X.replace("model: select", "model: select\n    path: sub"))
    proc = grade("lab-x", "--mode", "local", "--submission", str(tmp_path),
                 env=dict(os.environ, IOLAB_LABS=str(tmp_path / "labs")))
    assert "has no sub/server.py" in one_error_line(proc)


REUSED = """\
lab: lab-x
title: t
x-battery: &battery
  - {check: line.basic, points: 1}
  - {check: line.split, points: 2}
x-exercise: &exercise
  title: t
  model: select
exercises:
  - <<: *exercise
    id: one
    checks: [*battery, {check: robust.reset, points: 1}]
  - <<: *exercise
    id: two
    title: the second
    checks: *battery
"""


def test_lab_yaml_reuses_blocks_like_compose(tmp_path):
    lab = write_lab(tmp_path, "lab-x", REUSED)
    one, two = lab.exercises
    assert [c.check for c in one.checks] == ["line.basic", "line.split", "robust.reset"]
    assert [c.check for c in two.checks] == ["line.basic", "line.split"]
    assert (one.model, one.title, two.title) == ("select", "t", "the second")  # own keys win


def test_checks_lists_every_check_with_its_parameters():
    proc = grade("checks")
    assert proc.returncode == 0, proc.stderr
    assert "robust.fd_limit  [network]  more than 1024 connections at once" in proc.stdout
    assert "    connections (int, default 1100)" in proc.stdout
    assert "min_rps_ratio (float, default None)" in proc.stdout and "relative" in proc.stdout
    assert "module.pytest  [module]" in proc.stdout and "tests (str, required)" in proc.stdout
