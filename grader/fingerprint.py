"""What a grade depends on, as content hashes: the submission, the lab, the grader.

A batch keys each student's grade by these three (Contract 8): a rerun grades
again only a student whose key changed, so fixing a check, editing lab.yaml or
a student pushing a new commit regrades exactly what it touches.

- submission_hash: every file of the submission (names and bytes), leaving out
  what is never graded: .git, __pycache__, editor and OS litter, symbolic links.
- lab_hash: lab.yaml and every file it points at that changes grading (an
  exercise's reference server, a check's hidden tests: any text value in it
  that names a file or folder of the checkout or the lab).
- grader_version: the package version plus a hash of the grader's sources
  (grader/, the reference servers and their OS shim in servers/, compose.yaml):
  the code that judges, so two machines with the same version grade alike.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from grader.labspec import Lab
from grader.paths import REPO

# Never part of a submission: version control, caches, OS and editor litter.
IGNORED = {"__pycache__", "__MACOSX", ".git", ".venv", "node_modules", ".DS_Store",
           ".pytest_cache", ".idea", ".vscode"}
GRADER_SOURCES = ("grader", "servers", "compose.yaml")
SOURCE_SUFFIXES = {".py", ".j2", ".css", ".conf", ".yaml", ".yml", ".json"}


def submission_files(path: Path) -> list[tuple[str, Path]]:
    """(name relative to the submission, file) of every file graded, sorted by name;
    a lone .py file is itself. Symbolic links are left out: a link's target may lie
    outside the submission (it is never shipped to another machine)."""
    if path.is_file():
        return [(path.name, path)]
    found = []
    for file in sorted(path.rglob("*")):
        rel = file.relative_to(path)
        if any(part in IGNORED for part in rel.parts) or file.suffix == ".pyc":
            continue
        if any(p.is_symlink() for p in [file, *file.parents][: len(rel.parts)]):
            continue
        if file.is_file():
            found.append((rel.as_posix(), file))
    return found


def hash_files(files: list[tuple[str, Path]]) -> str:
    digest = hashlib.sha256()
    for name, file in files:
        digest.update(name.encode() + b"\0")
        digest.update(file.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


def submission_hash(path: Path) -> str:
    return hash_files(submission_files(path))


def _tree(path: Path, name: str) -> list[tuple[str, Path]]:
    if path.is_file():
        return [(name, path)]
    return [(f"{name}/{n}", f) for n, f in submission_files(path)]


def lab_files(lab: Lab) -> list[tuple[str, Path]]:
    """lab.yaml and the files it names that change grading, each once, sorted."""
    named: set[str] = set()
    for ex in lab.exercises:
        if ex.reference:
            named.add(ex.reference)
        for check in ex.checks:
            named |= {v for v in check.params.values() if isinstance(v, str) and v.strip()}
    files = {"lab.yaml": lab.folder / "lab.yaml"}
    for value in sorted(named):
        for base, tag in ((REPO, "repo"), (lab.folder, "lab")):
            candidate = base / value
            try:
                exists = candidate.exists()
            except OSError:  # a parameter that is text, not a path (too long a name)
                exists = False
            if exists:
                files.update(dict(_tree(candidate, f"{tag}:{value}")))
                break
    return sorted(files.items())


def lab_hash(lab: Lab) -> str:
    return hash_files(lab_files(lab))


def grader_version() -> str:
    """"0.1.0+1a2b3c4d5e6f": the package version, then the sources' hash."""
    files = []
    for name in GRADER_SOURCES:
        path = REPO / name
        if path.is_file():
            files.append((name, path))
        elif path.is_dir():
            files += [(f"{name}/{n}", f) for n, f in submission_files(path)
                      if Path(n).suffix in SOURCE_SUFFIXES]
    return f"{package_version()}+{hash_files(files)[:12]}"


def package_version() -> str:
    try:
        from importlib.metadata import PackageNotFoundError, version
        return version("iolab")
    except (ImportError, PackageNotFoundError):
        return "0"

