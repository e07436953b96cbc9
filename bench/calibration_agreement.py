"""Load-check verdicts against the reference and against the yardstick, side by side.

    python -m bench.calibration_agreement [local|docker] [ROUNDS] [DURATION]

Grades a correct, a blocking and a slow server (tests/test_calibration.py's) on lab-3's
select exercise reduced to its load checks, once per calibration source, and prints a
Markdown table (bench/results/2026-11-29-calibration/agreement.md).
"""

import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from test_calibration import graded, load_lab_yaml, submissions, verdicts  # noqa: E402

from grader import calibration  # noqa: E402


def main(mode: str = "local", rounds: int = 1, duration: int = 5) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="iolab-agreement-"))
    servers = submissions(tmp)
    print("| mode | round | server | source | failures | throughput | latency | figures |")
    print("|---|---|---|---|---|---|---|---|")
    for rnd in range(rounds):
        for source in calibration.SOURCES:
            os.environ[calibration.CACHE_ENV] = str(tmp / f"cache-{source}")
            lab = load_lab_yaml(tmp / f"{source}{rnd}", source, duration=duration)
            for name, path in servers.items():
                # the blocking server's waiting users fail only with a timeout shorter
                # than the load phase (read by local mode's Locust process)
                os.environ["IOLAB_REPLY_TIMEOUT"] = "1" if name == "iterative_blocks" else "5"
                report = graded(lab, path, tmp / "results", mode=mode)
                v = verdicts(report)
                figures = "; ".join(r.outcome.figure for r in report.results[1:])
                cal = report.calibrations.get("select", {})
                print(f"| {mode} | {rnd} | {name} | {source} | {v['load.failures']} | "
                      f"{v['load.throughput']} | {v['load.latency']} | {figures} (calibration "
                      f"{'reused' if cal.get('reused') else 'measured'}) |", flush=True)


if __name__ == "__main__":
    args = sys.argv[1:]
    main(args[0] if args else "local", int(args[1]) if len(args) > 1 else 1,
         int(args[2]) if len(args) > 2 else 5)
