"""Live progress on the terminal while the stack starts and the load runs.

The runner reports through a `progress(message)` callable; a Tick is a message
that the next one replaces (a countdown). terminal_progress() is the callable
for the command line.
"""

from __future__ import annotations

import sys
import threading
import time
from contextlib import contextmanager


class Tick(str):
    """A progress message that the next one replaces (a countdown on a terminal)."""


@contextmanager
def ticking(progress, label: str, total: float, every: float = 1.0):
    """While the block runs, report `label: 3/5 s` through progress every second.

    Past `total` it says what it waits for. terminal_progress shows one counting
    line on a terminal and thins the ticks out to a line every few seconds in a
    CI log.
    """
    done = threading.Event()
    started = time.monotonic()

    def tick() -> None:
        while not done.wait(every):
            elapsed = time.monotonic() - started
            if elapsed <= total + every / 2:
                progress(Tick(f"{label}: {min(elapsed, total):.0f}/{total:g} s"))
            else:
                progress(Tick(f"{label}: {elapsed:.0f} s ({total:g} s of load done, "
                              "waiting for Locust's statistics)"))

    thread = threading.Thread(target=tick, name="load-progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


def terminal_progress(stream=None, log_every: float = 5.0):
    """progress() for the command line. On a terminal a Tick rewrites one counting
    line; in a log (not a tty) a Tick is a plain line, one per log_every s at most."""
    stream = stream or sys.stdout
    tty = stream.isatty()
    state = {"open": False, "last": -log_every}
    lock = threading.Lock()

    def progress(message: str) -> None:
        with lock:
            if isinstance(message, Tick):
                if tty:
                    stream.write(f"\r\033[K{message}")
                    state["open"] = True
                elif time.monotonic() - state["last"] >= log_every:
                    state["last"] = time.monotonic()
                    stream.write(f"{message}\n")
            else:
                if state["open"]:
                    stream.write("\r\033[K")
                    state["open"] = False
                state["last"] = time.monotonic()  # a log's next tick comes log_every s later
                stream.write(f"{message}\n")
            stream.flush()

    return progress


def quiet(message: str) -> None:
    """progress() that shows nothing (tests, batch workers)."""
