"""Write a batch benchmark: runs.csv, students.csv, checks.csv and summary.md."""

from __future__ import annotations

import csv
import os
import platform
import shlex
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RUN_COLUMNS = ["label", "run", "mode", "exercises", "students", "jobs", "wall_s", "batch_s",
               "students_per_hour", "per_student_s", "load_before", "load_mean", "load_max"]
STUDENT_COLUMNS = ["label", "run", "student", "kind", "source", "expected", "verdict", "score",
                   "max_score", "seconds", "exercises", "error"]


def output(cmd: list[str], env: dict | None = None) -> str | None:
    """A command's first line of output, or None when it fails or is missing."""
    if not shutil.which(cmd[0]):
        return None
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    lines = proc.stdout.strip().splitlines()
    return lines[0].strip() if proc.returncode == 0 and lines else None


def compose_versions() -> str:
    """Which Compose the grader picks (`docker compose` when it works, else the v2
    docker/compose-v2.sh put under .cache, else docker-compose, as
    grader/dockercli.py does), and the versions found."""
    found = []
    override = os.environ.get("IOLAB_COMPOSE")
    v2 = output(["docker", "compose", "version", "--short"])
    v1 = output(["docker-compose", "version", "--short"])
    cached = REPO / ".cache" / "docker" / "cli-plugins" / "docker-compose"
    v2_cached = output([str(cached), "version", "--short"]) if cached.exists() else None
    used = override or ("docker compose" if v2 else ".cache v2" if v2_cached
                        else "docker-compose" if v1 else "none")
    found.append(f"used: `{used}`")
    found.append(f"`docker compose` {v2 or 'not installed'}")
    found.append(f"`docker-compose` {v1 or 'not installed'}")
    if cached.exists():
        found.append(f".cache v2 {v2_cached or '?'}")
    return "; ".join(found)


