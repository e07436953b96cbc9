"""Longest first: the pytest-xdist scheduler `make test` runs (conftest.py installs it
in place of `--dist load`'s).

xdist's own schedulers hand out tests in collection order: alphabetical files, so the
run ended with test_labs' 25-55 s gradings on one or two workers while the others sat
idle (worksteal: the last ~90 s of a CI-settings run were 21-54% busy). This one is
list scheduling, longest first: whenever a worker is down to its last test, it is sent
the longest unit of tests still unsent. A unit is one test, or a whole module when the
module defines a fixture wider than a test (module or session scope): split over
workers, each worker would build it again (test_platforms' Gradescope images, twice at
once, collided).

How long a test takes comes from tests/durations.json, written from a run's JUnit XML
by tests/durations.py; a test not in it counts DEFAULT_SECONDS. Stale or missing
figures make a run slower, never wrong: every test is still sent exactly once.

    Caller (xdist's DSession): the LoadScheduling interface, unchanged.
    Overridden: schedule() (the order) and check_schedule() (a whole unit at a time).
"""

from __future__ import annotations

import ast
import json
from functools import cache
from pathlib import Path

from xdist.scheduler import LoadScheduling

TESTS = Path(__file__).resolve().parent
DURATIONS = TESTS / "durations.json"
DEFAULT_SECONDS = 0.5  # durations.py leaves out tests under 1 s
WIDE_SCOPES = {"module", "package", "session"}


@cache
def durations() -> dict[str, float]:
    try:
        return json.loads(DURATIONS.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


@cache
def shares_a_wide_fixture(module: str) -> bool:
    """Whether the test file `module` (a node id's path) defines a fixture of module
    or session scope: @pytest.fixture(scope="module"), read from its source."""
    try:
        tree = ast.parse((TESTS.parent / module).read_text(encoding="utf-8"))
    except (OSError, SyntaxError):
        return False
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and ast.unparse(node.func).endswith("fixture"):
            for kw in node.keywords:
                if kw.arg == "scope" and getattr(kw.value, "value", None) in WIDE_SCOPES:
                    return True
    return False


def unit_of(nodeid: str) -> str:
    module = nodeid.split("::")[0]
    return module if shares_a_wide_fixture(module) else nodeid


def longest_first(collection: list[str], seconds: dict[str, float] | None = None) -> list[int]:
    """Indices of `collection`, unit by unit (a unit's tests in collection order), the
    longest unit first; `seconds` per node id (default: tests/durations.json)."""
    units: dict[str, list[int]] = {}
    for index, nodeid in enumerate(collection):
        units.setdefault(unit_of(nodeid), []).append(index)
    seconds = durations() if seconds is None else seconds

    def length(unit: str) -> float:
        return sum(seconds.get(collection[i], DEFAULT_SECONDS) for i in units[unit])
    return [i for unit in sorted(units, key=length, reverse=True) for i in units[unit]]


class LongestFirst(LoadScheduling):
    """LoadScheduling with the order above, and a whole unit sent at a time, each to
    the worker that is down to its last test (a worker runs a test only once it holds
    the next, or is told to stop: so each keeps one in hand)."""

    def schedule(self) -> None:
        assert self.collection_is_completed
        if self.collection is None:
            if not self._check_nodes_have_same_collection():
                self.log("**Different tests collected, aborting run**")
                return
            self.collection = next(iter(self.node2collection.values()))
            self.pending[:] = longest_first(self.collection)
            for _ in range(2):  # round robin: each worker its longest, then its next
                for node in self.nodes:
                    self._send_unit(node)
        for node in self.nodes:
            self.check_schedule(node)

    def check_schedule(self, node, duration: float = 0) -> None:
        if node.shutting_down:
            return
        while self.pending and len(self.node2pending[node]) < 2:
            self._send_unit(node)
        if not self.pending:
            node.shutdown()

    def _send_unit(self, node) -> None:
        if not self.pending:
            return
        unit = unit_of(self.collection[self.pending[0]])
        size = next((n for n, i in enumerate(self.pending)
                     if unit_of(self.collection[i]) != unit), len(self.pending))
        self._send_tests(node, size)
