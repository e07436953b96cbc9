"""`make bench-batch`: how many students an hour this machine grades with the batch.

    python -m bench.batch [--correct N] [--broken N] [--starter N] [-j N]
                          [--mode docker|local] [--runs all,select] [--label L]
                          [--compare EARLIER_RESULTS] [--smoke]

Assembles a class in a temporary folder from the project's own code (lab-3's
reference servers as correct submissions, tests/broken/*.py as broken ones,
the lab-3 starter), then runs the real `python -m grader batch lab-3 CLASS`
once per run: "all" grades every exercise, "select" only `--exercise select`.
Students per hour = students / wall hours. Per-student seconds and verdicts
come from the batch's own summary.json, never from what it prints.

Writes bench/results/<date>-batch-<label>/ (or --out): runs.csv (one line per
run), students.csv and checks.csv (every verdict: --compare DIR lists the checks
that flipped since an earlier run) and summary.md (the machine, its load
average, the exact commands).
It talks to the grader only through its CLI and the files the batch writes.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import yaml

from bench import batch_report

REPO = Path(__file__).resolve().parent.parent
LAB = "lab-3"
BROKEN = REPO / "tests" / "broken"
HELPER = "flawed.py"  # the broken servers' shared code, copied beside each
NOT_BROKEN = {HELPER, "correct.py"}  # correct.py is flawed.py with no flaw
RUNS = {"all": [], "select": ["--exercise", "select"]}


def lab_exercises(labs: Path = REPO / "labs") -> list[dict]:
    """lab-3's exercises as lab.yaml spells them (path "." and server.py by default)."""
    data = yaml.safe_load((labs / LAB / "lab.yaml").read_text(encoding="utf-8"))
    return [{"id": ex["id"], "path": ex.get("path", "."), "entry": ex.get("entry", "server.py"),
             "reference": ex["reference"]} for ex in data["exercises"]]


def broken_servers() -> list[Path]:
    """The one-flaw servers made from flawed.py's correct selectors server (a LINE/1 or
    multiplexing flaw: each fails some lab-3 check); not the other labs' broken models."""
    return sorted(p for p in BROKEN.glob("*.py") if p.name not in NOT_BROKEN
                  and "from flawed import" in p.read_text())


def correct_submission(dest: Path, exercises: list[dict]) -> None:
    """Each exercise's reference server in its folder, servers/lineproto.py beside it."""
    for ex in exercises:
        folder = dest / ex["path"]
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / ex["reference"], folder / ex["entry"])
        shutil.copy2(REPO / "servers" / "lineproto.py", folder / "lineproto.py")


def broken_submission(dest: Path, server: Path, exercises: list[dict]) -> None:
    """The same broken server in every exercise's folder, with flawed.py beside it."""
    for ex in exercises:
        folder = dest / ex["path"]
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy2(server, folder / ex["entry"])
        shutil.copy2(BROKEN / HELPER, folder / HELPER)


def assemble(corpus: Path, correct: int, broken: int, starter: int) -> list[dict]:
    """The class: one folder per student. Returns who is who (kind, source, expected)."""
    exercises, servers = lab_exercises(), broken_servers()
    students = []
    for i in range(correct):
        name = f"correct-{i + 1}"
        correct_submission(corpus / name, exercises)
        students.append({"student": name, "kind": "correct", "source": "servers/*_server.py",
                         "expected": "passed"})
    for i in range(broken):
        server = servers[i % len(servers)]
        name = f"broken-{i + 1}-{server.stem}"
        broken_submission(corpus / name, server, exercises)
        students.append({"student": name, "kind": "broken", "expected": "not passed",
                         "source": str(server.relative_to(REPO))})
    for i in range(starter):
        name = f"starter-{i + 1}"
        shutil.copytree(REPO / "labs" / LAB / "starter", corpus / name)
        students.append({"student": name, "kind": "starter", "expected": "not passed",
                         "source": f"labs/{LAB}/starter"})
    return students


def short_lab(labs: Path, duration: float) -> Path:
    """A copy of lab-3 whose load phases last `duration` s (for --smoke; IOLAB_LABS)."""
    shutil.copytree(REPO / "labs" / LAB, labs / LAB)
    spec = labs / LAB / "lab.yaml"
    data = yaml.safe_load(spec.read_text(encoding="utf-8"))
    for ex in data["exercises"]:
        if ex.get("load"):
            ex["load"]["duration"] = duration
    spec.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return labs


def run_batch(cmd: list[str], env: dict, log: Path, every: float = 5.0) -> tuple[float, list]:
    """Run one batch; its wall seconds and the 1-minute load average sampled meanwhile."""
    samples = [os.getloadavg()[0]]
    started = time.monotonic()
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            while True:
                try:
                    code = proc.wait(timeout=every)
                    break
                except subprocess.TimeoutExpired:
                    samples.append(os.getloadavg()[0])
        except BaseException:  # Ctrl-C or SIGTERM: the batch tears its stacks down first
            if proc.poll() is None:
                proc.terminate()
                proc.wait()
            raise
    wall = time.monotonic() - started
    if code != 0:
        tail = log.read_text(errors="replace")[-2000:]
        raise SystemExit(f"error: the batch exited with code {code}; its output ends:\n{tail}")
    return wall, samples


