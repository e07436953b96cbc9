"""`python -m grader batch LAB DIR -j N`: a whole class in one command.

One grader process per submission, one results folder each, a class summary
(class.csv, summary.json, summary.md); a crash, a hang or bad input in one
submission is an error row and the batch goes on; exit 0 when the batch ran,
2 on bad input.
"""

from __future__ import annotations

import csv
import json
import shutil
import signal
import sys
from pathlib import Path

import pytest
from conftest import REPO, grade, leftovers_of

import grader.cli
import grader.job

# Fails every check quickly: a wrong reply, then it hangs up (and never waits long).
GARBAGE = """\
import os, socket
server = socket.create_server((os.environ.get("HOST", "0.0.0.0"), int(os.environ["PORT"])))
while True:
    conn, _ = server.accept()
    conn.settimeout(0.2)
    try:
        conn.recv(65536)
        conn.sendall(b"? wrong\\n")
    except OSError:
        pass
    conn.close()
"""


def make_class(root: Path) -> Path:
    subs = root / "submissions"
    (subs / "alice").mkdir(parents=True)  # the reference: passes
    shutil.copy(REPO / "servers" / "select_server.py", subs / "alice" / "server.py")
    shutil.copy(REPO / "servers" / "lineproto.py", subs / "alice" / "lineproto.py")
    (subs / "bob" / "bob-lab3-upload").mkdir(parents=True)  # an unzipped upload, one level down
    (subs / "bob" / "bob-lab3-upload" / "server.py").write_text(GARBAGE)
    (subs / "carol").mkdir()  # bad input: no server.py
    (subs / "carol" / "notes.txt").write_text("I will finish it tomorrow")
    (subs / ".DS_Store").write_text("")
    return subs


def summary_of(root: Path, lab: str = "lab-3") -> tuple[Path, dict, list[dict]]:
    (batch,) = (root / lab).glob("batch-*")
    data = json.loads((batch / "summary.json").read_text())
    with (batch / "class.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    return batch, data, rows


@pytest.mark.slow
def test_batch_grades_every_submission_and_writes_the_class_summary(tmp_path):
    subs = make_class(tmp_path)
    proc = grade("batch", "lab-3", str(subs), "-j", "2", "--mode", "local",
                 "--exercise", "select", "--results", str(tmp_path / "out"), timeout=400)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    batch, data, rows = summary_of(tmp_path / "out")
    students = {s["student"]: s for s in data["students"]}
    assert list(students) == ["alice", "bob", "carol"]
    assert students["alice"]["verdict"] == "passed", students["alice"]
    assert students["alice"]["score"] == students["alice"]["max_score"] > 0
    assert students["bob"]["verdict"] == "failed"
    bob = students["bob"]["exercises"]["select"]["checks"]
    assert {bob[c] for c in bob if c.startswith(("line.", "load."))} == {"failed"}
    assert students["carol"]["verdict"] == "error"
    assert "no server.py" in students["carol"]["error"]
    assert data["counts"] == {"passed": 1, "failed": 1, "error": 1}
    for name in ("alice", "bob"):  # Gradescope's results.json and the rest, per student
        for file in ("results.json", "junit.xml", "report.html", "grader.log"):
            assert (batch / name / file).exists(), (name, file)
        assert students[name]["results"] == f"{name}/results.json"
    assert students["alice"]["exercises"]["select"]["checks"]["load.throughput"] == "passed"
    assert [r["student"] for r in rows] == ["alice", "bob", "carol"]
    assert rows[0]["verdict"] == "passed" and rows[0]["select verdict"] == "passed"
    assert rows[1]["select verdict"] == "failed" and rows[2]["verdict"] == "error"
    top = f"{students['alice']['max_score']:g}"
    assert f"| alice | {top}/{top} | passed |" in (batch / "summary.md").read_text()
    assert "1 passed, 1 failed, 1 errors" in proc.stdout


@pytest.fixture
def restore_sigterm():
    previous = signal.getsignal(signal.SIGTERM)
    yield
    signal.signal(signal.SIGTERM, previous)


def test_a_crash_or_a_hang_in_one_submission_is_an_error_row(tmp_path, monkeypatch,
                                                             restore_sigterm):
    subs = tmp_path / "submissions"
    for name in ("crashes", "hangs", "fine"):
        (subs / name).mkdir(parents=True)
        (subs / name / "server.py").write_text("")
    fake = {
        "crashes": "import os; os.abort()",
        "hangs": "import time; time.sleep(600)",
        "fine": "print('error: not really a grader'); raise SystemExit(1)",
    }
    monkeypatch.setattr(grader.job, "command_for",
                        lambda spec, submission, results: [sys.executable, "-c",
                                                           fake[submission.name]])
    code = grader.cli.main(["batch", "lab-3", str(subs), "-j", "3", "--mode", "local",
                            "--timeout", "3", "--results", str(tmp_path / "out")])
    assert code == 0
    _, data, rows = summary_of(tmp_path / "out")
    students = {s["student"]: s for s in data["students"]}
    assert {s["verdict"] for s in students.values()} == {"error"}
    assert "SIGABRT" in students["crashes"]["error"] or "-6" in students["crashes"]["error"]
    assert "timed out after 3 s" in students["hangs"]["error"]
    assert "wrote no run.json" in students["fine"]["error"]
    assert len(rows) == 3


@pytest.mark.parametrize("args, words", [
    (["lab-3", "{tmp}/nope"], "does not exist"),
    (["lab-3", "{tmp}/empty"], "holds no submissions"),
    (["lab-3", "{tmp}/empty", "-j", "0"], "-j must be at least 1"),
    (["lab-99", "{tmp}/empty"], "unknown lab"),
    (["lab-3", "{tmp}/class", "--exercise", "nope"], "no exercise"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, words):
    (tmp_path / "empty").mkdir()
    (tmp_path / "class" / "alice").mkdir(parents=True)
    argv = [a.format(tmp=tmp_path) for a in args]
    proc = grade("batch", *argv, "--mode", "local", "--results", str(tmp_path / "out"))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0], lines
    assert not (tmp_path / "out").exists()


@pytest.mark.docker
def test_docker_batch_one_stack_per_submission_and_nothing_left(docker_engine, tmp_path):
    subs = make_class(tmp_path)
    shutil.rmtree(subs / "bob")
    proc = grade("batch", "lab-3", str(subs), "-j", "2", "--exercise", "select",
                 "--results", str(tmp_path / "out"), timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    batch, data, _ = summary_of(tmp_path / "out")
    students = {s["student"]: s for s in data["students"]}
    assert students["alice"]["verdict"] == "passed", students["alice"]
    assert students["carol"]["verdict"] == "error"
    run_id = json.loads((batch / "alice" / "results.json").read_text())["extra_data"]["run_id"]
    assert leftovers_of(run_id) == []
