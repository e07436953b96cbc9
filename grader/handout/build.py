"""Write a lab's student handout: a self-contained git repository, no answers in it.

What goes in (only what `make LAB` needs to grade a student's work):
  README.md, README.zh.md   for students (files/), the two commands
  Makefile, .gitignore      the student's verbs (files/Makefile)
  .github/workflows/classroom.yml   GitHub Classroom's autograding (files/)
  labs/LAB/                 the lab's instructions, starter/ and lab.yaml (labfile.py:
                            no reference:, no instructor-only check), minus reference/
                            folders and files only instructor-only checks name
  grader/                   the grader itself
  servers/                  only what the grader and the server's sandbox load:
                            osprofile/, waitprobe/, platforms.py (no *_server.py)
  compose.yaml, docker/     the stack and its image, built locally with no registry
  pyproject.toml            the grader's packages

README files lose their instructor-only parts, written between
`<!-- instructor -->` and `<!-- /instructor -->` (mentions of the reference
servers, the answers' paths).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from grader.errors import UsageError
from grader.fingerprint import IGNORED
from grader.handout.labfile import StudentLab, student_lab
from grader.labspec import Lab
from grader.paths import REPO

FILES = Path(__file__).parent / "files"
# Copied from the checkout as they are (a folder: its whole tree, caches left out).
SHARED = ["grader", "servers/osprofile", "servers/waitprobe", "servers/platforms.py",
          "compose.yaml", "docker/Dockerfile", "docker/build-images.sh",
          "docker/requirements.txt", "docker/compose-v2.sh", "pyproject.toml"]
# A marked part on lines of its own goes with its line end; one inside a line, alone.
INSTRUCTOR = re.compile(r"^<!-- instructor -->.*?<!-- /instructor -->\n"
                        r"|<!-- instructor -->.*?<!-- /instructor -->", re.S | re.M)


def build(lab: Lab, out: Path) -> StudentLab:
    """Write `lab`'s handout into `out` (new or empty), git init it, commit it once."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UsageError(f"{out} already exists and is not empty: choose a new folder "
                         "(or remove it first)")
    spec = student_lab(lab.folder / "lab.yaml")
    out.mkdir(parents=True, exist_ok=True)
    for name in SHARED:
        copy(REPO / name, out / name)
    copy_lab(lab, spec, out / "labs" / lab.name)
    write_files(lab, spec, out)
    git_init(out, lab.name)
    return spec


def copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if source.is_dir():
        shutil.copytree(source, target, ignore=_caches)
    else:
        shutil.copy2(source, target)


def _caches(folder: str, names: list[str]) -> set[str]:
    return {n for n in names if n in IGNORED or n.endswith(".pyc")}


def copy_lab(lab: Lab, spec: StudentLab, target: Path) -> None:
    """The lab's folder without its answers: no reference/ folder, no file a reference:
    (outside starter/) or an instructor-only check names; lab.yaml and the READMEs made
    the students'."""
    starter = lab.starter.resolve()
    private = {(REPO / p).resolve() for p in [*spec.references, *spec.private_files]}
    # A reference inside starter/ is handed out anyway: a lesson exercise whose file is
    # given (lab-4's blocking-call: its own reference), not an answer to write.
    private = {p for p in private if not p.is_relative_to(starter)}

    def ignore(folder: str, names: list[str]) -> set[str]:
        here = Path(folder)
        return _caches(folder, names) | {
            n for n in names if n == "reference" or (here / n).resolve() in private}

    shutil.copytree(lab.folder, target, ignore=ignore)
    (target / "lab.yaml").write_text(spec.text, encoding="utf-8")
    for readme in target.glob("README*.md"):
        readme.write_text(students_text(readme.read_text(encoding="utf-8")), encoding="utf-8")


def students_text(text: str) -> str:
    """A README without its instructor-only parts."""
    return INSTRUCTOR.sub("", text)


def write_files(lab: Lab, spec: StudentLab, out: Path) -> None:
    """The handout's own files (files/), with the lab's name filled in."""
    fill = {"@LAB@": lab.name, "@LABIDUP@": lab.name.replace("-", "").upper(),
            "@LABID@": lab.name.replace("-", ""),
            "@TITLE@": lab.title, "@EXERCISES@": ", ".join(spec.exercises)}
    for source in sorted(FILES.rglob("*")):
        if source.is_dir() or source.name.endswith(".pyc") or "__pycache__" in source.parts:
            continue
        rel = source.relative_to(FILES).as_posix().replace("dot-", ".")
        text = source.read_text(encoding="utf-8")
        for key, value in fill.items():
            text = text.replace(key, value)
        target = out / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")


def git_init(out: Path, lab: str) -> None:
    """A repository with one commit, as GitHub Classroom's template repository wants it."""
    env = {**os.environ, "GIT_AUTHOR_NAME": "iolab", "GIT_AUTHOR_EMAIL": "iolab@handout.invalid",
           "GIT_COMMITTER_NAME": "iolab", "GIT_COMMITTER_EMAIL": "iolab@handout.invalid"}
    for args in (["init", "-q", "-b", "main"], ["add", "-A"],
                 ["commit", "-q", "--no-verify", "-m", f"{lab}: the student handout"]):
        proc = subprocess.run(["git", *args], cwd=out, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            raise UsageError(f"git {args[0]} failed in {out}: {proc.stderr.strip()[:300]} "
                             "(is git installed?)")
