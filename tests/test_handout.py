"""The student handout (`python -m grader handout`): no answer ships, the instructor's
checks stay the instructor's, and the handout grades with its own files.

- no answer: every .py file of every lab's handout is started as a server (as the
  grader starts one) and put through the LINE/1 battery; none may pass it;
- instructor-only checks: left out of the handout with their parameters and files,
  run by the instructor's grading with their visibility in results.json;
- self-check: `python -m grader lab-3` run from inside a handout, with the handout's
  files, fails the starter with reasons and passes a correct server.
GitHub Classroom's workflow and batch over cloned handouts: test_classroom.py.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml
from conftest import ALL_LABS, LABS, SERVERS, grade, results_folder

from grader import handout
from grader.errors import UsageError
from grader.labspec import load_lab
from grader.proc import NotListening, start_server, stop_group
from grader.stage import run_network_stage

# The network stage's LINE/1 battery, cheapest and most telling first: a file is an
# answer only if it passes every one (framing, partial sends, EOF, resets, silence).
BATTERY = ["line.basic", "line.split", "line.pipelined", "line.large", "robust.eof",
           "robust.reset", "robust.silent_client", "robust.concurrent"]
ANSWERS = [*SERVERS.glob("*_server.py"), *LABS.glob("*/reference/**/*.py")]


@pytest.fixture(scope="module")
def handouts(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("handouts")
    return {lab: build(root / lab, lab) for lab in ALL_LABS}


def build(out: Path, lab: str) -> Path:
    handout.build(load_lab(lab), out)
    return out


def files(folder: Path, pattern: str = "*") -> list[Path]:
    return [p for p in folder.rglob(pattern) if ".git" not in p.relative_to(folder).parts
            and p.is_file()]


def passes_battery(path: Path, root: Path) -> str:
    """'' unless the file, run as the grader runs a server, passes the whole battery
    (then: which file). A file that does not listen within 2 s is no server."""
    env = {"IOLAB_OS": "linux", "PYTHONPATH": str(root / "servers" / "osprofile")}
    try:
        proc, port = start_server(path, env=env, wait=2.0)
    except NotListening:
        return ""
    try:
        for check in BATTERY:  # stop at the first failure: it is no answer
            result = run_network_stage(("127.0.0.1", port), [{"check": check}], 2.0,
                                       lambda: proc.poll() is None)
            if result["outcomes"][0]["status"] != "passed":
                return ""
        return str(path.relative_to(root))
    finally:
        stop_group(proc, grace=0)


def test_no_file_of_any_handout_passes_the_line1_battery(handouts):
    seen, todo = set(), []
    for root in handouts.values():
        for path in files(root, "*.py"):  # a file the same in every handout: run once
            key = (path.relative_to(root), hashlib.sha256(path.read_bytes()).hexdigest())
            if key not in seen:
                seen.add(key)
                todo.append((path, root))
    assert len(todo) > 50  # the grader's own files are among them
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = [a for a in pool.map(lambda job: passes_battery(*job), todo) if a]
    assert answers == []


def test_the_battery_finds_an_answer_when_one_is_there(handouts, tmp_path):
    """The no-answer test can fail: a reference server dropped into a handout passes."""
    root = tmp_path / "leaky"
    shutil.copytree(handouts["lab-3"], root, ignore=shutil.ignore_patterns(".git"))
    for name in ("select_server.py", "lineproto.py"):
        shutil.copy(SERVERS / name, root / "labs" / "lab-3" / "starter" / name)
    assert passes_battery(root / "labs" / "lab-3" / "starter" / "select_server.py", root)


@pytest.mark.parametrize("lab", ALL_LABS)
def test_a_handout_holds_no_answer_and_no_instructor_text(handouts, lab):
    root = handouts[lab]
    answers = {hashlib.sha256(p.read_bytes()).digest() for p in ANSWERS}
    shipped = files(root)
    assert not [p for p in shipped if hashlib.sha256(p.read_bytes()).digest() in answers]
    assert not [p for p in shipped if "reference" in p.relative_to(root).parts]
    assert sorted(p.name for p in (root / "servers").iterdir()) == [
        "osprofile", "platforms.py", "waitprobe"]
    spec = yaml.safe_load((root / "labs" / lab / "lab.yaml").read_text())
    assert all("reference" not in ex for ex in spec["exercises"])
    for readme in files(root, "README*.md"):
        text = readme.read_text()
        assert "SUBMISSION=servers/" not in text and "<!-- instructor" not in text, readme
        assert not re.search(r"servers/\w+_server\.py", text), f"{readme} names a reference"
    assert (root / ".git").is_dir() and (root / ".github/workflows/classroom.yml").is_file()
    students = (root / "README.md").read_text()  # for students: their two commands
    assert f"make {lab}  " in students and "no `make test` here" in students
    assert (root / "README.zh.md").is_file()
    git = subprocess.run(["git", "status", "--porcelain"], cwd=root, capture_output=True,
                         text=True)
    assert git.stdout == ""  # everything is in its one commit


@pytest.mark.parametrize("lab", ALL_LABS)
def test_every_exercise_of_a_handout_has_its_starter_file(handouts, lab):
    """What students are given stays given (lab-4's blocking-call lesson: its file is its
    own reference), and the handout's lab.yaml loads in the handout."""
    mine = load_lab(lab, handouts[lab] / "labs")
    assert [ex.id for ex in mine.exercises] == [ex.id for ex in load_lab(lab).exercises]
    for ex in mine.exercises:
        assert (mine.starter / ex.path / ex.entry).is_file(), f"{lab}/{ex.id}: {ex.entry}"


