"""`python -m grader export gradescope LAB OUT.zip`: an autograder zip in
Gradescope's contract (docs/platforms.md, section 1).

  setup.sh         at the root: run once, as root, when Gradescope builds the image;
                   installs wheels/ with pip --no-index into source/site (no network)
  run_autograder   at the root: run for every submission (scripts/gradescope/)
  iolab/           the grader, servers/ (the references, for calibration) and the
                   lab's folder (its hidden checks too): the zip is the instructor's
  wheels/          the grader's packages for Gradescope's Python: CPython 3.10,
                   manylinux x86_64 (Ubuntu 22.04), and their requirements.txt

The wheels are downloaded once per requirements into .cache/ (or taken from
--wheels DIR). Module labs (lab-0) are refused: their tests import the
student's module into pytest, which no sandbox separates from the verdict.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from grader.errors import UsageError
from grader.labspec import Lab
from grader.paths import REPO, shown

SCRIPTS = Path(__file__).parent / "scripts" / "gradescope"
REQUIREMENTS = ["locust>=2.30,<3", "pyyaml>=6", "jinja2>=3"]  # pyproject's dependencies
PYTHON, PLATFORMS = "3.10", ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64",
                             "manylinux2014_x86_64")  # Ubuntu 22.04: glibc 2.35
SKIP_DIRS = {"__pycache__", ".pytest_cache", ".git"}
BUDGET = 540  # s: Gradescope's default limit is 600


def wheelhouse(cache: Path = REPO / ".cache") -> Path:
    """The wheels for Gradescope's Python, downloaded once per requirements list."""
    key = hashlib.sha256(repr((REQUIREMENTS, PYTHON, PLATFORMS)).encode()).hexdigest()[:12]
    folder = cache / f"wheelhouse-cp310-{key}"
    if (folder / "requirements.txt").is_file():
        return folder
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    wanted = list(REQUIREMENTS)
    for _ in range(5):  # pip judges markers by the Python it runs on: close them for 3.10
        download(wanted, partial)
        if not (wanted := unmet_requirements(partial)):
            break
    (partial / "requirements.txt").write_text("\n".join(REQUIREMENTS) + "\n")
    partial.rename(folder)
    return folder


def download(requirements: list[str], folder: Path) -> None:
    platforms = [arg for p in PLATFORMS for arg in ("--platform", p)]
    # A wheelhouse must reflect the index, not a local wheel folder or user config.
    env = {k: v for k, v in os.environ.items() if k != "PIP_FIND_LINKS"}
    proc = subprocess.run([sys.executable, "-m", "pip", "download", "-q",
                           "--disable-pip-version-check", "--only-binary=:all:",
                           "--python-version", PYTHON, "--implementation", "cp",
                           *platforms, "-d", str(folder), *requirements],
                          env=dict(env, PIP_CONFIG_FILE=os.devnull),
                          capture_output=True, text=True)
    if proc.returncode != 0:
        tail = " | ".join(proc.stderr.strip().splitlines()[-2:])
        raise UsageError(f"could not download the wheels for Gradescope's Python {PYTHON} "
                         f"({tail}): check that PyPI is reachable, or pass --wheels DIR")


def unmet_requirements(folder: Path) -> list[str]:
    """What the wheels in `folder` require on CPython 3.10 / Linux x86_64 that no wheel
    there provides (pip download evaluates markers such as python_version < "3.11"
    for the Python running it, not for --python-version)."""
    from packaging.markers import default_environment
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    target = {**default_environment(), "python_version": PYTHON, "python_full_version":
              f"{PYTHON}.12", "sys_platform": "linux", "platform_system": "Linux",
              "platform_machine": "x86_64", "implementation_name": "cpython",
              "platform_python_implementation": "CPython", "os_name": "posix", "extra": ""}
    wheels = list(folder.glob("*.whl"))
    have = {canonicalize_name(w.name.split("-")[0]) for w in wheels}
    unmet = set()
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as archive:
            meta = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
            text = archive.read(meta).decode("utf-8", "replace").split("\n\n")[0]
        for line in text.splitlines():
            if line.startswith("Requires-Dist:"):
                req = Requirement(line.split(":", 1)[1].strip())
                if (not req.marker or req.marker.evaluate(target)) and \
                        canonicalize_name(req.name) not in have:
                    unmet.add(f"{req.name}{req.specifier}")
    return sorted(unmet)


def check_wheels(folder: Path) -> None:
    if not (folder / "requirements.txt").is_file() or not any(folder.glob("*.whl")):
        raise UsageError(f"{folder} is not a wheelhouse: it needs requirements.txt and "
                         f"the wheels for CPython {PYTHON} manylinux x86_64")


def render(script: Path, lab: Lab, exercises: list[str]) -> str:
    return (script.read_text().replace("@LAB@", lab.name)
            .replace("@EXERCISES@", " ".join(exercises)).replace("@BUDGET@", str(BUDGET)))


def add_tree(archive: zipfile.ZipFile, folder: Path, prefix: str) -> None:
    """A folder into the zip under prefix/, with its files' modes; no caches."""
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS)
        for name in sorted(files):
            if not name.endswith(".pyc"):
                path = Path(root) / name
                archive.write(path, f"{prefix}/{path.relative_to(folder).as_posix()}")


def add_text(archive: zipfile.ZipFile, name: str, text: str, executable: bool) -> None:
    info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
    info.external_attr = (0o100755 if executable else 0o100644) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    archive.writestr(info, text)


def export(lab: Lab, out: Path, exercises: list[str] | None = None,
           wheels: Path | None = None) -> Path:
    """Write the autograder zip for `lab` (or some of its exercises) to `out`."""
    if any(ex.kind == "module" for ex in lab.exercises):
        raise UsageError(f"{lab.name} is a module lab: its tests import the student's module "
                         "into pytest, which the sandbox cannot keep apart from the verdict; "
                         "grade it with `python -m grader batch` on your own machine")
    unknown = sorted(set(exercises or []) - {ex.id for ex in lab.exercises})
    if unknown:
        raise UsageError(f"no exercise {', '.join(unknown)} in {lab.name}: choose from "
                         f"{', '.join(ex.id for ex in lab.exercises)}")
    if out.suffix != ".zip":
        raise UsageError(f"{out} should end in .zip (Gradescope takes a zip)")
    wheels = wheels or wheelhouse()
    check_wheels(wheels)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
        # At the root of the archive, or Gradescope "won't be able to find them".
        add_text(archive, "setup.sh", render(SCRIPTS / "setup.sh", lab, []), True)
        add_text(archive, "run_autograder",
                 render(SCRIPTS / "run_autograder", lab, exercises or []), True)
        for name in ("grader", "servers"):
            add_tree(archive, REPO / name, f"iolab/{name}")
        add_tree(archive, lab.folder, f"iolab/labs/{lab.name}")
        for wheel in sorted(wheels.glob("*.whl")):
            archive.write(wheel, f"wheels/{wheel.name}")
        archive.write(wheels / "requirements.txt", "wheels/requirements.txt")
    os.replace(partial, out)
    print(f"wrote {shown(out)}: upload it in Gradescope's Configure Autograder "
          f"(base image Ubuntu 22.04); docs/gradescope-prairielearn.md")
    return out
