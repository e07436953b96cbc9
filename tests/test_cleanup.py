"""Nothing lingers: SIGTERM tears the stack down like Ctrl-C; `make clean`
removes what a killed grader left. These tests touch only their own projects:
other stacks may run on the same engine."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import LAB_X, REPO, grade, leftovers_of, write_lab

from grader.targets.base import describe_exit, mib


def test_exit_reasons_are_for_students():
    assert describe_exit(137) == ("your server was killed by signal SIGKILL: killed from "
                                  "outside (a limit, the kernel or the grader)")
    assert "segmentation fault" in describe_exit(-11)
    assert describe_exit(3) == "your server exited with code 3"  # the runner adds its log's why
    assert mib(256 * 1024 ** 2) == "256 MiB" and mib(1024 ** 3) == "1 GiB"


def test_symlink_loop_submission_is_one_line(tmp_path):
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    proc = grade("lab-3", "--mode", "local", "--submission", str(loop))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "link loop" in lines[0], proc.stderr


@pytest.mark.skipif(os.getuid() == 0, reason="root reads unreadable folders")
def test_unreadable_submission_is_one_line(tmp_path):
    folder = tmp_path / "sub"
    folder.mkdir()
    (folder / "server.py").write_text("")
    folder.chmod(0)
    try:
        proc = grade("lab-3", "--mode", "local", "--submission", str(folder))
    finally:
        folder.chmod(0o755)
    assert proc.returncode == 2 and "cannot be read" in proc.stderr, proc.stderr


@pytest.mark.docker
def test_sigterm_midway_leaves_nothing(docker_engine, tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "grader", "lab-3", "--submission",
                             "servers/select_server.py", "--results", str(tmp_path)],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seen = []
    for line in proc.stdout:  # wait until the network checks run: the stack is up
        seen.append(line)
        if "network checks" in line:
            break
    time.sleep(1)
    proc.send_signal(signal.SIGTERM)
    out = proc.communicate(timeout=180)[0]
    assert proc.returncode == 143, "".join(seen) + out
    assert "torn down" in out
    run_id = next((tmp_path / "lab-3").iterdir()).name
    assert leftovers_of(run_id) == []


@pytest.mark.docker
def test_an_engine_error_is_an_error_and_leaves_nothing(docker_engine, tmp_path):
    """The engine refuses the server container (more CPUs than the machine has):
    the exercise is an error with the engine's words, never a pass, and the
    network compose made before the refusal is gone."""
    labs = tmp_path / "labs"
    write_lab(labs, "lab-x", LAB_X.replace("    checks:", "    limits: {cpus: 4096}\n    checks:"))
    proc = subprocess.run([sys.executable, "-m", "grader", "lab-x", "--submission",
                           "servers/select_server.py", "--results", str(tmp_path / "results")],
                          cwd=REPO, env=dict(os.environ, IOLAB_LABS=str(labs)),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "ERROR" in proc.stdout and "CPU" in proc.stdout, proc.stdout
    run_id = next((tmp_path / "results" / "lab-x").iterdir()).name
    assert leftovers_of(run_id) == []


@pytest.mark.docker
def test_make_clean_removes_what_a_killed_grader_left(docker_engine):
    """Stand-ins for a SIGKILLed run: a container, a network and a volume of a
    project named like the grader's; `make clean` (narrowed to it) removes them."""
    project = f"iolab-cleantest-{secrets.token_hex(3)}"
    labels = ["--label", f"com.docker.compose.project={project}",
              "--label", "org.iolab.project=iolab"]
    run = lambda *a: subprocess.run(["docker", *a], capture_output=True, text=True, check=True)  # noqa: E731
    try:
        run("network", "create", "--internal", *labels, f"{project}_lab")
        run("volume", "create", *labels, f"{project}_data")
        run("create", *labels, "--network", f"{project}_lab", "-v", f"{project}_data:/d",
            "--name", f"{project}_server_1", "iolab-runtime:latest", "sleep", "60")
        run("start", f"{project}_server_1")
        proc = subprocess.run(["make", "-s", "clean", f"CLEAN_PREFIX={project}"], cwd=REPO,
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        assert leftovers_of(project.removeprefix("iolab-")) == []
    finally:
        for args in (["rm", "-f", f"{project}_server_1"], ["network", "rm", f"{project}_lab"],
                     ["volume", "rm", f"{project}_data"]):
            subprocess.run(["docker", *args], capture_output=True)


def test_readme_names_the_remedy():
    text = Path(REPO / "README.md").read_text()
    assert "make clean" in text and "SIGKILL" in text