def test_instructor_only_checks_and_their_files_stay_out(handouts):
    lab3 = yaml.safe_load((handouts["lab-3"] / "labs/lab-3/lab.yaml").read_text())
    mine = load_lab("lab-3")
    hidden = [(ex.id, c.check) for ex in mine.exercises for c in ex.checks
              if c.visibility != "visible"]
    assert hidden == [("select", "robust.concurrent")]
    select = next(ex for ex in lab3["exercises"] if ex["id"] == "select")
    assert [c for c in select["checks"] if c.get("visibility", "visible") != "visible"] == []
    assert not [c for c in select["checks"] if c.get("clients") == 150]  # nor its parameters
    lab0 = handouts["lab-0"] / "labs" / "lab-0"
    assert sorted(p.name for p in (lab0 / "checks").iterdir()) == ["test_mylocal.py"]
    assert "old_thread_objects_are_kept" not in (lab0 / "lab.yaml").read_text()
    assert "old_thread_objects_are_kept" not in (lab0 / "checks/test_mylocal.py").read_text()
    assert load_lab("lab-0", handouts["lab-0"] / "labs").exercises  # it still loads


def test_visibility_is_validated_in_lab_yaml(tmp_path):
    from conftest import write_lab

    bad = {"lab": "lab-v", "title": "t", "exercises": [{
        "id": "a", "title": "a", "model": "select",
        "checks": [{"check": "line.basic", "points": 1, "visibility": "later"}]}]}
    with pytest.raises(UsageError, match=r"line \d+: visibility must be one of visible, hidden"):
        write_lab(tmp_path, "lab-v", bad)


def test_the_instructors_grading_runs_the_hidden_check_with_its_visibility(handouts, tmp_path):
    """lab-0 (a module lab: no server, seconds): the instructor's run has the
    after_due_date test and says so in results.json; the handout's run has not."""
    reference = str(LABS / "lab-0" / "reference" / "mylocal.py")
    mine = grade("lab-0", "--mode", "local", "--submission", reference)
    assert mine.returncode == 0, mine.stdout + mine.stderr
    tests = json.loads((results_folder(mine) / "results.json").read_text())["tests"]
    assert [t["visibility"] for t in tests].count("after_due_date") == 1
    theirs = subprocess.run([sys.executable, "-m", "grader", "lab-0", "--mode", "local",
                             "--submission", reference, "--results", str(tmp_path)],
                            cwd=handouts["lab-0"], capture_output=True, text=True, timeout=300)
    assert theirs.returncode == 0, theirs.stdout + theirs.stderr
    tests = json.loads((results_folder(theirs) / "results.json").read_text())["tests"]
    assert len(tests) == 5 and {t["visibility"] for t in tests} == {"visible"}


