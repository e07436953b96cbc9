"""Shared fixtures and helpers, written once for every test module.

- start_server: a LINE/1 server file as a subprocess on a free port (stopped after).
- grade(...): `python -m grader ...` as a user runs it; results go to a temporary
  folder, never into the checkout.
- write_lab / lab_variant / reference_submission: labs and submissions under tmp.
- leftovers_of(run_id): what a run's own compose projects left (other stacks may
  share the engine: a student's `make lab-3`, a parallel test).
- docker_engine: skip without an engine, except under CI=true (then an error).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml
from longest_first import LongestFirst

from grader.labspec import Lab, lab_names, load_lab
from grader.paths import REPO
from grader.proc import NotListening, stop_group
from grader.proc import start_server as spawn_server

BROKEN = REPO / "tests" / "broken"
SERVERS = REPO / "servers"
LABS = REPO / "labs"
ALL_LABS = lab_names(LABS)  # discovered: a new lab is tested the moment it exists
RESULTS = Path(tempfile.mkdtemp(prefix="iolab-test-results-"))  # removed at session end
# Load phases one at a time across the whole run (pytest-xdist workers are processes
# of their own, so the lock is a file they share), as on a grading machine.
os.environ.setdefault("IOLAB_LOAD_LOCK",
                      str(Path(tempfile.gettempdir()) / f"iolab-tests-{os.getuid()}.lock"))


# The machine's calibration cache (grader/calibration.py) for this session only, never
# the user's ~/.cache: shared by the session's tests, removed at its end.
CALIBRATION_CACHE = Path(tempfile.mkdtemp(prefix="iolab-test-cache-"))
os.environ.setdefault("IOLAB_CACHE", str(CALIBRATION_CACHE))


@pytest.hookimpl(tryfirst=True)
def pytest_xdist_make_scheduler(config, log):
    """`-n N` (--dist load): the longest tests first, so the run does not end with one
    worker grading a lab while the others sit idle (tests/longest_first.py)."""
    if config.getvalue("dist") == "load":
        return LongestFirst(config, log)
    return None


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(RESULTS, ignore_errors=True)
    shutil.rmtree(CALIBRATION_CACHE, ignore_errors=True)


class ServerAddress(tuple):
    """(host, port) of a started server, with its pid (model checks read /proc/<pid>)."""

    pid: int


@pytest.fixture
def start_server():
    """start_server(path, os_name="linux", wait=10) -> (host, port) with .pid."""
    procs: list[subprocess.Popen] = []

    def start(path: Path, os_name: str = "linux", wait: float = 10.0) -> ServerAddress:
        try:
            proc, port = spawn_server(path, env={"IOLAB_OS": os_name,
                                                 "PYTHONPATH": str(SERVERS / "osprofile")},
                                      stdout=subprocess.PIPE, wait=wait)
        except NotListening as exc:
            raise RuntimeError(str(exc))
        procs.append(proc)
        addr = ServerAddress(("127.0.0.1", port))
        addr.pid = proc.pid
        return addr

    yield start
    for proc in procs:
        stop_group(proc, grace=0)


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


def grade(*args: str, timeout: float = 600, **kwargs) -> subprocess.CompletedProcess:
    """Run `python -m grader ...` as a user would; returns the finished process.
    A grading run writes under a temporary folder unless --results is given."""
    args = list(args)
    if args and args[0] not in ("checks", "stage") and "--results" not in args:
        args += ["--results", str(RESULTS)]
    return subprocess.run([sys.executable, "-m", "grader", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout, **kwargs)


def results_folder(proc: subprocess.CompletedProcess) -> Path:
    """The run folder a `grade(...)` printed ("results: <folder>")."""
    line = next(x for x in proc.stdout.splitlines() if x.startswith("results: "))
    return Path(line.split(": ", 1)[1])


def project_prefix(run_id: str) -> str:
    return re.sub(r"[^a-z0-9_-]", "-", f"iolab-{run_id}".lower())


def leftovers_of(run_id: str) -> list[str]:
    """Containers, networks and volumes of this run's compose projects still present."""
    prefix, found = project_prefix(run_id), []
    for kind, fmt in (("ps -a", '{{.Label "com.docker.compose.project"}}'),
                      ("network ls", '{{.Label "com.docker.compose.project"}}'),
                      ("volume ls", '{{.Label "com.docker.compose.project"}}')):
        out = subprocess.run(["docker", *kind.split(), "--filter",
                              "label=com.docker.compose.project", "--format", fmt],
                             capture_output=True, text=True).stdout
        found += [f"{kind.split()[0]} of {p}" for p in out.split() if p.startswith(prefix)]
    return found


