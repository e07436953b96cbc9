"""Lesson checks: they show a model's limit on the network, with figures.

`robust.pool_ceiling` is lab-1's thread-pool lesson: a pool of POOL_SIZE
workers serves POOL_SIZE clients at once, and the next one waits, unanswered,
until a worker is free. It passes when the server behaves exactly so, which
also proves the pool is bounded (a thread per connection answers at once, an
iterative server does not serve even the second client).

`robust.stall` is lab-4's blocking-call lesson: clients that each send a line at
the same moment are answered side by side by an event loop, but one blocking
call in a handler (time.sleep, a synchronous library) stops the whole loop, so
their replies come one after another: the iterative server again.
"""

from __future__ import annotations

import threading
import time

from grader.checks import hints
from grader.checks.registry import CheckContext, Param, Stage, check
from grader.lineclient import Reader, connect, reply_for
from grader.outcome import Outcome


def _silent(addr, count: int) -> list:
    socks = []
    for _ in range(count):
        socks.append(connect(addr))
        time.sleep(0.01)
    return socks


def _ask(sock, line: bytes, timeout: float) -> bytes:
    sock.sendall(line + b"\n")
    return Reader(sock, timeout).read_until_size(len(reply_for(line)))


@check("robust.pool_ceiling", Stage.NETWORK, "a bounded pool: the client past the pool waits",
       Param("pool_size", int, 16, "the pool's worker threads (the server's POOL_SIZE)"),
       Param("wait", float, 1.5, "seconds the client past the pool must wait unanswered"))
def pool_ceiling(ctx: CheckContext) -> Outcome:
    size = int(ctx.param("pool_size"))
    wait = float(ctx.param("wait"))
    held = _silent(ctx.addr, size - 1)
    try:
        time.sleep(0.3)  # let the workers take them
        with connect(ctx.addr) as probe:
            started = time.monotonic()
            got = _ask(probe, b"one worker is still free", 5.0)
        if got != reply_for(b"one worker is still free"):
            return Outcome(False, expected=f"a reply while {size - 1} silent clients hold "
                           f"{size - 1} of {size} workers",
                           got=f"no reply within 5 s ({got[:40]!r})",
                           hint=f"start POOL_SIZE (default {size}) worker threads that each "
                           "serve one client at a time")
        first = time.monotonic() - started
        time.sleep(0.2)  # the probe's worker sees EOF and is free again
        held += _silent(ctx.addr, 1)
        time.sleep(0.3)
        late = connect(ctx.addr)
        try:
            got = _ask(late, b"is the pool full?", wait)
            if got:
                return Outcome(False, expected=f"client {size + 1} to wait while {size} silent "
                               f"clients hold all {size} workers",
                               got=f"it was answered at once ({got[:40]!r})",
                               hint="the pool is not bounded: do not start a thread per "
                               f"connection, hand connections to {size} workers via a queue")
            for sock in held:
                sock.close()
            held = []
            freed = time.monotonic()
            rest = Reader(late, 5.0).read_until_size(len(reply_for(b"is the pool full?")))
            if rest != reply_for(b"is the pool full?"):
                return Outcome(False, expected="a reply once the silent clients left",
                               got=f"no reply within 5 s ({rest[:40]!r})",
                               hint="a worker must take the next queued connection "
                               "when its client leaves")
            after = time.monotonic() - freed
        finally:
            late.close()
    finally:
        for sock in held:
            sock.close()
    return Outcome(True, figure=f"{size - 1} busy: served in {first * 1000:.0f} ms; {size} busy: "
                   f"client {size + 1} waited {wait:g} s unanswered, then was served "
                   f"{after * 1000:.0f} ms after the silent ones left (the lesson)")


def _timed_replies(addr, clients: int, timeout: float) -> list[float | None]:
    """Each of `clients` connections sends one line at the same moment; the seconds
    each waited for its reply (None: none came within `timeout`)."""
    socks = [connect(addr, timeout=5) for _ in range(clients)]
    times: list[float | None] = [None] * clients
    ready = threading.Barrier(clients)

    def one(i: int) -> None:
        line = b"client %d asks at the same moment" % i
        try:
            ready.wait(5)
            started = time.monotonic()
            if _ask(socks[i], line, timeout) == reply_for(line):
                times[i] = time.monotonic() - started
        except (OSError, threading.BrokenBarrierError):
            pass  # no reply: counted as such

    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(clients)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout + 6)
    finally:
        for sock in socks:
            sock.close()
    return times


@check("robust.stall", Stage.NETWORK, "clients that ask at the same moment are served side by side",
       Param("clients", int, 8, "clients that send one line each at the same moment"),
       Param("spread", float, 1.0, "seconds the last reply may come after the first (at least: "
             "more when one reply itself takes longer)"),
       Param("timeout", float, 10.0, "seconds each client waits for its reply"))
def stall(ctx: CheckContext) -> Outcome:
    clients, timeout = int(ctx.param("clients")), float(ctx.param("timeout"))
    times = _timed_replies(ctx.addr, clients, timeout)
    got = sorted(t for t in times if t is not None)
    shown = ", ".join(f"{t:.2f}" for t in got) or "none"
    figure = f"{clients} clients sent a line at once: replies after {shown} s"
    if len(got) < clients:
        return Outcome(False, figure=figure, expected=f"all {clients} clients answered within "
                       f"{timeout:g} s", got=f"{clients - len(got)} got no reply",
                       hint=hints.stall(ctx.model))
    allowed = max(float(ctx.param("spread")), got[0])
    if got[-1] - got[0] <= allowed:
        return Outcome(True, figure=figure + " (side by side)")
    return Outcome(False, figure=figure,
                   expected=f"the last reply at most {allowed:.2f} s after the first "
                   "(the clients served side by side)",
                   got=f"replies after {shown} s: one client at a time, each waited for the "
                   f"others (the last {got[-1] - got[0]:.2f} s after the first)",
                   hint=hints.stall(ctx.model))
