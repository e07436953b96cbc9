"""`make validity RUNS=50`: every validity case (tests/validity.py) RUNS times, without
and then with a CPU hog, as a table: check × flaw → failures/runs, and reference →
passes/runs (lessons: the reference's failures/runs). Writes it as Markdown.

  python tests/validity_table.py --runs 50 [--costly-runs 10] [--workers 2]
      [--only broken|reference] [--out bench/results/<date>-validity/table.md]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parent)]

from validity import Case, broken_cases, cpu_hog, groups, reference_cases, run_together  # noqa: E402

# Load phases one at a time, as on a grading machine (grader/load/lock.py), also when
# --workers runs several cases at once.
os.environ.setdefault("IOLAB_LOAD_LOCK", str(Path(tempfile.gettempdir()) /
                                              f"iolab-validity-{os.getuid()}.lock"))


def tally(group: list[Case], runs: int, workdir: Path) -> dict[str, int]:
    """{case id: runs that went as expected} over `runs` runs of the group."""
    good = {case.id: 0 for case in group}
    for run in range(runs):
        try:
            outcomes = run_together(group, workdir / f"run-{run}")
        except Exception as exc:  # noqa: BLE001 - a run that crashed counts as not as expected
            print(f"  {group[0].id}: run {run + 1} crashed: {exc}", file=sys.stderr)
            continue
        for case, outcome in zip(group, outcomes):
            wanted = "failed" if case.expect == "fail" else "passed"
            good[case.id] += outcome.status.value == wanted
            if outcome.status.value != wanted:
                print(f"  UNEXPECTED {case.id}: {outcome.status.value} {outcome.figure} "
                      f"{outcome.got}", file=sys.stderr)
    return good


def phase(batches: list[list[Case]], runs_of, workers: int, hog: bool) -> dict[str, tuple]:
    with tempfile.TemporaryDirectory(prefix="iolab-validity-") as tmp, \
            (cpu_hog() if hog else nullcontext()):
        def one(i_group):
            i, group = i_group
            started = time.monotonic()
            good = tally(group, runs_of(group), Path(tmp) / str(i))
            print(f"{'hog ' if hog else ''}{group[0].group or group[0].id}: "
                  f"{time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)
            return {cid: (n, runs_of(group)) for cid, n in good.items()}

        results: dict[str, tuple] = {}
        with ThreadPoolExecutor(workers) as pool:
            for part in pool.map(one, enumerate(batches)):
                results.update(part)
        return results


def table(cases: list[Case], plain: dict, hogged: dict, header: str) -> list[str]:
    lines = [header, "", "| check | server | expect | quiet | with CPU hog |",
             "| --- | --- | --- | --- | --- |"]
    for case in cases:
        server = case.flaw or case.server.name + (f" ({case.group})" if case.group else "")
        word = "failures" if case.expect == "fail" else "passes"
        cells = [f"{n}/{runs} {word}" + ("" if n == runs else " **!**")
                 for n, runs in (plain.get(case.id, (0, 0)), hogged.get(case.id, (0, 0)))]
        check = case.id.split(" × ")[0]  # the check, and its title when its exercise has it twice
        lines.append(f"| {check} | {server} | {case.expect} | {cells[0]} | {cells[1]} |")
    return lines


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--costly-runs", type=int, default=None,
                    help="runs of a costly case (load, ceilings, fd_limit); default: --runs")
    ap.add_argument("--reference-runs", type=int, default=None,
                    help="runs of a reference exercise (all its checks); default: --runs")
    ap.add_argument("--workers", type=int, default=1, help="cases run at once")
    ap.add_argument("--only", choices=("broken", "reference"))
    ap.add_argument("--match", default="", help="only the cases whose id contains this")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    if args.runs < 1 or args.workers < 1:
        print("error: --runs and --workers must be at least 1", file=sys.stderr)
        return 2

    def runs_of(group: list[Case]) -> int:
        if group[0].group and args.reference_runs:
            return args.reference_runs
        if group[0].costly and args.costly_runs:
            return args.costly_runs
        return args.runs

    broken = [c for c in (broken_cases() if args.only != "reference" else [])
              if args.match in c.id]
    refs = [c for c in (reference_cases() if args.only != "broken" else []) if args.match in c.id]
    batches = groups(broken) + groups(refs)
    started = time.monotonic()
    plain = phase(batches, runs_of, args.workers, hog=False)
    hogged = phase(batches, runs_of, args.workers, hog=True)
    lines = [f"# Validity: {len(broken)} (check, broken server) cases, {len(refs)} "
             f"(check, reference) cases", "",
             f"Command: `python tests/validity_table.py {' '.join(argv)}` "
             f"({time.monotonic() - started:.0f} s). quiet: nothing else of ours running; "
             "with CPU hog: a process spinning on one of the cores beside each run. "
             "**!** marks a cell where some run went against expectation.", ""]
    if broken:
        lines += table(broken, plain, hogged, "## Broken servers: each must fail its check") + [""]
    if refs:
        lines += table(refs, plain, hogged, "## Reference servers: each must pass (lessons: "
                       "fail) every check of its exercise") + [""]
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n", encoding="utf-8")
    bad = [c for c in broken + refs
           if plain.get(c.id, (0, 1))[0] != plain.get(c.id, (0, 1))[1]
           or hogged.get(c.id, (0, 1))[0] != hogged.get(c.id, (0, 1))[1]]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