# The smallest valid lab: one select exercise, one check. Tests replace its parts
# (a line, a key) to make the lab they need, e.g. LAB_X.replace("line.basic", "...").
LAB_X = """\
lab: lab-x
title: t
exercises:
  - id: select
    title: t
    model: select
    checks:
      - {check: line.basic, points: 1}
"""


def write_lab(labs: Path, name: str, spec: str | dict) -> Lab:
    """A lab.yaml (text or data) as labs/<name>/lab.yaml; returns it loaded."""
    (labs / name).mkdir(parents=True, exist_ok=True)
    text = spec if isinstance(spec, str) else yaml.safe_dump(spec, sort_keys=False,
                                                            allow_unicode=True)
    (labs / name / "lab.yaml").write_text(text, encoding="utf-8")
    return load_lab(name, labs)


def lab_variant(tmp: Path, name: str, exercises: list[str] | None = None,
                duration: float | None = 2, params: dict[str, dict] | None = None,
                drop_load: bool = False) -> Lab:
    """labs/<name> copied under tmp/labs (starter and all), made quicker to grade:
    only `exercises` (default: all), a `duration` s load phase, named checks'
    parameters set ({check: {name: value}}, e.g. a shorter reply timeout), or no
    load phase at all (`drop_load`)."""
    labs = tmp / "labs"
    shutil.copytree(LABS / name, labs / name, ignore=shutil.ignore_patterns("__pycache__"))
    spec = yaml.safe_load((LABS / name / "lab.yaml").read_text(encoding="utf-8"))
    spec = {k: v for k, v in spec.items() if not k.startswith("x-")}
    spec["exercises"] = [ex for ex in spec["exercises"] if not exercises or ex["id"] in exercises]
    for ex in spec["exercises"]:
        ex["checks"] = flat(ex["checks"])
        if drop_load:
            ex["checks"] = [c for c in ex["checks"] if not c["check"].startswith("load.")]
            ex.pop("load", None)
        elif ex.get("load") and duration:
            ex["load"] = dict(ex["load"], duration=duration)
        ex["checks"] = [dict(c, **(params or {}).get(c["check"], {})) for c in ex["checks"]]
    return write_lab(labs, name, spec)


def flat(items: list) -> list:
    """A list with the lists inside it spliced in (`[*battery, *under_load]` in lab.yaml)."""
    return [x for item in items for x in (flat(item) if isinstance(item, list) else [item])]


def reference_submission(tmp: Path, lab: str | Lab) -> Path:
    """A submission folder with every exercise's reference in that exercise's folder
    (a server's reference brings servers/lineproto.py along)."""
    lab = load_lab(lab) if isinstance(lab, str) else lab
    sub = tmp / "submission"
    for ex in lab.exercises:
        folder = sub / ex.path
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / ex.reference, folder / ex.entry)
        if ex.kind == "server":
            shutil.copy2(SERVERS / "lineproto.py", folder / "lineproto.py")
    return sub


def models_submission(tmp: Path, models: list[str]) -> Path:
    """One sub-folder per reference model: server.py + lineproto.py."""
    root = tmp / "submission"
    for model in models:
        (root / model).mkdir(parents=True)
        shutil.copy(SERVERS / f"{model}_server.py", root / model / "server.py")
        shutil.copy(SERVERS / "lineproto.py", root / model / "lineproto.py")
    return root


def quiet(message: str) -> None:
    """progress() for tests: say nothing."""


def grader_crashed(out: str) -> bool:
    """Whether the grader itself raised: a traceback at the start of a line. A student
    server's traceback quoted in a log tail ("        | Traceback ...") is the server's."""
    return re.search(r"^Traceback \(most recent call last\)", out, re.M) is not None
