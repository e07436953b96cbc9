"""Course platforms, simulated here (docs/platforms.md; ARCHITECTURE.md Contract 7).

- Gradescope: `python -m grader export gradescope` makes the zip; an image is built
  from iolab-gradescope-base (Ubuntu 22.04, Python 3.10) the way Gradescope builds
  one (source/ from the zip, setup.sh as root, offline); each submission runs in a
  fresh container laid out as Gradescope's: network off, 768 MiB, half a CPU.
- PrairieLearn: the image of docker/prairielearn-image.sh, run as PrairieLearn's
  grader host runs it: /grade mounted, no network, 2 GiB, 1024 pids, 0.9 CPU.
- The sandbox (grader/sandbox.py) and the formats, without Docker.
Every container and test image is labelled org.iolab.project=iolab and removed.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
import uuid
import zipfile
from pathlib import Path

import jsonschema
import pytest
from conftest import REPO, SERVERS, lab_variant, write_lab

from grader import sandbox
from grader.export import autograde, prairielearn
from grader.export.gradescope import unmet_requirements
from grader.labspec import load_lab
from grader.outcome import CheckResult, Outcome
from grader.report import RunReport

HOSTILE = Path(__file__).resolve().parent / "hostile"
SCHEMA = json.loads((Path(__file__).parent / "gradescope_results.schema.json").read_text())
QUESTION = REPO / "docs" / "prairielearn" / "questions" / "lab3-select"
LABEL = "org.iolab.project=iolab"
BASIC = {"check": "line.basic", "points": 1}
CONCURRENT = {"check": "robust.concurrent", "points": 1, "clients": 5, "rounds": 2}
HOSTILE_LAB = {"lab": "lab-hostile", "title": "hostile submissions on a platform", "exercises": [
    {"id": "forger", "title": "forger", "model": "thread", "path": "forger", "checks": [BASIC]},
    {"id": "forkbomb", "title": "fork bomb", "model": "thread", "path": "forkbomb",
     "limits": {"pids": 64, "timeout": 90}, "checks": [BASIC]},
    {"id": "memhog", "title": "memory hog", "model": "thread", "path": "memhog",
     "limits": {"memory": "64m"}, "checks": [BASIC, CONCURRENT]},
    {"id": "escaper", "title": "escaper", "model": "thread", "path": "escaper",
     "checks": [BASIC, CONCURRENT]},
]}


def export(*args: str) -> subprocess.CompletedProcess:
    """`python -m grader export ...` as an instructor runs it."""
    return subprocess.run([sys.executable, "-m", "grader", "export", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=300)


def validate(data: dict) -> None:
    jsonschema.validate(data, SCHEMA, cls=jsonschema.Draft202012Validator)


def by_name(data: dict) -> dict[str, dict]:
    return {t["name"]: t for t in data["tests"]}


def fake_wheelhouse(folder: Path) -> Path:
    folder.mkdir()
    (folder / "requirements.txt").write_text("locust\n")
    with zipfile.ZipFile(folder / "demo-1.0-py3-none-any.whl", "w") as whl:
        whl.writestr("demo-1.0.dist-info/METADATA", "Name: demo\nVersion: 1.0\n\n")
    return folder


def standalone_select_server(path: Path) -> Path:
    """servers/select_server.py with lineproto.py inlined: one file to upload."""
    def body(name: str) -> list[str]:
        return [line for line in (SERVERS / name).read_text().splitlines()
                if line.strip() != "from __future__ import annotations"
                and not line.startswith("from lineproto import")]
    path.write_text("\n".join(["from __future__ import annotations", *body("lineproto.py"),
                               *body("select_server.py")]) + "\n")
    return path


# --- without Docker: the zip's layout, the formats, the sandbox ---------------------

def test_the_zip_follows_gradescopes_contract(tmp_path):
    wheels = fake_wheelhouse(tmp_path / "wheels")
    out = tmp_path / "autograder.zip"
    proc = export("gradescope", "lab-3", str(out), "--exercise", "select", "--wheels",
                  str(wheels))
    assert proc.returncode == 0, proc.stderr
    with zipfile.ZipFile(out) as archive:
        names = archive.namelist()
        modes = {i.filename: i.external_attr >> 16 for i in archive.infolist()}
        run = archive.read("run_autograder").decode()
        setup = archive.read("setup.sh").decode()
    # at the root of the archive, executable, as Gradescope finds them
    assert modes["setup.sh"] & 0o111 and modes["run_autograder"] & 0o111
    assert {"iolab/grader/cli.py", "iolab/grader/sandbox.py", "iolab/labs/lab-3/lab.yaml",
            "iolab/servers/select_server.py", "wheels/requirements.txt",
            "wheels/demo-1.0-py3-none-any.whl"} <= set(names)
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    assert not [n for n in names if n.startswith("iolab/labs/") and "lab-3" not in n]
    assert "LAB=lab-3" in run and "EXERCISES=(select)" in run
    assert not re.search(r"@[A-Z]+@", run + setup)  # every placeholder filled in
    assert "IOLAB_SANDBOX=1" in run and "chmod 700 /autograder" in run
    assert "--no-index" in setup and "--target site" in setup  # offline, beside python3


@pytest.mark.parametrize("args, words", [
    (["lab-0", "x.zip"], "module lab"),
    (["lab-3", "x.zip", "--exercise", "nope"], "no exercise nope"),
    (["lab-3", "x.tar"], "should end in .zip"),
])
def test_export_refuses_bad_input_in_one_line(tmp_path, args, words):
    wheels = fake_wheelhouse(tmp_path / "wheels")
    args[1] = str(tmp_path / args[1])
    proc = export("gradescope", *args, "--wheels", str(wheels))
    assert proc.returncode == 2 and words in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not list(tmp_path.glob("x.*"))


def test_the_sandbox_is_for_local_mode_only():
    proc = subprocess.run([sys.executable, "-m", "grader", "lab-3", "--sandbox"], cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "--sandbox is for --mode local" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_wheel_markers_are_judged_for_python_3_10(tmp_path):
    """pip download judges markers by the Python it runs on: tomli (python < 3.11)
    would be missing from a zip built on 3.11."""
    with zipfile.ZipFile(tmp_path / "locust-2.0-py3-none-any.whl", "w") as whl:
        whl.writestr("locust-2.0.dist-info/METADATA", "\n".join([
            "Name: locust", "Version: 2.0", 'Requires-Dist: tomli>=1.1.0; python_version < "3.11"',
            'Requires-Dist: newer; python_version >= "3.11"', "Requires-Dist: gevent>=22",
            'Requires-Dist: pytest; extra == "test"', "", "the description"]))
    with zipfile.ZipFile(tmp_path / "gevent-24.0-cp310-cp310-manylinux2014_x86_64.whl",
                         "w") as whl:
        whl.writestr("gevent-24.0.dist-info/METADATA", "Name: gevent\nVersion: 24.0\n\n")
    assert unmet_requirements(tmp_path) == ["tomli>=1.1.0"]


def test_autograde_writes_a_truthful_file_whatever_happens(tmp_path):
    """Before anything runs every check is "not graded"; a time budget that ran out
    says so; a missing file is bad input; a zipped folder is unwrapped."""
    lab = load_lab("lab-3")
    submission = copy_reference(tmp_path / "upload" / "lab3-folder")  # zipped as a folder
    out = tmp_path / "results.json"
    report = autograde.autograde("gradescope", lab, tmp_path / "upload", out, ["select"],
                                 0.0, tmp_path / "runs")
    data = json.loads(out.read_text())
    validate(data)
    select = next(ex for ex in lab.exercises if ex.id == "select")
    assert report is not None and data["score"] == 0 and len(data["tests"]) == len(select.checks)
    assert all("time budget of 0 s ran out" in t["output"] for t in data["tests"])
    assert autograde.unwrap(tmp_path / "upload", lab) == submission
    for platform in ("gradescope", "prairielearn"):
        autograde.autograde(platform, lab, tmp_path / "none" / "server.py", out, ["select"],
                            10.0, tmp_path / "runs")
        data = json.loads(out.read_text())
        assert "no server.py in your submission: upload server.py" in json.dumps(data)
    validate(autograde.gradescope_bad_input("x"))
    broken = tmp_path / "broken" / "server.py"
    broken.parent.mkdir()
    broken.write_text("def f(:\n")
    autograde.autograde("prairielearn", lab, broken, out, ["select"], 10.0, tmp_path / "runs")
    errors = json.loads(out.read_text())["format_errors"]
    assert len(errors) == 1 and errors[0].startswith("server.py is not valid Python: line 1:")


def synthetic_report(tmp_path: Path) -> RunReport:
    report = RunReport(load_lab("lab-3"), "20260101-000000-0001-abcd", tmp_path / "run",
                       "local", "linux")
    report.results = [
        CheckResult("select", "line.basic", "a line", 1.0, Outcome(True, figure="4/4 replies")),
        CheckResult("select", "line.split", "split", 2.0,
                    Outcome(False, expected="b'3 abc'", got="b'1 a'", hint="buffer")),
        CheckResult("select", "robust.eof", "eof", 2.0, Outcome.error("x" * 50_000)),
        CheckResult("select", "line.large", "large", 1.0, Outcome(True, figure="ok"),
                    visibility="hidden"),
    ]
    return report


def test_prairielearn_results_have_its_format(tmp_path):
    data = prairielearn.results(synthetic_report(tmp_path), "server output")
    assert data["gradable"] is True and data["score"] == pytest.approx(2 / 6, abs=1e-4)
    assert 0 <= data["score"] <= 1 and data["output"] == "server output"
    for test in data["tests"]:
        assert set(test) == {"name", "description", "points", "max_points", "message", "output"}
    tests = {t["name"]: t for t in data["tests"]}
    assert tests["select: split"]["points"] == 0 and tests["select: split"]["max_points"] == 2
    assert "expected b'3 abc', got b'1 a'" in tests["select: split"]["output"]
    assert tests["select: eof"]["message"].startswith("error") and \
        len(tests["select: eof"]["output"]) <= prairielearn.TEXT_CAP
    assert tests["select: large"]["output"] == "(details hidden by the instructor)"
    assert len(json.dumps(data).encode()) <= prairielearn.MAX_BYTES
    lesson = synthetic_report(tmp_path)
    lesson.results = [CheckResult("select-limit", "robust.fd_limit", "the lesson", 0.0,
                                  Outcome(True, figure="fails by design"), required=False)]
    assert prairielearn.results(lesson)["score"] == 1.0  # worth no points, passed: 100 %
    bad = prairielearn.bad_input("no server.py in your submission: upload server.py")
    assert bad["gradable"] is False and bad["format_errors"] == [
        "no server.py in your submission: upload server.py"]


def test_the_example_question_fits_prairielearn():
    info = json.loads((QUESTION / "info.json").read_text())
    uuid.UUID(info["uuid"])
    assert info["type"] == "v3" and info["gradingMethod"] == "External"
    options = info["externalGradingOptions"]
    assert options["enableNetworking"] is False and options["timeout"] <= 600
    script, lab, exercise, budget = options["entrypoint"].split()
    assert script == "/opt/iolab/run.sh"  # where docker/prairielearn-image.sh puts run.sh
    assert "cp grader/export/scripts/prairielearn/run.sh \"$ctx/iolab/run.sh\"" in (
        REPO / "docker" / "prairielearn-image.sh").read_text()
    assert exercise in [ex.id for ex in load_lab(lab).exercises]
    assert float(budget) + 60 <= options["timeout"]  # the last exercise ends in time
    assert options["serverFilesCourse"] == ["iolab/"]  # the references, kept private
    assert '<pl-file-upload file-names="server.py" optional-file-names="linebuf.py">' in (
        QUESTION / "question.html").read_text()


needs_root = pytest.mark.skipif(not hasattr(os, "getuid") or os.getuid() != 0,
                                reason="the sandbox switches uid: root only")


@needs_root
def test_the_sandbox_runs_the_server_as_a_limited_uid(tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("root only")
    secret.chmod(0o600)
    folder = tmp_path / "sub"
    folder.mkdir()
    (folder / "server.py").write_text(f"""\
