"""A class folder that knows what is current (Contract 8): regrades of what is new
or stale only, a resumed interruption, a results.json for every grading, GitHub
Classroom folders, similar submissions, and summary.html in headless Chromium.

The batches here grade a one-exercise lab in local mode (a few seconds a
student); summary.html's test grades lab-3's select with a short load phase.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import jsonschema
import pytest
import yaml
from conftest import BROKEN, REPO, SERVERS, lab_variant, write_lab
from test_batch import GARBAGE
from test_report_html import chromium, colour_count, pixel_colours, read_png  # noqa: F401 - a fixture

from grader import charts
from grader.batch import find_submissions
from grader.fingerprint import grader_version, lab_hash, submission_hash
from grader.labspec import load_lab
from grader.similarity import REFERENCE, find_similar

# One exercise, two network checks: a student graded in about two seconds.
QUICK_LAB = """\
lab: lab-q
title: quick
exercises:
  - id: select
    title: t
    model: select
    checks:
      - {check: line.basic, points: 1}
      - {check: line.split, points: 2}
"""
SCHEMA = json.loads((REPO / "tests" / "gradescope_results.schema.json").read_text())


def correct(folder: Path) -> Path:
    folder.mkdir(parents=True)
    shutil.copy(SERVERS / "select_server.py", folder / "server.py")
    shutil.copy(SERVERS / "lineproto.py", folder / "lineproto.py")
    return folder


def broken(folder: Path, flaw: str) -> Path:
    folder.mkdir(parents=True)
    shutil.copy(BROKEN / f"{flaw}.py", folder / "server.py")
    shutil.copy(BROKEN / "flawed.py", folder / "flawed.py")
    return folder


def batch(tmp: Path, subs: Path, *args: str, labs: Path | None = None, wait: bool = True,
          timeout: float = 300):
    """`python -m grader batch` as an instructor runs it, into tmp/class."""
    env = dict(os.environ)  # the suite's load lock (conftest): one load phase at a time
    if labs:
        env["IOLAB_LABS"] = str(labs)
    cmd = [sys.executable, "-m", "grader", "batch", "lab-q" if labs else "lab-3", str(subs),
           "--mode", "local", "--out", str(tmp / "class"), "--no-similarity", *args]
    if not wait:
        return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, start_new_session=True)
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=timeout)


def class_rows(root: Path) -> list[dict]:
    with (root / "class.csv").open(newline="") as fh:
        return list(csv.DictReader(fh))


def run_ids(root: Path) -> dict[str, str]:
    """Which grading run each student's current results come from."""
    out = {}
    for row in class_rows(root):
        data = json.loads((root / row["student"] / "results.json").read_text())
        out[row["student"]] = data["extra_data"].get("run_id", "none")
    return out


@pytest.fixture
def quick(tmp_path) -> Path:
    write_lab(tmp_path / "labs", "lab-q", QUICK_LAB)
    return tmp_path / "labs"


@pytest.mark.slow
def test_a_rerun_grades_only_what_is_new_or_stale(tmp_path, quick):
    subs = tmp_path / "subs"
    correct(subs / "alice")
    broken(subs / "bob", "no_framing")
    first = batch(tmp_path, subs, labs=quick)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "2 to grade, 0 current" in first.stdout
    root = tmp_path / "class"
    before = run_ids(root)
    rows = {r["student"]: r for r in class_rows(root)}
    assert rows["alice"]["verdict"] == "passed" and rows["bob"]["verdict"] == "failed"
    for row in rows.values():  # when, by which grader, where: on every row
        assert row["graded_at"].endswith("Z") and row["grader_version"] == grader_version()
        assert row["graded_on"]
    assert json.loads((root / "alice" / "grade.json").read_text())["key"] == {
        "submission": submission_hash(subs / "alice"), "lab": lab_hash(load_lab("lab-q", quick)),
        "grader": grader_version()}

    again = batch(tmp_path, subs, labs=quick)  # nothing changed: nothing graded
    assert "0 to grade, 2 current (kept)" in again.stdout, again.stdout
    assert run_ids(root) == before

    (subs / "bob" / "server.py").write_text((SERVERS / "select_server.py").read_text())
    shutil.copy(SERVERS / "lineproto.py", subs / "bob" / "lineproto.py")
    (subs / "carol.py").write_text(GARBAGE)  # a new student, a lone file
    third = batch(tmp_path, subs, labs=quick)
    assert "2 to grade, 1 current" in third.stdout, third.stdout
    now = run_ids(root)
    assert now["alice"] == before["alice"] and now["bob"] != before["bob"]
    rows = {r["student"]: r for r in class_rows(root)}
    assert [rows[s]["verdict"] for s in ("alice", "bob", "carol")] == ["passed", "passed",
                                                                        "failed"]

    lab_yaml = quick / "lab-q" / "lab.yaml"  # the lab changed: everyone is stale
    lab_yaml.write_text(lab_yaml.read_text().replace("points: 2", "points: 3"))
    fourth = batch(tmp_path, subs, labs=quick)
    assert "3 to grade, 0 current" in fourth.stdout, fourth.stdout
    assert {r["max_score"] for r in class_rows(root)} == {"4"}
    forced = batch(tmp_path, subs, "--regrade", labs=quick)
    assert "3 to grade, 0 current" in forced.stdout, forced.stdout
    assert len(class_rows(root)) == 3


