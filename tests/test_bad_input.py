"""Bad input gets one clear line on stderr and exit code 2, and nothing starts."""

import socket
from pathlib import Path

import pytest
from conftest import REPO, grade

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
    import os
    line = one_error_line(grade("lab-3", env=dict(os.environ, **env)))
    assert "Docker engine is not running" in line and "--mode local" in line


def write_lab(root: Path, text: str) -> Path:
    (root / "lab-x").mkdir()
    (root / "lab-x" / "lab.yaml").write_text(text)
    return root


GOOD = """\
lab: lab-x
title: t
exercises:
  - id: select
    title: t
    model: select
    checks:
      - {check: line.basic, points: 1}
"""


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
        load_lab("lab-x", write_lab(tmp_path, broken))
    assert words in str(err.value)


def test_good_lab_yaml_loads(tmp_path):
    lab = load_lab("lab-x", write_lab(tmp_path, GOOD))
    assert [ex.id for ex in lab.exercises] == ["select"]
    assert lab.exercises[0].oses == ["linux", "macos", "windows"]


def test_every_shipped_lab_is_valid():
    for folder in sorted((REPO / "labs").iterdir()):
        if (folder / "lab.yaml").exists():
            load_lab(folder.name)