import os, resource
print("uid", os.getuid(), os.getgid(), os.getgroups())
print("nproc", resource.getrlimit(resource.RLIMIT_NPROC))
print("cpu", resource.getrlimit(resource.RLIMIT_CPU))
print("core", resource.getrlimit(resource.RLIMIT_CORE))
print("oom", open("/proc/self/oom_score_adj").read().strip())
print("env", sorted(os.environ))
try:
    open({str(secret)!r}).read()
    print("secret READ")
except OSError:
    print("secret denied")
if os.fork() == 0:          # an escapee in a session of its own: kill_all finds it
    os.setsid()
    os.close(1); os.close(2)
    import time; time.sleep(60)
""")
    box = sandbox.Sandbox(folder, {"pids": 32, "timeout": 20, "cpus": 1.0, "nofile": 64})
    try:
        assert box.uid >= sandbox.UID_FLOOR and box.uid not in (1000, 65534)
        proc = subprocess.run([box.python(), "server.py"], cwd=box.work,
                              env=box.env(9999, "linux"), preexec_fn=box.preexec(None),
                              capture_output=True, text=True, timeout=30)
        out = proc.stdout
        assert f"uid {box.uid} {box.uid} []" in out, out + proc.stderr
        assert "nproc (32, 32)" in out and "cpu (20, 25)" in out and "core (0, 0)" in out
        assert "oom 1000" in out and "secret denied" in out
        assert "PYTHONPATH" in out and "IOLAB_SANDBOX" not in out  # nothing of ours leaks
        assert sandbox.live_pids(box.uid)  # the escapee
    finally:
        box.close()
    assert sandbox.live_pids(box.uid) == [] and not box.root.exists()


# --- Gradescope, simulated ----------------------------------------------------------

def docker(*args: str, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"docker {' '.join(args[:3])}: {proc.stderr[-2000:]}")
    return proc


def gradescope_image(zip_file: Path, workdir: Path, tag: str) -> str:
    """Build an autograder image as Gradescope does: the zip in /autograder/source,
    run_autograder copied up and dos2unix'ed, setup.sh run once as root; offline."""
    ctx = workdir / "ctx"
    with zipfile.ZipFile(zip_file) as archive:
        archive.extractall(ctx / "source")
    (ctx / "Dockerfile").write_text(
        "FROM iolab-gradescope-base:latest\n"
        f"LABEL {LABEL}\n"
        "ADD source /autograder/source\n"
        "RUN cp /autograder/source/run_autograder /autograder/run_autograder \\\n"
        " && dos2unix -q /autograder/run_autograder /autograder/source/setup.sh \\\n"
        " && chmod +x /autograder/run_autograder \\\n"
        " && bash /autograder/source/setup.sh\n")
    env = dict(os.environ, DOCKER_BUILDKIT="0")
    proc = subprocess.run(["docker", "build", "-q", "--network", "none", "-t", tag, str(ctx)],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return tag


@pytest.fixture(scope="session")
def gradescope(docker_engine, tmp_path_factory):
    """{lab: image} for a short lab-3 `select` and the hostile lab; removed at the end."""
    if docker("image", "inspect", "iolab-gradescope-base:latest", check=False).returncode:
        subprocess.run(["bash", "docker/gradescope-base.sh"], cwd=REPO, check=True, timeout=900)
    root = tmp_path_factory.mktemp("gradescope")
    lab_variant(root / "lab3", "lab-3", ["select"], duration=2)
    write_lab(root / "hostile" / "labs", "lab-hostile", HOSTILE_LAB)
    token = secrets.token_hex(4)
    images = {}
    try:
        for lab, labs in (("lab-3", root / "lab3" / "labs"), ("lab-hostile",
                                                               root / "hostile" / "labs")):
            out = root / lab / "autograder.zip"
            proc = subprocess.run([sys.executable, "-m", "grader", "export", "gradescope", lab,
                                   str(out)], cwd=REPO, env=dict(os.environ, IOLAB_LABS=str(labs)),
                                  capture_output=True, text=True, timeout=300)
            assert proc.returncode == 0, proc.stderr
            images[lab] = gradescope_image(out, root / lab, f"iolab-gs-test-{lab}:{token}")
        yield images
    finally:
        for image in images.values():
            docker("rmi", "-f", image, check=False)


def run_autograder(image: str, submission: Path, tmp: Path, *docker_args: str,
                   before: str = "") -> tuple[dict, str, float]:
    """One submission, as Gradescope runs it: a fresh container, root, /autograder,
    the metadata file, results/ empty; (results.json, what it printed, seconds)."""
    results = tmp / "results"
    results.mkdir()
    meta = tmp / "submission_metadata.json"
    meta.write_text(json.dumps({
        "id": 1, "created_at": "2026-11-29T10:00:00.000000-08:00", "submission_method": "upload",
        "assignment": {"id": 2, "title": "lab", "total_points": "23.0", "group_size": None,
                       "group_submission": False, "due_date": "2026-12-01T23:59:00-08:00"},
        "users": [{"email": "student@example.edu", "id": 3, "name": "A Student"}],
        "previous_submissions": []}))
    name = f"iolab-gs-run-{secrets.token_hex(4)}"
    lock = os.environ.get("IOLAB_LOAD_LOCK")  # load phases one at a time, machine-wide
    share = ["-v", f"{lock}:{lock}", "-e", f"IOLAB_LOAD_LOCK={lock}"] if lock else []
    if lock:
        Path(lock).touch()
    command = f"{before} /autograder/run_autograder" if before else "/autograder/run_autograder"
    started = time.monotonic()
    try:
        proc = subprocess.run(
            ["docker", "run", "--name", name, "--label", LABEL, "--network", "none",
             "--memory", "768m", "--memory-swap", "768m", "--cpus", "0.5", *share, *docker_args,
             "-v", f"{submission}:/autograder/submission",
             "-v", f"{meta}:/autograder/submission_metadata.json:ro",
             "-v", f"{results}:/autograder/results", image, "bash", "-c", command],
            capture_output=True, text=True, timeout=600)
    finally:
        docker("rm", "-f", name, check=False)
    seconds = time.monotonic() - started
    out = proc.stdout + proc.stderr
    print(out[-6000:])
    print(f"run_autograder: {seconds:.1f} s")
    assert proc.returncode == 0, out[-3000:]
    data = json.loads((results / "results.json").read_text())
    validate(data)
    return data, out, seconds


def copy_reference(folder: Path) -> Path:
    folder.mkdir(parents=True)
    shutil.copy(SERVERS / "select_server.py", folder / "server.py")
    shutil.copy(SERVERS / "lineproto.py", folder / "lineproto.py")
    return folder


@pytest.mark.docker
@pytest.mark.slow
def test_gradescope_gives_a_correct_submission_full_marks(gradescope, tmp_path):
    data, out, _ = run_autograder(gradescope["lab-3"], copy_reference(tmp_path / "sub"),
                                  tmp_path)
    most = sum(t["max_score"] for t in data["tests"])  # the instructor's hidden check too
    assert data["score"] == most and all(t["status"] == "passed" for t in data["tests"]), out
    assert [t["visibility"] for t in data["tests"]].count("after_due_date") == 1
    assert "unshare refused" in out  # Docker's default seccomp: no namespace of its own
    board = {e["name"]: e for e in data["leaderboard"]}
    assert board["select: correct replies/s"]["value"] > 0
    assert board["select: p99 latency ms"]["order"] == "asc"


@pytest.mark.docker
@pytest.mark.slow
def test_gradescope_grades_the_starter_check_by_check(gradescope, tmp_path):
    submission = tmp_path / "sub"
    shutil.copytree(REPO / "labs" / "lab-3" / "starter", submission)
    data, out, _ = run_autograder(gradescope["lab-3"], submission, tmp_path)
    tests = by_name(data)
    assert 0 < data["score"] < sum(t["max_score"] for t in data["tests"]), out
    assert tests["select: a line gets its length and itself back"]["status"] == "passed"
    split = tests["select: a line split over many segments"]
    assert split["status"] == "failed" and split["score"] == 0
    assert "expected" in split["output"] and "hint" in split["output"]


@pytest.mark.docker
@pytest.mark.slow
def test_gradescope_contains_hostile_submissions(gradescope, tmp_path):
    """In its own network namespace (seccomp=unconfined lets unshare work): a port on
    the container's loopback, outside that namespace, is out of the escaper's reach."""
    submission = tmp_path / "sub"
    for name in ("forger", "forkbomb", "memhog", "escaper"):
        shutil.copytree(HOSTILE / name, submission / name)
    (submission / "escaper" / "probe_port").write_text("8123")
    listener = ("python3 -c 'import socket; s = socket.socket(); "
                's.bind(("127.0.0.1", 8123)); s.listen(); c = s.accept(); '
                'print("LISTENER REACHED", flush=True)\' & sleep 0.5;')
    data, out, _ = run_autograder(gradescope["lab-hostile"], submission, tmp_path,
                                  "--security-opt", "seccomp=unconfined", before=listener)
    tests = by_name(data)
    assert "a network namespace of its own" in out and "LISTENER REACHED" not in out

    def zero_because(name: str, *words: str) -> None:
        test = tests[name]
        assert test["score"] == 0 and test["status"] == "failed", test
        for word in words:
            assert word in test["output"], (word, test["output"])

    zero_because("forger: a line gets its length and itself back", "expected")
    zero_because("forkbomb: a line gets its length and itself back",
                 "never accepted a connection", "limit 64 processes and threads")
    zero_because("memhog: a line gets its length and itself back",
                 "ran out of memory (MemoryError), limit 64 MiB")
    # the escaper serves right only when every attempt failed: reads, writes, signals, port
    assert tests["escaper: a line gets its length and itself back"]["score"] == 1, \
        tests["escaper: a line gets its length and itself back"]["output"]
    assert tests["escaper: many clients at once"]["score"] == 1
    assert data["score"] == 2 and "FORGED" not in json.dumps(data)
    assert not list((tmp_path / "results").glob("*.xml"))  # nothing forged beside it


# --- PrairieLearn, simulated --------------------------------------------------------

@pytest.fixture(scope="session")
def prairielearn_image(docker_engine):
    proc = subprocess.run(["bash", "docker/prairielearn-image.sh"], cwd=REPO,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout.strip().splitlines()[-1]


def prairielearn_job(tmp: Path, server: Path | None, *extra: Path) -> Path:
    """A job folder as PrairieLearn's host builds it: student/ (server.py and the
    question's optional files, e.g. linebuf.py), tests/, serverFilesCourse/ (the
    course's private iolab/servers: the references), data/data.json, no results/."""
    job = tmp / "job"
    for sub in ("student", "tests", "data", "serverFilesCourse/iolab/servers"):
        (job / sub).mkdir(parents=True)
    for reference in SERVERS.glob("*.py"):
        shutil.copy(reference, job / "serverFilesCourse" / "iolab" / "servers")
    if server is not None:
        shutil.copy(server, job / "student" / "server.py")
    for path in extra:
        shutil.copy(path, job / "student" / path.name)
    (job / "data" / "data.json").write_text(json.dumps({
        "params": {}, "correct_answers": {}, "submitted_answers": {}, "format_errors": {},
        "partial_scores": {}, "score": 0, "feedback": {}, "variant_seed": 1, "options": {},
        "raw_submitted_answers": {}, "gradable": True}))
    return job


def run_prairielearn(image: str, job: Path) -> tuple[dict, str]:
    info = json.loads((QUESTION / "info.json").read_text())["externalGradingOptions"]
    name = f"iolab-pl-run-{secrets.token_hex(4)}"
    started = time.monotonic()
    try:
        proc = subprocess.run(
            ["docker", "run", "--name", name, "--label", LABEL, "--network", "none",
             "--memory", "2g", "--memory-swap", "2g", "--cpu-period", "100000",
             "--cpu-quota", "90000", "--pids-limit", "1024", "--ulimit", "core=0:0",
             "--ipc", "private", "-v", f"{job}:/grade", image, *info["entrypoint"].split()],
            capture_output=True, text=True, timeout=info["timeout"])
    finally:
        docker("rm", "-f", name, check=False)
    out = proc.stdout + proc.stderr
    print(out[-4000:])
    print(f"PrairieLearn job: {time.monotonic() - started:.1f} s")
    # PrairieLearn reads results only after exit 0, at most 1 MiB, valid JSON
    assert proc.returncode == 0, out[-3000:]
    raw = (job / "results" / "results.json").read_bytes()
    assert len(raw) <= 1024 ** 2
    data = json.loads(raw)
    assert data["gradable"] is False or 0 <= data["score"] <= 1
    return data, out


@pytest.mark.docker
@pytest.mark.slow
def test_prairielearn_grades_correct_starter_hostile_and_bad_input(prairielearn_image,
                                                                   tmp_path):
    correct = standalone_select_server(tmp_path / "correct.py")
    data, _ = run_prairielearn(prairielearn_image, prairielearn_job(tmp_path / "c", correct))
    assert data["gradable"] and data["score"] == 1.0, data["message"]
    assert all(t["points"] == t["max_points"] for t in data["tests"])

    starter = REPO / "labs" / "lab-3" / "starter"  # server.py imports the framing module
    data, _ = run_prairielearn(prairielearn_image, prairielearn_job(
        tmp_path / "s", starter / "server.py", starter / "linebuf.py"))
    assert data["gradable"] and 0 < data["score"] < 1
    split = next(t for t in data["tests"] if "split over many segments" in t["name"])
    assert split["points"] == 0 and split["max_points"] == 2 and "expected" in split["output"]

    # the memory hog takes the container to its 2 GiB: the OOM killer takes it, not us
    hog = HOSTILE / "memhog" / "server.py"
    data, _ = run_prairielearn(prairielearn_image, prairielearn_job(tmp_path / "h", hog))
    assert data["gradable"] and data["score"] == 0
    first = data["tests"][0]
    assert "out of memory" in first["output"], first["output"]

    data, _ = run_prairielearn(prairielearn_image, prairielearn_job(tmp_path / "n", None))
    assert data["gradable"] is False
    assert data["format_errors"] == ["no server.py in your submission: upload server.py"]