def machine(mode: str) -> dict:
    meminfo = Path("/proc/meminfo").read_text().split()
    mem_gib = int(meminfo[meminfo.index("MemTotal:") + 1]) / 2**20
    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")),
               platform.processor() or "unknown")
    commit = output(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"]) or "?"
    dirty = output(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"])
    running = subprocess.run(["docker", "ps", "-q"], capture_output=True, text=True).stdout \
        if shutil.which("docker") else ""
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": commit + (" (with uncommitted changes)" if dirty else ""),
        "cores": f"{os.cpu_count()} ({len(os.sched_getaffinity(0))} usable)", "cpu": cpu,
        "memory": f"{mem_gib:.1f} GiB", "kernel": platform.release(),
        "python": platform.python_version(),
        "docker": output(["docker", "version", "--format", "{{.Server.Version}}"]) or "none",
        "compose": compose_versions() if mode == "docker" else "not used (local mode)",
        "containers_before": len(running.split()),
        "load_before": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def student_rows(label: str, run: dict, students: list[dict]) -> list[dict]:
    who = {s["student"]: s for s in students}
    rows = []
    for s in run["summary"]["students"]:
        exercises = " ".join(f"{e}={x['verdict']}" for e, x in s["exercises"].items())
        rows.append({"label": label, "run": run["run"], **who.get(s["student"], {}),
                     "student": s["student"], "verdict": s["verdict"], "score": s["score"],
                     "max_score": s["max_score"], "seconds": s["seconds"],
                     "exercises": exercises, "error": s["error"] or ""})
    return rows


def check_rows(label: str, run: dict) -> list[dict]:
    return [{"label": label, "run": run["run"], "student": s["student"], "exercise": e,
             "check": check, "status": status}
            for s in run["summary"]["students"] for e, x in s["exercises"].items()
            for check, status in x["checks"].items()]


def write_csv(path: Path, columns: list[str], rows: list[dict]) -> None:
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def read_checks(folder: Path) -> dict[tuple, str]:
    with (folder / "checks.csv").open(newline="") as fh:
        return {(r["run"], r["student"], r["exercise"], r["check"]): r["status"]
                for r in csv.DictReader(fh)}


def flips_md(old: Path, new: Path) -> list[str]:
    """Every check whose status differs between two results folders of this benchmark
    (the same class, so the same code: any difference is a flip)."""
    before, after = read_checks(old), read_checks(new)
    common = sorted(before.keys() & after.keys())
    changed = [k for k in common if before[k] != after[k]]
    lines = [f"## Flips against {old.name}", "",
             f"{len(changed)} of {len(common)} check results differ."]
    if changed:
        lines += ["", "| run | student | exercise | check | was | now |", "|---|---|---|---|---|---|"]
        lines += [f"| {' | '.join(k)} | {before[k]} | {after[k]} |" for k in changed]
    return lines + [""]


def write(out: Path, runs: list[dict], students: list[dict], machine: dict, argv: list[str],
          args, seconds: float) -> None:
    out.mkdir(parents=True, exist_ok=True)
    label = args.label
    write_csv(out / "runs.csv", RUN_COLUMNS, [{"label": label, **r} for r in runs])
    per_student = [row for r in runs for row in student_rows(label, r, students)]
    write_csv(out / "students.csv", STUDENT_COLUMNS, per_student)
    write_csv(out / "checks.csv", ["label", "run", "student", "exercise", "check", "status"],
              [row for r in runs for row in check_rows(label, r)])
    text = summary_md(runs, students, per_student, machine, argv, args, seconds)
    if args.compare:
        text += "\n" + "\n".join(flips_md(args.compare, out))
    (out / "summary.md").write_text(text)


def summary_md(runs, students, per_student, machine, argv, args, seconds) -> str:
    lines = [f"# Batch grading benchmark: {args.label}", "",
             f"{machine['date']}, commit {machine['commit']}, {args.mode} mode, -j {args.jobs}, "
             f"whole benchmark {seconds:.0f} s.", "",
             "| run | exercises | students | wall s | students/hour | load avg (1 min) "
             "before / mean / max |", "|---|---|---:|---:|---:|---|"]
    for r in runs:
        lines.append(f"| {r['run']} | {r['exercises']} | {r['students']} | {r['wall_s']:.0f} | "
                     f"**{r['students_per_hour']:g}** | {r['load_before']:.2f} / "
                     f"{r['load_mean']:.2f} / {r['load_max']:.2f} |")
    lines += ["", "students/hour = students / (wall seconds / 3600); wall seconds from the "
              "start of `python -m grader batch` to its exit.", ""]
    lines += corpus_md(students, args) + machine_md(machine) + commands_md(runs, argv, args)
    lines += verdicts_md(per_student)
    return "\n".join(lines) + "\n"


def corpus_md(students: list[dict], args) -> list[str]:
    lines = ["## The class", "",
             f"{args.correct} correct, {args.broken} broken, {args.starter} starter "
             f"({len(students)} students):", ""]
    lines += [f"- `{s['student']}`: {s['kind']}, from `{s['source']}` "
              f"(expected: {s['expected']})" for s in students]
    if args.load_duration:
        lines += ["", f"Load phases shortened to {args.load_duration:g} s (a lab-3 copy, "
                  "IOLAB_LABS): not comparable with full runs."]
    return lines + [""]


def machine_md(m: dict) -> list[str]:
    return ["## The machine", "",
            f"- cores: {m['cores']}, {m['cpu']}; memory {m['memory']}",
            f"- kernel {m['kernel']}, Python {m['python']}, Docker engine {m['docker']}",
            f"- Compose: {m['compose']}",
            f"- load average (1/5/15 min) before: {m['load_before']}; after: "
            f"{m.get('load_after', '?')}; during: see the table (sampled every 5 s)",
            f"- containers running before (anyone's): {m['containers_before']}", ""]


def commands_md(runs: list[dict], argv: list[str], args) -> list[str]:
    lines = ["## Commands", "", "```",
             shlex.join(["python", "-m", "bench.batch", *argv])]
    for r in runs:
        cmd = ["python" if c == sys.executable else c for c in r["command"]]
        lines.append(shlex.join(cmd))
    lines += ["```", "", "(CLASS and results folders were temporary; "
              + ("IOLAB_LABS pointed at the shortened lab copy.)" if args.load_duration
                 else "IOLAB_LABS unset: the lab as committed.)"), ""]
    return lines


def expected(s: dict) -> bool:
    """A correct submission passes; a broken one does not (failed or error)."""
    return (s["verdict"] == "passed") == (s.get("expected") == "passed")


def verdicts_md(per_student: list[dict]) -> list[str]:
    lines = ["## Verdicts", "", "Every check's status is in checks.csv (compare a later run "
             "for flips).", "", "| run | student | verdict | score | seconds | expected |",
             "|---|---|---|---:|---:|---|"]
    for s in per_student:
        mark = "" if expected(s) else " **(unexpected)**"
        lines.append(f"| {s['run']} | {s['student']} | {s['verdict']}{mark} | "
                     f"{s['score']:g}/{s['max_score']:g} | {s['seconds']:g} | "
                     f"{s.get('expected', '?')} |")
    return lines
