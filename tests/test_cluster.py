"""`python -m grader batch ... --cluster ADDRESS`: a class graded on Dask workers.

A real `dask scheduler` and real `dask worker` processes stand in for machines
(each with its own compose project prefix and scratch folder, so their stacks
and files never collide). Tested: a worker killed with SIGKILL mid-batch has
its job graded by the other, every student appears once and is counted once,
and the verdicts are a single-machine batch's; its orphaned grader stops; a
client stopped with SIGTERM stops the workers' graders; a worker on another
lab version is refused; an unreachable scheduler is one line and exit 2.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO, write_lab
from test_batch_class import QUICK_LAB, broken, class_rows, correct, graders_of, wait_until

from grader.proc import free_port, stop_group

VENV_BIN = Path(sys.executable).parent

# lab-3's select with a few checks that tell the corpus apart and a 2 s load phase.
# Its throughput floor is lenient (5% of the reference): what is compared here is the
# cluster against one machine, not how steady a 2 s measurement is on 2 shared cores.
CLUSTER_LAB = """\
lab: lab-c
title: cluster
exercises:
  - id: select
    title: t
    model: select
    reference: servers/select_server.py
    checks:
      - {check: line.basic, points: 1}
      - {check: line.split, points: 2}
      - {check: line.large, points: 2}
      - {check: robust.eof, points: 2}
      - {check: load.failures, points: 1}
      - {check: load.throughput, points: 1}
    load: {users: 10, spawn_rate: 10, duration: 2, line_size: 256,
           thresholds: {max_failure_ratio: 0.0, min_rps_ratio: 0.05}}
"""


def address_in(scheduler_file: Path) -> str | None:
    """The scheduler's address once its file is written in full, else None."""
    try:
        return json.loads(scheduler_file.read_text())["address"]
    except (OSError, ValueError, KeyError):
        return None


class LocalCluster:
    """A scheduler and `workers` worker processes on this machine, stopped by stop()."""

    def __init__(self, tmp: Path, workers: int, env: dict):
        self.tmp, self.tag = tmp, f"iolab-t{secrets.token_hex(3)}"
        # One machine: the workers share its load lock (the suite's, so that parallel
        # tests' load phases never overlap theirs either).
        self.env = dict(os.environ, PYTHONPATH=str(REPO), **env)
        self.env.setdefault("IOLAB_LOAD_LOCK", str(tmp / "load.lock"))
        file = tmp / "scheduler.json"
        self.workers: list[subprocess.Popen] = []
        self.scheduler = self._start(["scheduler", "--host", "127.0.0.1", "--port", "0",
                                      "--no-dashboard", "--scheduler-file", str(file)], "s")
        try:  # a cluster that fails to start is stopped here: the fixture never saw it
            # The scheduler creates the file before it writes it: wait for the address.
            assert wait_until(lambda: address_in(file), 30), (tmp / "s.log").read_text()
            self.address = address_in(file)
            for i in range(1, workers + 1):
                self.workers.append(self._start(
                    ["worker", self.address, "--no-nanny", "--nthreads", "1", "--resources",
                     "LOAD=1", "--name", f"w{i}", "--no-dashboard", "--local-directory",
                     str(tmp / f"w{i}")], f"w{i}", {"IOLAB_PROJECT_PREFIX": self.prefix(i)}))
        except BaseException:
            self.stop()
            raise

    def prefix(self, i: int) -> str:
        return f"{self.tag}-w{i}"

    def _start(self, args: list[str], name: str, env: dict | None = None) -> subprocess.Popen:
        log = (self.tmp / f"{name}.log").open("w")
        return subprocess.Popen([str(VENV_BIN / "dask"), *args], cwd=REPO,
                                env={**self.env, **(env or {})}, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)

    def wait_for_workers(self, n: int) -> None:
        from distributed import Client
        with Client(self.address, timeout=30) as client:
            client.wait_for_workers(n, timeout=60)

    def stop(self) -> None:
        for proc in [*self.workers, self.scheduler]:
            stop_group(proc, grace=10)
        assert all(p.poll() is not None for p in [*self.workers, self.scheduler])


@pytest.fixture
def cluster_of(tmp_path):
    started: list[LocalCluster] = []

    def start(workers: int, **env: str) -> LocalCluster:
        started.append(LocalCluster(tmp_path, workers, env))
        return started[-1]

    yield start
    for cluster in started:
        cluster.stop()


def batch(lab: str, subs: Path, out: Path, *args: str, labs: Path, wait: bool = True):
    env = dict(os.environ, IOLAB_LABS=str(labs))
    env.setdefault("IOLAB_LOAD_LOCK", str(out.parent / "load.lock"))
    cmd = [sys.executable, "-m", "grader", "batch", lab, str(subs), "--mode", "local",
           "--out", str(out), "--no-similarity", *args]
    if not wait:
        return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, start_new_session=True)
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)