def test_a_handout_is_written_only_into_a_new_folder(tmp_path):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "x").write_text("mine")
    with pytest.raises(UsageError, match="not empty"):
        handout.build(load_lab("lab-3"), tmp_path / "taken")
    assert (tmp_path / "taken" / "x").read_text() == "mine"


def correct_select(tmp: Path) -> Path:
    """A correct select server, as a student would hand it in: one folder."""
    sub = tmp / "mine"
    sub.mkdir()
    shutil.copy(SERVERS / "select_server.py", sub / "server.py")
    shutil.copy(SERVERS / "lineproto.py", sub / "lineproto.py")
    return sub


def test_make_lab_3_in_the_handout_passes_a_correct_server(handouts, tmp_path):
    """The handout's own `make lab-3` (local mode, one exercise; PYTHON= skips its .venv)."""
    proc = subprocess.run(["make", "lab-3", "MODE=local", "EXERCISE=select",
                           f"PYTHON={sys.executable}", f"RESULTS={tmp_path / 'results'}",
                           f"SUBMISSION={correct_select(tmp_path)}"], cwd=handouts["lab-3"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "PASSED" in proc.stdout
    folder = results_folder(proc)
    assert str(folder).startswith(str(tmp_path))
    graded = json.loads((folder / "results.json").read_text())
    assert graded["extra_data"]["calibrations"]["select"]["source"] == "yardstick"
    tests = graded["tests"]
    assert not [t for t in tests if "instructor" in t["name"]]
    assert {t["extra_data"]["check"] for t in tests} >= {"load.throughput", "load.latency"}
    assert all(t["status"] == "passed" for t in tests)  # judged against the yardstick


def network_only(root: Path, tmp: Path) -> Path:
    """The handout's own lab-3, select only, without its load phase (the local test
    above covers the load phase against the yardstick): a labs folder for IOLAB_LABS."""
    spec = yaml.safe_load((root / "labs/lab-3/lab.yaml").read_text())
    spec["exercises"] = [dict(ex, checks=[c for c in ex["checks"]
                                          if not c["check"].startswith("load.")])
                         for ex in spec["exercises"] if ex["id"] == "select"]
    spec["exercises"][0].pop("load")
    labs = tmp / "labs"
    shutil.copytree(root / "labs/lab-3", labs / "lab-3")
    (labs / "lab-3/lab.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return labs


@pytest.mark.docker
def test_the_handout_grades_in_docker_with_its_own_stack(handouts, tmp_path, docker_engine):
    """One docker run: the handout's docker/ builds the image (nothing to do when it is
    current) and its compose.yaml runs the stack; the starter fails, with reasons."""
    root = clone(handouts["lab-3"], tmp_path / "clone")
    built = subprocess.run(["bash", "docker/build-images.sh"], cwd=root, capture_output=True,
                           text=True, timeout=900)
    assert built.returncode == 0, built.stdout + built.stderr
    proc = subprocess.run([sys.executable, "-m", "grader", "lab-3", "--mode", "docker",
                           "--results", str(tmp_path / "results")], cwd=root,
                          env={**os.environ, "IOLAB_LABS": str(network_only(root, tmp_path))},
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "starting the server (docker" in proc.stdout
    assert "FAIL" in proc.stdout and "hint:" in proc.stdout  # why, and what to try
    assert "PASS  a line gets its length and itself back" in proc.stdout


def clone(source: Path, target: Path) -> Path:
    subprocess.run(["git", "clone", "-q", str(source), str(target)], check=True)
    return target


def test_instructor_parts_of_a_readme_are_left_out_inline_and_on_lines_of_their_own():
    from grader.handout.build import students_text

    text = ("Reference:<!-- instructor --> `servers/x_server.py`<!-- /instructor -->.\n"
            "<!-- instructor -->A paragraph\nfor instructors.<!-- /instructor -->\n"
            "Students.\n")
    assert students_text(text) == "Reference:.\nStudents.\n"
