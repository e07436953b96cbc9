"""Write tests/durations.json from a run's JUnit XML: each test's seconds (setup, call
and teardown), by which tests/longest_first.py sends the longest tests first.

    CI=true IOLAB_DETERMINISM_RUNS=10 IOLAB_VALIDITY_RUNS=10 \
      .venv/bin/python -m pytest -n 5 --junitxml=/tmp/run.xml   # as .ci/run runs it
    python tests/durations.py /tmp/run.xml

The figures only order the run: a stale or missing one makes it slower, never wrong.
"""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

OUT = Path(__file__).with_name("durations.json")
SHORTEST = 1.0  # s: tests under it keep conftest's default, they do not change the order


def read_junit(path: Path) -> dict[str, float]:
    """{node id: seconds} of every test case in a pytest JUnit XML file."""
    seconds = {}
    for case in ET.parse(path).iter("testcase"):
        module = case.get("classname", "").split(".")
        # pytest writes "tests.test_labs" (+ ".Class") and the test's name; the node id
        # is "tests/test_labs.py::name" (or "::Class::name")
        head = [i for i, part in enumerate(module) if part.startswith("test_")][:1]
        if not head:
            continue
        path = "/".join(module[:head[0] + 1]) + ".py"
        node = "::".join([path, *module[head[0] + 1:], case.get("name", "")])
        seconds[node] = seconds.get(node, 0.0) + float(case.get("time") or 0)
    return seconds


def main(argv: list[str]) -> int:
    if len(argv) != 1 or not Path(argv[0]).is_file():
        print("usage: python tests/durations.py RUN.xml (pytest's --junitxml file)",
              file=sys.stderr)
        return 2
    seconds = {k: round(v, 1) for k, v in sorted(read_junit(Path(argv[0])).items())
               if v >= SHORTEST}
    OUT.write_text(json.dumps(seconds, indent=0, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"{OUT}: {len(seconds)} tests of {SHORTEST:g} s or more")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
