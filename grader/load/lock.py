"""One load phase at a time per machine: a file lock that batch grading holds.

Throughput and latency are judged against a calibration measured on the same
machine; two load phases at once would each see the other's load. Batch
grading (and the tests) set IOLAB_LOAD_LOCK to a file; every load phase of
every grader process on the machine then takes its lock in turn.
"""

from __future__ import annotations

import os
import time
from contextlib import contextmanager

try:
    import fcntl  # POSIX only
except ImportError:  # Windows: no flock; load phases then may overlap
    fcntl = None

LOAD_LOCK_ENV = "IOLAB_LOAD_LOCK"


@contextmanager
def exclusive_load():
    """Hold the machine's load lock (when IOLAB_LOAD_LOCK names a file) around a load
    phase; yields the seconds spent waiting for it (a time limit should not count them)."""
    path = os.environ.get(LOAD_LOCK_ENV)
    if not path or fcntl is None:
        yield 0.0
        return
    with open(path, "a") as fh:
        started = time.monotonic()
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield time.monotonic() - started
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