def verdicts(out: Path) -> dict[str, dict]:
    data = json.loads((out / "summary.json").read_text())
    return {s["student"]: {"verdict": s["verdict"], "score": s["score"],
                           "checks": {e: x["checks"] for e, x in s["exercises"].items()}}
            for s in data["students"]}


def graders_under(pid: int) -> list[int]:
    """The grader processes a worker started (its children running grader.guarded)."""
    out = []
    for proc in Path("/proc").iterdir():
        try:
            stat = (proc / "stat").read_text()
            if proc.name.isdigit() and int(stat.rsplit(")", 1)[1].split()[1]) == pid \
                    and b"grader.guarded" in (proc / "cmdline").read_bytes():
                out.append(int(proc.name))
        except (OSError, ValueError, IndexError):
            continue
    return out


def corpus(subs: Path) -> None:
    correct(subs / "alice")
    broken(subs / "carol", "no_framing")
    broken(subs / "dave", "eof_ignored")
    broken(subs / "erin", "partial_sends")
    (subs / "frank").mkdir()
    (subs / "frank" / "notes.txt").write_text("I will finish it tomorrow")


@pytest.mark.slow
def test_a_killed_worker_s_job_is_graded_elsewhere_with_a_single_machine_s_verdicts(
        tmp_path, cluster_of):
    labs = tmp_path / "labs"
    write_lab(labs, "lab-c", CLUSTER_LAB)
    subs = tmp_path / "subs"
    corpus(subs)
    single = batch("lab-c", subs, tmp_path / "single", "-j", "2", labs=labs)
    assert single.returncode == 0, single.stdout + single.stderr

    cluster = cluster_of(2, IOLAB_LABS=str(labs))
    cluster.wait_for_workers(2)
    proc = batch("lab-c", subs, tmp_path / "cluster", "--cluster", cluster.address, labs=labs,
                 wait=False)
    doomed = cluster.workers[0]
    assert wait_until(lambda: graders_under(doomed.pid), 120), "w1 never started a grader"
    (grader,) = graders_under(doomed.pid)
    args = Path(f"/proc/{grader}/cmdline").read_bytes().split(b"\0")
    submission = args[args.index(b"--submission") + 1].decode()
    victim = re.match(r"(.+)-[^-/]+$", Path(submission).parent.name)[1]
    time.sleep(1.5)  # mid-grading: its server is up, its checks under way
    os.kill(doomed.pid, signal.SIGKILL)
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out

    # The killed worker's grader saw its parent die and tore down (server included).
    assert wait_until(lambda: graders_of(tmp_path / "w1") == [], 30), graders_of(tmp_path / "w1")
    rows = class_rows(tmp_path / "cluster")
    students = ["alice", "carol", "dave", "erin", "frank"]
    assert [r["student"] for r in rows] == students  # each once
    progress = [line for line in out.splitlines() if re.match(r"\[\d+/5\] ", line)]
    assert sorted(line.split()[1].rstrip(":") for line in progress) == students  # counted once
    by = {r["student"]: r for r in rows}
    assert by[victim]["graded_on"].endswith("(w2)"), (victim, by[victim])
    assert verdicts(tmp_path / "cluster") == verdicts(tmp_path / "single")
    assert by["alice"]["verdict"] == "passed" and by["frank"]["verdict"] == "error"
    assert {by[s]["verdict"] for s in ("carol", "dave", "erin")} == {"failed"}
    assert not (tmp_path / "cluster" / ".incoming").exists()


@pytest.mark.slow
def test_a_stopped_client_stops_the_workers_graders(tmp_path, cluster_of):
    labs = tmp_path / "labs"
    write_lab(labs, "lab-q", QUICK_LAB.replace("line.split, points: 2",
                                               "robust.silent_client, points: 2"))
    subs = tmp_path / "subs"
    for name in ("a1", "a2", "a3", "a4"):
        correct(subs / name)
    cluster = cluster_of(2, IOLAB_LABS=str(labs))
    cluster.wait_for_workers(2)
    proc = batch("lab-q", subs, tmp_path / "class", "--cluster", cluster.address, labs=labs,
                 wait=False)
    assert wait_until(lambda: any(graders_under(w.pid) for w in cluster.workers), 120)
    os.kill(proc.pid, signal.SIGTERM)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 130, out
    assert "run the same command again to resume" in out
    workers = {w.pid for w in cluster.workers}
    assert [p for p in graders_of(tmp_path / "w1", tmp_path / "w2")
            if int(p.split()[0]) not in workers] == []  # graders and their servers: gone
    assert all(w.poll() is None for w in cluster.workers)  # the workers stay for the next batch
    resumed = batch("lab-q", subs, tmp_path / "class", "--cluster", cluster.address, labs=labs)
    assert resumed.returncode == 0, resumed.stdout
    assert [r["student"] for r in class_rows(tmp_path / "class")] == ["a1", "a2", "a3", "a4"]


