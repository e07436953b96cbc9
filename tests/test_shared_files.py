"""lab.yaml `shared:`: a module the student writes once at the top of the submission
(lab-3's linebuf.py) is run beside every exercise's server.py, in docker mode too
(where only the exercise's folder is mounted): the runner stages a copy."""

import os

import pytest
from conftest import write_lab

from grader.errors import UsageError
from grader.runner import with_shared

LAB = """
lab: %s
title: a lab whose exercises import one module
exercises:
  - id: poll
    title: t
    model: poll
    path: poll
    shared: [%s]
    checks: [{check: line.basic, points: 1}]
"""


def submission(tmp_path):
    sub = tmp_path / "sub"
    (sub / "poll").mkdir(parents=True)
    (sub / "linebuf.py").write_text("FRAMING = 'top'\n")
    (sub / "poll" / "server.py").write_text("import linebuf\n")
    os.chmod(sub / "poll" / "server.py", 0o600)
    return sub


def test_a_shared_file_is_staged_beside_the_exercise_readable_by_all(tmp_path):
    sub = submission(tmp_path)
    folder = with_shared(sub / "poll", sub, ["linebuf.py"], tmp_path / "run" / "poll" / "sub")
    assert folder == tmp_path / "run" / "poll" / "sub"
    assert (folder / "linebuf.py").read_text() == "FRAMING = 'top'\n"
    assert (folder / "server.py").stat().st_mode & 0o444 == 0o444  # the server's uid reads it
    assert not (sub / "poll" / "linebuf.py").exists()  # the submission is never changed


def test_the_exercise_folder_is_used_as_is_when_nothing_is_missing(tmp_path):
    sub = submission(tmp_path)
    (sub / "poll" / "linebuf.py").write_text("FRAMING = 'own'\n")  # its own copy wins
    assert with_shared(sub / "poll", sub, ["linebuf.py"], tmp_path / "staged") == sub / "poll"
    (sub / "linebuf.py").unlink()
    (sub / "poll" / "linebuf.py").unlink()  # missing: the server's ImportError will say so
    assert with_shared(sub / "poll", sub, ["linebuf.py"], tmp_path / "staged") == sub / "poll"


def test_a_shared_link_is_copied_as_a_link_never_read_through(tmp_path):
    sub = submission(tmp_path)
    (sub / "linebuf.py").unlink()
    (tmp_path / "secret").write_text("not the student's")
    (sub / "linebuf.py").symlink_to(tmp_path / "secret")
    folder = with_shared(sub / "poll", sub, ["linebuf.py"], tmp_path / "staged")
    assert (folder / "linebuf.py").is_symlink()


def test_lab_yaml_shared_names_files_at_the_top(tmp_path):
    lab = write_lab(tmp_path, "ok", LAB % ("ok", "linebuf.py"))
    assert lab.exercises[0].shared == ["linebuf.py"]
    with pytest.raises(UsageError, match="must be a file name at the top"):
        write_lab(tmp_path, "bad", LAB % ("bad", "../linebuf.py"))
