"""The command line: `python -m grader LAB [options]` and its other verbs.

  python -m grader lab-3 [--submission PATH] [--mode docker|local] ...   grade one submission
  python -m grader batch lab-3 SUBMISSIONS_DIR -j N ...                  grade a whole class
  python -m grader export gradescope lab-3 autograder.zip                a Gradescope autograder
  python -m grader measure lab-3 [--submission PATH]                     select/poll/epoll timed (step 5)
  python -m grader checks                                                every check and its parameters
  python -m grader pool-demo [--server PATH]                             lab-1's connection-pool lesson
  python -m grader stage HOST:PORT PLAN.json OUT.json [WAIT]             (inside the stack)

`python -m grader grade lab-3` is the same as `python -m grader lab-3`.

Exit codes: 0 every required check passed (batch: the batch ran); 1 some check
failed or errored; 2 bad input (one line on stderr saying what is wrong and
what to do); 130/143 interrupted by Ctrl-C/SIGTERM (the stacks are torn down).
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from grader import batch, handout, measure_report, pooldemo, sandbox, stage
from grader.checks import REGISTRY
from grader.dockercli import require_engine
from grader.errors import StackError, UsageError
from grader.handout import classroom
from grader.labspec import lab_names, load_lab
from grader.paths import RESULTS
from grader.progress import terminal_progress
from grader.results import print_table, write_all
from grader.runner import grade
from grader.targets import MODES

OSES = ("linux", "macos", "windows", "native")


def grading_options() -> argparse.ArgumentParser:
    """What a single run and a batch share (a parent parser: written once)."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--mode", choices=MODES, default="docker",
                        help="docker: a Compose stack (default); local: no Docker")
    parent.add_argument("--os", dest="os_name", default="linux", choices=OSES,
                        help="OS profile to emulate (native: the real platform decides)")
    parent.add_argument("--exercise", action="append",
                        help="grade only this exercise (repeatable)")
    parent.add_argument("--results", type=Path, default=RESULTS,
                        help="where results/<lab>/<run-id>/ goes (default: ./results)")
    return parent


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m grader", description=__doc__,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    verbs = top.add_subparsers(dest="verb", metavar="VERB")
    shared = grading_options()

    one = verbs.add_parser("grade", parents=[shared], help="grade one submission (the default)")
    one.add_argument("lab", help=f"the lab to grade ({', '.join(lab_names())})")
    one.add_argument("--submission", type=Path,
                     help="a folder with server.py, or one .py file (default: the lab's starter/)")
    one.add_argument("--port", type=int, help="local mode: the port the server gets "
                     "(default: a free one)")
    one.add_argument("--sandbox", action="store_true",
                     help="local mode as root on a course platform: the server as an "
                     "unprivileged, limited user (grader/sandbox.py; also IOLAB_SANDBOX=1)")
    one.set_defaults(run=grade_command)

    many = verbs.add_parser("batch", parents=[shared], help="grade a whole class",
                            description=batch.__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    many.add_argument("lab", help=f"the lab to grade ({', '.join(lab_names())})")
    many.add_argument("submissions", type=Path,
                      help="a folder holding one folder (or one .py file) per student")
    many.add_argument("-j", "--jobs", type=int, default=1,
                      help="submissions graded at the same time (default 1)")
    many.add_argument("--timeout", type=float, default=batch.DEFAULT_TIMEOUT,
                      help=f"seconds one submission may take (default {batch.DEFAULT_TIMEOUT:g})")
    many.add_argument("--parallel-load", action="store_true",
                      help="let load phases overlap (faster, noisier throughput figures)")
    many.add_argument("--out", type=Path, help="the class folder (default: "
                      "RESULTS/<lab>/batch-<name of SUBMISSIONS>); run again into the same "
                      "folder to grade only what is new or stale")
    many.add_argument("--regrade", action="store_true",
                      help="grade every student again, current or not")
    many.add_argument("--regrade-errors", action="store_true",
                      help="grade the error rows again (and what is new or stale)")
    many.add_argument("--cluster", metavar="ADDRESS",
                      help="grade on the workers of this Dask scheduler, e.g. "
                      "tcp://grader-1:8786 (see README.md); -j is then the workers' business")
    many.add_argument("--cluster-timeout", type=float, default=10.0,
                      help="seconds to reach the scheduler and find a worker there (default 10)")
    many.add_argument("--similar-share", type=float, default=0.5,
                      help="flag two submissions when this share of one's code matches the "
                      "other (default 0.5)")
    many.add_argument("--no-similarity", action="store_true",
                      help="leave out the similar-submissions check")
    many.set_defaults(run=batch.run)

    out = verbs.add_parser("export", help="package a lab's grading for a course platform",
                           description=export_command.__doc__)
    out.add_argument("platform", choices=["gradescope"],
                     help="gradescope: an autograder zip (PrairieLearn: an image, "
                     "docker/prairielearn-image.sh)")
    out.add_argument("lab", help=f"the lab ({', '.join(lab_names())})")
    out.add_argument("out", type=Path, help="the file to write, e.g. autograder.zip")
    out.add_argument("--exercise", action="append",
                     help="only this exercise (repeatable; default: all)")
    out.add_argument("--wheels", type=Path,
                     help="a folder of wheels for CPython 3.10 manylinux x86_64 "
                     "(default: downloaded once into .cache/)")
    out.set_defaults(run=export_command)
    measure_report.add_verb(verbs)

    give = verbs.add_parser("handout", help="write a lab's student repository (no answers)",
                            description=handout_command.__doc__)
    give.add_argument("lab", help=f"the lab ({', '.join(lab_names())})")
    give.add_argument("out", type=Path, help="a new folder, e.g. handouts/lab-3")
    give.set_defaults(run=handout_command)

    points = verbs.add_parser("classroom", help="the newest run's points in GitHub "
                              "Classroom's reporter format ($GITHUB_OUTPUT)",
                              description=classroom.__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    points.add_argument("lab", help=f"the lab ({', '.join(lab_names())})")
    points.add_argument("--results", type=Path, default=RESULTS,
                        help="where results/<lab>/<run-id>/ is (default: ./results)")
    points.set_defaults(run=classroom.command)

    listing = verbs.add_parser("checks", help="list every check, its stage and parameters")
    listing.set_defaults(run=checks_command)

    pooldemo.add_parser(verbs)

    inside = verbs.add_parser("stage", help="run the network checks (inside the stack)")
    inside.add_argument("target", help="HOST:PORT of the server")
    inside.add_argument("plan", type=Path)
    inside.add_argument("out", type=Path)
    inside.add_argument("wait", type=float, nargs="?", default=20.0)
    inside.set_defaults(run=lambda a: stage.main(a.target, a.plan, a.out, a.wait))
    top.set_defaults(verbs=set(verbs.choices))
    return top


def main(argv: list[str]) -> int:
    top = parser()
    if argv and argv[0] not in top.get_default("verbs") and not argv[0].startswith("-"):
        argv = ["grade", *argv]  # `python -m grader lab-3` grades
    args = top.parse_args(argv)
    if not getattr(args, "run", None):
        top.print_help()
        return 2
    signal.signal(signal.SIGTERM, _terminated)  # a platform's kill: the same teardown as Ctrl-C
    try:
        return args.run(args)
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
    lab = load_lab(args.lab)
    submission = args.submission or lab.starter
    if args.mode == "docker" and args.sandbox:
        raise UsageError("--sandbox is for --mode local: in docker mode the server's "
                         "container is its sandbox")
    if args.mode == "docker":
        require_engine()
    elif args.sandbox or sandbox.requested():
        print(sandbox.enter())  # before any thread: it may fork into a network namespace
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


def export_command(args: argparse.Namespace) -> int:
    """Write what a course platform needs to grade LAB: for Gradescope, an autograder
    zip to upload (setup.sh, run_autograder, the grader, the lab, the wheels)."""
    from grader.export import gradescope

    gradescope.export(load_lab(args.lab), args.out, args.exercise, args.wheels)
    return 0


def handout_command(args: argparse.Namespace) -> int:
    """Write LAB's student handout into OUT: a git repository with the lab's instructions,
    its starter, the grader and its stack (`make LAB` self-grades there), a GitHub
    Classroom workflow, and no answers: no reference server, no instructor-only check."""
    spec = handout.build(load_lab(args.lab), args.out)
    left = f"; left out (instructor's): {', '.join(spec.left_out)}" if spec.left_out else ""
    print(f"{args.lab}: the handout is in {args.out} (a git repository, one commit){left}")
    return 0


def checks_command(args: argparse.Namespace, out=print) -> int:
    """Every check in the registry: name, stage, title, and its parameters."""
    for name, spec in sorted(REGISTRY.items()):
        out(f"{name}  [{spec.stage}]  {spec.title}")
        for param in spec.params.values():
            out(f"    {param.describe()}" + ("  (relative to the calibration)"
                                              if param.relative else ""))
    return 0
