"""`make bench-batch` in small: the class it assembles, and a --smoke run (local mode,
select only, 1 s load phases, 2 students) that writes consistent CSV and summary.md.
No timing is asserted: only that the figures agree with each other."""

from __future__ import annotations

import csv
import filecmp
import os
import subprocess
import sys

import pytest
from conftest import REPO

from bench.batch import assemble, broken_servers, lab_exercises


def test_the_class_is_made_of_the_projects_own_servers(tmp_path):
    students = assemble(tmp_path, correct=2, broken=7, starter=1)
    assert [s["student"] for s in students][:2] == ["correct-1", "correct-2"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(s["student"] for s in students)
    exercises = lab_exercises()
    assert {ex["path"] for ex in exercises} == {".", "poll", "epoll", "selectors"}
    for ex in exercises:  # each reference in its exercise's folder, lineproto.py beside it
        folder = tmp_path / "correct-1" / ex["path"]
        if ex["id"] != "select-limit":  # the same folder as select, the same server
            assert filecmp.cmp(folder / ex["entry"], REPO / ex["reference"], shallow=False)
        assert (folder / "lineproto.py").is_file()
    broken = [s for s in students if s["kind"] == "broken"]
    servers = broken_servers()
    assert "flawed.py" not in {p.name for p in servers} and "correct.py" not in {
        p.name for p in servers}
    assert [s["source"] for s in broken] == [
        str(servers[i % len(servers)].relative_to(REPO)) for i in range(7)]  # cycles round
    for s in broken:
        for ex in exercises:
            folder = tmp_path / s["student"] / ex["path"]
            assert filecmp.cmp(folder / ex["entry"], REPO / s["source"], shallow=False)
            assert (folder / "flawed.py").is_file()
    assert filecmp.cmp(tmp_path / "starter-1" / "poll" / "server.py",
                       REPO / "labs" / "lab-3" / "starter" / "poll" / "server.py", shallow=False)
    assert {s["expected"] for s in students if s["kind"] != "correct"} == {"not passed"}


def read(path):
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def test_smoke_run_writes_consistent_figures(tmp_path):
    out, earlier = tmp_path / "out", tmp_path / "earlier"
    earlier.mkdir()  # an earlier run in which correct-1 failed line.basic: a flip to list
    (earlier / "checks.csv").write_text("label,run,student,exercise,check,status\n"
                                        "x,select,correct-1,select,line.basic,failed\n")
    env = dict(os.environ, TMPDIR=str(tmp_path))  # the class and batch folders stay in tmp_path
    proc = subprocess.run([sys.executable, "-m", "bench.batch", "--smoke", "--label", "smoke",
                           "--out", str(out), "--compare", str(earlier)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    (run,) = read(out / "runs.csv")
    assert (run["label"], run["run"], run["mode"], run["exercises"]) == (
        "smoke", "select", "local", "select")
    assert run["students"] == "2" and run["jobs"] == "2"
    hours = float(run["wall_s"]) / 3600
    assert float(run["students_per_hour"]) == pytest.approx(2 / hours, rel=0.01)
    assert len(run["per_student_s"].split()) == 2
    students = {s["student"]: s for s in read(out / "students.csv")}
    assert students["correct-1"]["verdict"] == "passed", students["correct-1"]
    (broken,) = [name for name in students if name.startswith("broken-1-")]
    assert students[broken]["verdict"] != "passed"
    assert sorted(map(float, run["per_student_s"].split())) == sorted(
        float(s["seconds"]) for s in students.values())
    checks = read(out / "checks.csv")
    assert {c["student"] for c in checks} == set(students)
    assert {c["status"] for c in checks if c["student"] == "correct-1"} == {"passed"}
    summary = (out / "summary.md").read_text()
    for words in ("students/hour", "## The machine", "load average", "## Commands",
                  "python -m bench.batch --smoke", "python -m grader batch lab-3",
                  "--mode local", "--exercise select", "Load phases shortened to 1 s"):
        assert words in summary, words
    assert "(unexpected)" not in summary
    assert "1 of 1 check results differ" in summary
    assert "| select | correct-1 | select | line.basic | failed | passed |" in summary
    assert sorted(p.name for p in tmp_path.iterdir()) == ["earlier", "out"]  # no tmp left


def test_bad_arguments_are_one_line_and_exit_2(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "bench.batch", "--runs", "nope",
                           "--out", str(tmp_path / "out")], cwd=REPO, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("error: --runs nope: choose from all, select")
    assert not (tmp_path / "out").exists()
