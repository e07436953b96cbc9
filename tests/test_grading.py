"""End to end, as a student runs it: `python -m grader lab-3`, local and docker.

The docker tests bring the real Compose stack up (server, Locust master and
worker, grader), with no image pulled, and assert nothing is left behind. The
starter in docker mode is test_labs' (every lab-3 exercise's starter in its stack).
"""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import REPO, grade, leftovers_of, results_folder


def results_of(proc, loaded: bool = True) -> dict:
    folder = results_folder(proc)
    data = json.loads((folder / "results.json").read_text())
    files = ["junit.xml", "report.html"] + (["select/locust/stats_stats.csv"] if loaded else [])
    for name in files:
        assert (folder / name).exists(), name
    return data


def no_leftovers(proc) -> None:
    assert leftovers_of(results_folder(proc).name) == []


def assert_reference_passes(proc):
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    data = results_of(proc)
    assert data["score"] == sum(t["max_score"] for t in data["tests"]) > 0
    assert "PASSED" in proc.stdout
    for sides in data["extra_data"]["load"].values():  # every reply timed in µs, not whole ms
        assert sides["submission"]["latency_source"] == "grader", sides
        assert sides["submission"]["p50_us"] > 0


def assert_starter_fails_with_reasons(proc):
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-2000:]
    data = results_of(proc)
    failed = [t for t in data["tests"] if t["status"] == "failed"]
    assert {"select: a line split over many segments",
            "select: half-close: replies owed are sent, then the server closes"} <= {
        t["name"] for t in failed}
    for test in failed:
        assert "expected" in test["output"] and "hint:" in test["output"], test


@pytest.mark.slow
def test_local_reference_passes():
    """A single file is graded as lab-3's select exercise, and passes it."""
    proc = grade("lab-3", "--mode", "local", "--submission", "servers/select_server.py")
    assert_reference_passes(proc)
    assert {t["name"].split(": ", 1)[0] for t in results_of(proc)["tests"]} == {"select"}


@pytest.mark.slow
def test_local_starter_fails_with_a_reason_per_check():
    assert_starter_fails_with_reasons(grade("lab-3", "--mode", "local", "--exercise", "select"))


@pytest.mark.docker
def test_docker_reference_passes_and_leaves_nothing(docker_engine):
    proc = grade("lab-3", "--submission", "servers/select_server.py")
    assert_reference_passes(proc)
    no_leftovers(proc)


@pytest.mark.docker
def test_sigint_midway_leaves_nothing(docker_engine, tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "grader", "lab-3", "--submission",
                             "servers/select_server.py", "--results", str(tmp_path)],
                            cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    seen = []
    for line in proc.stdout:  # wait until the load phase runs: the whole stack is up
        seen.append(line)
        if "load:" in line:
            break
    time.sleep(2)
    # As a terminal's Ctrl-C: the whole process group, the grader's children included.
    os.killpg(proc.pid, signal.SIGINT)
    out = proc.communicate(timeout=120)[0]
    assert proc.returncode == 130, "".join(seen) + out
    run_id = next((tmp_path / "lab-3").iterdir()).name
    assert leftovers_of(run_id) == []


@pytest.mark.docker
def test_docker_compose_v2_runs_the_same_stack(docker_engine):
    """`docker compose` (v2, as a CLI plugin) is picked when present, and works."""
    plugins = REPO / ".cache" / "docker"
    if not (plugins / "cli-plugins" / "docker-compose").exists():
        subprocess.run(["bash", "docker/compose-v2.sh"], cwd=REPO, check=True)
    env = dict(os.environ, DOCKER_CONFIG=str(plugins))
    env.pop("IOLAB_COMPOSE", None)
    version = subprocess.run(["docker", "compose", "version"], env=env, capture_output=True,
                             text=True)
    assert "v2." in version.stdout
    proc = grade("lab-3", "--submission", "servers/select_server.py", env=env)
    assert_reference_passes(proc)
    no_leftovers(proc)


@pytest.mark.docker
def test_docker_server_that_crashes_is_not_restarted_for_the_load(docker_engine):
    """A server that died in the network checks must not earn load points by
    being restarted (compose `up` starts stopped dependencies unless told not to)."""
    proc = grade("lab-3", "--submission", "tests/broken/dies_on_reset.py")
    assert proc.returncode == 1, proc.stdout[-3000:]
    tests = {t["name"].split(": ", 1)[1]: t for t in results_of(proc, loaded=False)["tests"]}
    assert tests["clients that reset (RST) do not kill the server"]["status"] == "failed"
    for name in ("no failed requests under load", "throughput under load"):
        assert tests[name]["score"] == 0
        assert tests[name]["output"].startswith(
            "not run: your server exited with code 1 during the check 'clients that reset "
            "(RST) do not kill the server': ConnectionResetError"), tests[name]["output"]
    no_leftovers(proc)