@pytest.mark.slow
def test_a_worker_on_another_lab_version_is_refused(tmp_path, cluster_of):
    write_lab(tmp_path / "theirs", "lab-q", QUICK_LAB)
    write_lab(tmp_path / "ours", "lab-q", QUICK_LAB.replace("points: 2", "points: 5"))
    correct(tmp_path / "subs" / "alice")
    cluster = cluster_of(1, IOLAB_LABS=str(tmp_path / "theirs"))
    proc = batch("lab-q", tmp_path / "subs", tmp_path / "class", "--cluster", cluster.address,
                 labs=tmp_path / "ours")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "has another lab version" in lines[0], lines
    assert not (tmp_path / "class").exists()


@pytest.mark.slow
def test_a_scheduler_without_grading_workers_is_one_line_and_exit_2(tmp_path, cluster_of):
    correct(tmp_path / "subs" / "alice")
    cluster = cluster_of(0)
    proc = batch("lab-3", tmp_path / "subs", tmp_path / "class", "--cluster", cluster.address,
                 "--cluster-timeout", "3", labs=REPO / "labs")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "has no worker with the LOAD resource" in lines[0], lines
    assert "--resources LOAD=1" in lines[0]


def test_an_unreachable_scheduler_is_one_line_and_exit_2(tmp_path):
    correct(tmp_path / "subs" / "alice")
    address = f"tcp://127.0.0.1:{free_port()}"
    proc = batch("lab-3", tmp_path / "subs", tmp_path / "class", "--cluster", address,
                 "--cluster-timeout", "2", labs=REPO / "labs")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"error: cannot reach the Dask scheduler at {address}")
    assert "dask scheduler" in lines[0]
    assert not (tmp_path / "class").exists()


def stacks_of(prefix: str) -> list[str]:
    """Containers and networks of compose projects whose name starts with prefix."""
    found = []
    for kind in (["ps", "-a"], ["network", "ls"]):
        out = subprocess.run(["docker", *kind, "--filter", "label=com.docker.compose.project",
                              "--format", '{{.Label "com.docker.compose.project"}}'],
                             capture_output=True, text=True).stdout
        found += [f"{kind[0]} of {p}" for p in out.split() if p.startswith(prefix)]
    return found


@pytest.mark.docker
@pytest.mark.slow
def test_docker_workers_grade_with_their_own_stacks_and_a_killed_one_leaves_none(
        docker_engine, tmp_path, cluster_of):
    labs = tmp_path / "labs"
    write_lab(labs, "lab-q", QUICK_LAB)
    subs = tmp_path / "subs"
    correct(subs / "alice")
    broken(subs / "bob", "no_framing")
    correct(subs / "carol")
    cluster = cluster_of(2, IOLAB_LABS=str(labs))
    cluster.wait_for_workers(2)
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "grader", "batch", "lab-q", str(subs), "--out",
             str(tmp_path / "class"), "--no-similarity", "--cluster", cluster.address],
            cwd=REPO, env=dict(os.environ, IOLAB_LABS=str(labs)), stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, start_new_session=True)
        # w1 is killed while its stack is up: compose projects named by its own prefix.
        assert wait_until(lambda: stacks_of(cluster.prefix(1)), 180), "w1 started no stack"
        os.kill(cluster.workers[0].pid, signal.SIGKILL)
        out, _ = proc.communicate(timeout=600)
        assert proc.returncode == 0, out
        rows = {r["student"]: r for r in class_rows(tmp_path / "class")}
        assert list(rows) == ["alice", "bob", "carol"]
        assert [rows[s]["verdict"] for s in rows] == ["passed", "failed", "passed"], out
        assert all(r["graded_on"].endswith("(w2)") or r["graded_on"].endswith("(w1)")
                   for r in rows.values())
        assert any(r["graded_on"].endswith("(w2)") for r in rows.values())
        # The orphaned grader of w1 tore its stack down; w2 left none either.
        assert wait_until(lambda: stacks_of(cluster.tag) == [], 120), stacks_of(cluster.tag)
    finally:
        for i in (1, 2):
            subprocess.run(["make", "-s", "clean", f"CLEAN_PREFIX={cluster.prefix(i)}-"],
                           cwd=REPO, capture_output=True)
