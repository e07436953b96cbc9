"""A load generator started early and held at a gate until its load phase.

Locust takes a second or two to start (its imports; in the Compose stack, the
worker finding the master). The runner starts it beside the network checks
(Target.prepare_load) and it waits here, idle, until the load phase opens the gate:
that start-up then overlaps the checks instead of lengthening the load phase,
which holds the machine's load lock. The gate is a file: the Compose stack's
containers see the results folder, not the grader's memory.

    IOLAB_LOAD_GATE=/results/select/locust/go   # set: hold() waits for that file

Past the gate, Locust's master looks for its workers once a second (its headless
--expect-workers loop): workers_ready(), on Locust's `init` event, watches for them
every 20 ms instead, so the test starts as soon as they are in, not up to 1 s later.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

GATE_ENV = "IOLAB_LOAD_GATE"
GATE_FILE = "go"  # in the load phase's output folder, beside Locust's files
GATE_WAIT = 3600.0  # s: a grader gone without its teardown leaves no generator waiting on


def hold() -> None:
    """Return once the gate file exists (at once when IOLAB_LOAD_GATE is unset)."""
    path = os.environ.get(GATE_ENV, "")
    if not path:
        return
    deadline = time.monotonic() + GATE_WAIT
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            sys.exit(f"the load gate {path} did not open within {GATE_WAIT:g} s")
        time.sleep(0.02)


def open_gate(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()


def workers_ready(environment, **_kwargs) -> None:
    """Locust's `init` event: on a master that expects workers, return once they are
    ready (its message listener runs meanwhile: gevent), or after its own max wait."""
    from locust.runners import MasterRunner  # Locust is loaded by now

    runner, options = environment.runner, environment.parsed_options
    wanted = getattr(options, "expect_workers", 0) or 0
    if not isinstance(runner, MasterRunner) or wanted < 1:
        return
    deadline = time.monotonic() + (getattr(options, "expect_workers_max_wait", 0) or GATE_WAIT)
    while len(runner.clients.ready) < wanted and time.monotonic() < deadline:
        time.sleep(0.02)  # gevent's, patched in by Locust