def read_batch(results: Path) -> dict:
    """The batch's own summary.json (results/lab-3/batch-<id>/)."""
    (folder,) = (results / LAB).glob("batch-*")
    return json.loads((folder / "summary.json").read_text())


def one_run(name: str, args: argparse.Namespace, corpus: Path, tmp: Path, env: dict) -> dict:
    results = tmp / f"results-{name}"
    cmd = [sys.executable, "-m", "grader", "batch", LAB, str(corpus), "-j", str(args.jobs),
           "--mode", args.mode, "--results", str(results), *RUNS[name]]
    print(f"[{name}] {' '.join(cmd)}", flush=True)
    wall, load = run_batch(cmd, env, tmp / f"batch-{name}.log")
    summary = read_batch(results)
    students = len(summary["students"])
    row = {"run": name, "mode": args.mode, "exercises": ",".join(summary["exercises"]),
           "students": students, "jobs": args.jobs, "wall_s": round(wall, 1),
           "batch_s": summary["seconds"], "students_per_hour": round(students / (wall / 3600), 2),
           "per_student_s": " ".join(f"{s['seconds']:g}" for s in summary["students"]),
           "load_before": round(load[0], 2), "load_mean": round(sum(load) / len(load), 2),
           "load_max": round(max(load), 2), "command": cmd, "summary": summary}
    print(f"[{name}] {students} students in {wall:.0f} s: "
          f"{row['students_per_hour']:g} students/hour", flush=True)
    return row


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.batch", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--correct", type=int, default=3, help="reference submissions (3)")
    parser.add_argument("--broken", type=int, default=3,
                        help="broken submissions, tests/broken/*.py in name order (3)")
    parser.add_argument("--starter", type=int, default=1, help="copies of the starter (1)")
    parser.add_argument("-j", "--jobs", type=int, default=2, help="the batch's -j (2)")
    parser.add_argument("--mode", choices=("docker", "local"), default="docker")
    parser.add_argument("--runs", default="all,select", help="all, select or both (all,select)")
    parser.add_argument("--label", default="before", help="names the results folder (before)")
    parser.add_argument("--out", type=Path, help="default: bench/results/<date>-batch-<label>/")
    parser.add_argument("--load-duration", type=float,
                        help="grade a lab-3 copy whose load phases last this long (s)")
    parser.add_argument("--smoke", action="store_true",
                        help="1 correct + 1 broken, local mode, select only, 1 s load phases")
    parser.add_argument("--compare", type=Path, metavar="DIR",
                        help="list every check that flipped against an earlier results folder")
    parser.add_argument("--keep", action="store_true", help="keep the class and the batch folders")
    args = parser.parse_args(argv)
    if args.smoke:
        args.correct, args.broken, args.starter, args.mode = 1, 1, 0, "local"
        args.runs, args.load_duration = "select", args.load_duration or 1.0
    args.runs = [r.strip() for r in args.runs.split(",") if r.strip()]
    return args


def check(args: argparse.Namespace) -> str | None:
    """What is wrong with the arguments, in one line; None when nothing is."""
    unknown = [r for r in args.runs if r not in RUNS]
    if unknown or not args.runs:
        return f"--runs {','.join(args.runs)}: choose from {', '.join(RUNS)} (comma separated)"
    if min(args.correct, args.broken, args.starter) < 0:
        return "--correct, --broken and --starter count students: give 0 or more"
    if args.correct + args.broken + args.starter == 0:
        return "the class is empty: give --correct, --broken or --starter a count above 0"
    if args.jobs < 1:
        return f"-j must be at least 1, got {args.jobs}"
    if args.compare and not (args.compare / "checks.csv").is_file():
        return f"--compare {args.compare}: no checks.csv there (give a bench-batch results folder)"
    if args.load_duration is not None and args.load_duration <= 0:
        return f"--load-duration must be above 0 s, got {args.load_duration:g}"
    return None


def main(argv: list[str]) -> int:
    args = parse(argv)
    problem = check(args)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    date = datetime.now(UTC).strftime("%Y-%m-%d")
    out = args.out or REPO / "bench" / "results" / f"{date}-batch-{args.label}"
    tmp = Path(tempfile.mkdtemp(prefix="iolab-bench-batch-"))
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    if args.load_duration:
        env["IOLAB_LABS"] = str(short_lab(tmp / "labs", args.load_duration))
    started = time.monotonic()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so the finally clauses run
    try:
        students = assemble(tmp / "class", args.correct, args.broken, args.starter)
        machine = batch_report.machine(args.mode)
        print(f"bench-batch: {len(students)} students ({args.correct} correct, {args.broken} "
              f"broken, {args.starter} starter), {args.mode} mode, -j {args.jobs}, "
              f"load average {machine['load_before']}", flush=True)
        runs = [one_run(name, args, tmp / "class", tmp, env) for name in args.runs]
        machine["load_after"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
        batch_report.write(out, runs, students, machine, argv, args,
                           seconds=time.monotonic() - started)
    finally:
        if args.keep:
            print(f"kept: {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print((out / "summary.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
