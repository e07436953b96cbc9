"""The command line: `python -m grader LAB [options]`.

A whole class: `python -m grader batch LAB SUBMISSIONS_DIR -j N` (grader/batch.py).

Exit codes: 0 every required check passed; 1 some check failed or errored;
2 bad input (one line on stderr saying what is wrong and what to do).
"""

from __future__ import annotations

import argparse
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from grader.errors import StackError, UsageError
from grader.labspec import REPO, lab_names, load_lab


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m grader", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("lab", help=f"the lab to grade ({', '.join(lab_names())})")
    parser.add_argument("--submission", type=Path,
                        help="a folder with server.py, or one .py file (default: the lab's starter/)")
    parser.add_argument("--mode", choices=("docker", "local"), default="docker")
    parser.add_argument("--os", dest="os_name", default="linux",
                        choices=("linux", "macos", "windows", "native"),
                        help="OS profile to emulate (native: the real platform decides)")
    parser.add_argument("--exercise", action="append", help="grade only this exercise")
    parser.add_argument("--port", type=int, help="local mode: the port the server gets "
                        "(default: a free one)")
    parser.add_argument("--results", type=Path, default=REPO / "results",
                        help="where results/<lab>/<run-id>/ goes")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    if argv[:1] == ["stage"]:
        from grader.stage import main as stage_main

        return stage_main(argv[1:])
    if argv[:1] == ["batch"]:
        from grader.batch import main as batch_main

        return batch_main(argv[1:])
    args = parse(argv)
    signal.signal(signal.SIGTERM, _terminated)  # a platform's kill: the same teardown as Ctrl-C
    try:
        return grade_command(args)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        print("interrupted: the stack was torn down", file=sys.stderr)
        return 143 if isinstance(exc, Terminated) else 130


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the grader is so every `finally` tears its stack down."""


def _terminated(signum, frame) -> None:
    raise Terminated()


def grade_command(args: argparse.Namespace) -> int:
    from grader.results import print_table, terminal_progress, write_all
    from grader.runner import grade

    lab = load_lab(args.lab)
    submission = args.submission or lab.starter
    if args.mode == "docker":
        require_engine()
    try:
        report = grade(lab, submission, args.mode, args.os_name, args.results,
                       exercise_ids=args.exercise, port=args.port,
                       progress=terminal_progress())
    except StackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    write_all(report)
    print_table(report)
    return 0 if report.passed else 1


def require_engine() -> None:
    """Docker mode needs a running engine and the images; say so in one line."""
    if not shutil.which("docker"):
        raise UsageError("docker is not installed: install Docker Engine, or use --mode local")
    if subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
        raise UsageError("the Docker engine is not running (docker info failed): start it "
                         "(e.g. `sudo systemctl start docker`), or use --mode local")
    images = subprocess.run(["docker", "image", "inspect", "iolab-runtime:latest"],
                            capture_output=True)
    if images.returncode != 0:
        raise UsageError("the image iolab-runtime:latest is missing: run `make images` first")