def test_a_lab_is_keyed_by_the_files_it_names(tmp_path):
    hidden = tmp_path / "hidden_test.py"
    hidden.write_text("def test_x():\n    assert True\n")
    lab = write_lab(tmp_path / "labs", "lab-m", {
        "lab": "lab-m", "title": "t", "exercises": [{
            "id": "m", "title": "t", "kind": "module", "model": "threadlocal",
            "entry": "mylocal.py",
            "checks": [{"check": "module.pytest", "points": 1, "tests": str(hidden)}]}]})
    before = lab_hash(lab)
    assert lab_hash(lab) == before
    hidden.write_text("def test_x():\n    assert 1 + 1 == 2\n")  # the hidden tests changed
    assert lab_hash(lab) != before


@pytest.mark.slow
def test_an_interrupted_batch_resumes_and_leaves_no_grader(tmp_path, quick):
    subs = tmp_path / "subs"
    for name in ("a1", "a2", "a3", "a4", "a5"):
        correct(subs / name)
    root = tmp_path / "class"
    proc = batch(tmp_path, subs, "-j", "1", labs=quick, wait=False)
    deadline = time.monotonic() + 120
    while not list(root.glob("*/grade.json")) and time.monotonic() < deadline:
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGTERM)  # as a platform stops a job
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, out
    assert "run the same command again to resume" in out
    done = {p.parent.name for p in root.glob("*/grade.json")}
    assert 1 <= len(done) < 5
    assert graders_of(root, subs) == []

    proc = batch(tmp_path, subs, "-j", "1", labs=quick, wait=False)  # now killed outright
    while len(list(root.glob("*/grade.json"))) == len(done) and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(0.5)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    assert wait_until(lambda: graders_of(root, subs) == [], 20), graders_of(root, subs)
    done_now = {p.parent.name for p in root.glob("*/grade.json")}
    assert done <= done_now

    resumed = batch(tmp_path, subs, "-j", "2", labs=quick)
    assert resumed.returncode == 0, resumed.stdout
    assert f"{5 - len(done_now)} to grade, {len(done_now)} current" in resumed.stdout
    rows = class_rows(root)
    assert sorted(r["student"] for r in rows) == ["a1", "a2", "a3", "a4", "a5"]
    assert {r["verdict"] for r in rows} == {"passed"}
    assert not (root / ".incoming").exists()


