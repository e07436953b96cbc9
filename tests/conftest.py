"""Shared fixtures: start a LINE/1 server as a subprocess on a free port."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from grader.lineclient import wait_listening
from grader.targets import free_port

REPO = Path(__file__).resolve().parent.parent
BROKEN = Path(__file__).resolve().parent / "broken"


@pytest.fixture
def start_server():
    """start_server(path, os_name="linux") -> (host, port); stopped after the test."""
    procs: list[subprocess.Popen] = []

    def start(path: Path, os_name: str = "linux", wait: float = 10.0):
        port = free_port()
        env = dict(os.environ, HOST="127.0.0.1", PORT=str(port), IOLAB_OS=os_name,
                   PYTHONPATH=str(REPO / "servers" / "osprofile"))
        proc = subprocess.Popen([sys.executable, str(path)], cwd=path.parent, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                start_new_session=True)
        procs.append(proc)
        if wait and not wait_listening(("127.0.0.1", port), wait):
            proc.kill()
            raise RuntimeError(f"{path.name} did not listen: {proc.stderr.read().decode()[-500:]}")
        return ("127.0.0.1", port)

    yield start
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def docker_available() -> bool:
    return subprocess.run(["docker", "info"], capture_output=True).returncode == 0


@pytest.fixture(scope="session")
def docker_engine():
    """Skip docker tests without an engine, except under CI=true: there it is an error."""
    if docker_available():
        return True
    if os.environ.get("CI") == "true":
        pytest.fail("CI=true but no Docker engine is running: docker tests cannot be skipped")
    pytest.skip("no Docker engine")


def iolab_leftovers() -> list[str]:
    """Containers and networks of iolab still present (should be none after a run)."""
    out = []
    for kind in ("ps -aq", "network ls -q"):
        proc = subprocess.run(["docker", *kind.split(), "--filter", "label=org.iolab.project=iolab"],
                              capture_output=True, text=True)
        out += proc.stdout.split()
    return out


def grade(*args: str, timeout: float = 600, **kwargs) -> subprocess.CompletedProcess:
    """Run `python -m grader ...` as a user would; returns the finished process."""
    return subprocess.run([sys.executable, "-m", "grader", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout, **kwargs)


def short_select_lab(labs: Path, duration: float = 2):
    """lab-3's select exercise alone, with a short load phase, written under `labs`."""
    import yaml

    from grader.labspec import load_lab

    data = yaml.safe_load((REPO / "labs" / "lab-3" / "lab.yaml").read_text())
    exercise = next(ex for ex in data["exercises"] if ex["id"] == "select")
    exercise["load"]["duration"] = duration
    data["exercises"] = [exercise]
    (labs / "lab-3").mkdir()
    (labs / "lab-3" / "lab.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return load_lab("lab-3", labs)