def graders_of(*folders: Path) -> list[str]:
    """Processes still at work on these folders: graders (named in their command
    line) and the servers they started (running in a submission folder)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            args = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            cwd = os.readlink(proc / "cwd")
        except OSError:
            continue
        if any(str(f) in args or cwd.startswith(str(f)) for f in folders):
            found.append(f"{proc.name} {args[:200]} (in {cwd})")
    return found


def wait_until(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.25)
    return condition()


def test_a_grading_that_did_not_finish_still_gets_a_results_json(tmp_path, monkeypatch):
    import grader.cli
    import grader.job
    subs = tmp_path / "submissions"
    for name in ("crashes", "hangs"):
        (subs / name).mkdir(parents=True)
        (subs / name / "server.py").write_text("")
    fake = {"crashes": "import os; os.abort()", "hangs": "import time; time.sleep(600)"}
    monkeypatch.setattr(grader.job, "command_for", lambda spec, submission, results: [
        sys.executable, "-c", fake[submission.name]])
    previous = signal.getsignal(signal.SIGTERM)
    try:
        code = grader.cli.main(["batch", "lab-3", str(subs), "-j", "2", "--mode", "local",
                                "--timeout", "3", "--out", str(tmp_path / "class"),
                                "--no-similarity"])
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert code == 0
    for name in fake:
        data = json.loads((tmp_path / "class" / name / "results.json").read_text())
        jsonschema.validate(data, SCHEMA)
        assert data["extra_data"]["status"] == "error" and not data["extra_data"]["passed"]
        assert "NOT GRADED" in data["output"] and "not a grade of 0 points" in data["output"]
        assert all(t["status"] != "passed" for t in data["tests"])
    rows = {r["student"]: r for r in class_rows(tmp_path / "class")}
    assert {r["verdict"] for r in rows.values()} == {"error"}
    assert "timed out after 3 s" in rows["hangs"]["error"]


def test_github_classroom_clones_are_named_by_login_and_git_is_not_graded(tmp_path):
    subs = tmp_path / "lab-3-submissions"
    for login in ("alice", "bob-smith"):
        repo = subs / f"lab-3-{login}"
        (repo / ".git" / "objects").mkdir(parents=True)
        (repo / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
        shutil.copy(SERVERS / "select_server.py", repo / "server.py")
    found = find_submissions(subs)
    assert [s for s, _ in found] == ["alice", "bob-smith"]
    assert found[0][1] == subs / "lab-3-alice"  # the lab's files are at the top
    before = submission_hash(found[0][1])
    (subs / "lab-3-alice" / ".git" / "HEAD").write_text("ref: refs/heads/other\n")
    (subs / "lab-3-alice" / "__pycache__").mkdir()
    (subs / "lab-3-alice" / "__pycache__" / "server.cpython-311.pyc").write_bytes(b"\0")
    assert submission_hash(found[0][1]) == before  # version control is not graded
    (subs / "lab-3-alice" / "server.py").write_text("# changed\n")
    assert submission_hash(found[0][1]) != before


def test_similar_submissions_are_flagged_with_fragments_and_starter_code_is_not(tmp_path):
    subs = tmp_path / "subs"
    correct(subs / "alice")
    (subs / "bob").mkdir(parents=True)  # alice's server, names and comments changed
    text = (SERVERS / "select_server.py").read_text()
    (subs / "bob" / "server.py").write_text(
        text.replace("conn", "c").replace("sock", "s").replace("#", "# bob:"))
    (subs / "carol").mkdir()  # her own: the thread model
    (subs / "carol" / "server.py").write_text(GARBAGE)
    starter = REPO / "labs" / "lab-3" / "starter"
    shutil.copytree(starter, subs / "dave")  # two students who kept the starter as it is
    shutil.copytree(starter, subs / "erin")
    pairs = find_similar({p.name: p for p in subs.iterdir()}, [starter], threshold=0.5)
    found = {(p.a, p.b): p for p in pairs}
    assert ("alice", "bob") in found, [(p.a, p.b, p.share) for p in pairs]
    pair = found[("alice", "bob")]
    assert pair.share_b > 0.8  # bob's code is alice's (hers also holds lineproto.py)
    assert any(f.file == "server.py" and "select.select" in f.text for f in pair.fragments_a)
    assert any("select.select" in f.text for f in pair.fragments_b)
    assert ("alice", REFERENCE) in found and ("bob", REFERENCE) in found
    assert any(f.file == "servers/select_server.py" for f in found[("alice", REFERENCE)]
               .fragments_b)
    flagged = {name for p in pairs for name in (p.a, p.b)}
    assert not flagged & {"carol", "dave", "erin"}, pairs


@pytest.fixture(scope="module")
def graded_class(tmp_path_factory):
    """lab-3's select with a 2 s load phase: a correct student, a copy of them, a
    broken one, one whose grading errs (bad input); similarity on."""
    tmp = tmp_path_factory.mktemp("class")
    labs = lab_variant(tmp, "lab-3", ["select"], duration=2).folder.parent
    spec = labs / "lab-3" / "lab.yaml"  # lenient load thresholds: the page is under test,
    data = yaml.safe_load(spec.read_text())  # not a 2 s measurement on a busy machine
    data["exercises"][0]["load"]["thresholds"].update(min_rps_ratio=0.05, max_p95_ratio=50)
    spec.write_text(yaml.safe_dump(data, sort_keys=False))
    subs = tmp / "subs"
    correct(subs / "alice")
    correct(subs / "bob")
    broken(subs / "carol", "eof_ignored")
    (subs / "dave").mkdir()
    (subs / "dave" / "notes.txt").write_text("not done")
    env = dict(os.environ, IOLAB_LABS=str(labs))
    proc = subprocess.run([sys.executable, "-m", "grader", "batch", "lab-3", str(subs), "-j",
                           "2", "--mode", "local", "--out", str(tmp / "class")], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=400)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    return tmp / "class"


@pytest.mark.slow
def test_summary_html_shows_the_class_in_headless_chromium(chromium, graded_class):  # noqa: F811
    page = graded_class / "summary.html"
    summary = json.loads((graded_class / "summary.json").read_text())
    assert summary["counts"] == {"passed": 2, "failed": 1, "error": 1}
    similar = {(p["a"], p["b"]) for p in summary["similar"]}
    assert ("alice", "bob") in similar  # a flag only: both still passed
    dom = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu",
                          "--dump-dom", page.as_uri()], capture_output=True, text=True,
                         timeout=120).stdout
    for words in ("Score distribution", "each check's pass rate", "robust.eof",
                  "Throughput and p99 under load", "Errors: gradings without a verdict (1)",
                  "no server.py", "Similar submissions", "alice</b> and <b>bob",
                  grader_version()):
        assert words in dom, words
    shot = graded_class / "summary.png"
    subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu",
                    "--hide-scrollbars", "--window-size=1100,2200", f"--screenshot={shot}",
                    page.as_uri()], capture_output=True, text=True, timeout=120)
    width, height, rows, bpp = read_png(shot)
    assert (width, height) == (1100, 2200)
    seen = pixel_colours(rows, bpp)
    assert colour_count(seen, "#1a7f37") > 300, "no green PASS badges or pass-rate bars"
    assert colour_count(seen, "#cf222e") > 100, "no red FAIL badge or low pass rate"
    assert colour_count(seen, "#9a6700") > 50, "no ERROR badge"
    assert colour_count(seen, charts.SUBMISSION) > 300, "no bars or submission lines"
    assert colour_count(seen, charts.REFERENCE) > 30, "no reference line"
    print(f"screenshot: {shot}")
