"""Clients that push a server's resources: one that sends and never reads
(backpressure), and ones that connect and then say nothing (an idle timeout).

`robust.backpressure`: a client sends up to 64 MiB of lines and never reads a
reply. A server that keeps reading piles the replies up in memory without end;
one that stops reading while its output waits (drop read interest, asyncio's
drain() or pause_reading()) stays small, and TCP's own flow control makes the
client's send() block. Memory is the server's Pss (RSS where Pss cannot be
read), from /proc, outside the server.

`robust.idle_timeout`: a silent client, and one that stops halfway through a
line, are closed by the server once they have been idle for its timeout; a
client that keeps talking is not. The cure for the pool-ceiling lesson (a few
idle clients hold every worker) and for slowloris.
"""

from __future__ import annotations

import socket
import threading
import time

from grader import evidence
from grader.checks import hints
from grader.checks.model import not_found, server_root
from grader.checks.registry import CheckContext, Param, Stage, check
from grader.lineclient import Reader, connect, reply_for, reset, why_failed
from grader.outcome import Outcome

MIB = 1024 * 1024
LINE = b"x" * 1023 + b"\n"  # 1 KiB lines: the replies are as large as the input


def memory_mib(root: int) -> float | None:
    kib = evidence.memory_kib(evidence.tree(root))
    return None if kib is None else kib / 1024


def flood(sock: socket.socket, total: int, stall: float, root: int) -> tuple[int, float]:
    """Send up to `total` bytes of lines without reading; stop once send() has made no
    progress for `stall` s (the server stopped reading). (bytes sent, peak memory)."""
    chunk = LINE * 256  # 256 KiB
    sent, peak, next_sample = 0, memory_mib(root) or 0.0, 0
    sock.settimeout(stall)
    try:
        while sent < total:
            sent += sock.send(chunk[:total - sent])
            if sent >= next_sample:
                peak, next_sample = max(peak, memory_mib(root) or 0.0), sent + 2 * MIB
    except TimeoutError:
        pass  # the server stopped reading: TCP's window closed
    except OSError:
        pass  # the server closed or reset the connection: what it holds is measured below
    time.sleep(0.3)  # what it read last is in its buffers now
    return sent, max(peak, memory_mib(root) or 0.0)


@check("robust.backpressure", Stage.NETWORK,
       "a client that sends and never reads: the server's memory stays bounded",
       Param("megabytes", int, 64, "MiB of lines the client tries to send without reading"),
       Param("max_growth", int, 32, "MiB the server's memory may grow meanwhile"),
       Param("stall", float, 1.5, "seconds without progress after which the client stops"))
def backpressure(ctx: CheckContext) -> Outcome:
    root = server_root(ctx)
    if root is None:
        return not_found()
    total, bound = int(ctx.param("megabytes")) * MIB, int(ctx.param("max_growth"))
    before = memory_mib(root)
    if before is None:
        return Outcome.error("the grader cannot read the server's memory in /proc")
    # a fixed receive buffer: Linux grows one only for a reader, but a host whose
    # tcp_rmem allows 32 MiB must not let this client's kernel hold the replies
    hog = connect(ctx.addr, rcvbuf=64 * 1024)
    try:
        sent, peak = flood(hog, total, float(ctx.param("stall")), root)
    finally:
        reset(hog)  # an RST: the server may drop what it still owes at once
    growth = peak - before
    figure = (f"the client sent {sent / MIB:.1f} of {total // MIB} MiB without reading; "
              f"server memory {before:.1f} -> {peak:.1f} MiB ({growth:+.1f} MiB)")
    alive = evidence.alive(root)
    if growth <= bound and alive:
        return Outcome(True, figure=figure)
    if not alive:
        return Outcome(False, figure=figure, expected="the server to survive a client that "
                       "never reads", got="the server died", hint=hint(ctx.model))
    return Outcome(False, figure=figure,
                   expected=f"the server's memory to grow by at most {bound} MiB while a "
                   f"client sent {sent / MIB:.0f} MiB and read nothing",
                   got=f"{growth:+.1f} MiB: it kept reading while its replies piled up",
                   hint=hint(ctx.model))


def hint(model: str) -> str:
    if model == "asyncio":
        return ("await writer.drain() after each write: it waits while the client is not "
                "reading, so the handler stops reading too")
    if model == "asyncio_protocol":
        return ("when the transport calls pause_writing() (its buffer passed the high-water "
                "mark), call transport.pause_reading(); resume_reading() in resume_writing()")
    if model in hints.BLOCKING:
        return "sendall() blocks while the client is not reading: do not buffer replies yourself"
    return ("stop reading a connection while its output buffer holds more than a limit "
            "(e.g. 1 MiB): drop its read interest, and ask for it again once the buffer drained")


def closed_within(sock: socket.socket, deadline: float) -> str:
    """'eof', 'reset' or 'open': how the server ended the connection by `deadline`."""
    reader = Reader(sock, max(0.0, deadline - time.monotonic()))
    reader.read_until_eof(1 << 16)
    if reader.eof:
        return "eof"
    return "reset" if reader.error.startswith("connection error") else "open"


@check("robust.idle_timeout", Stage.NETWORK,
       "idle clients are closed after the server's idle timeout; active ones are kept",
       Param("timeout", float, 2.0, "the server's idle timeout in seconds (the lab says it)"),
       Param("slack", float, 1.5, "seconds past the timeout the close may take"))
def idle_timeout(ctx: CheckContext) -> Outcome:
    limit, slack = float(ctx.param("timeout")), float(ctx.param("slack"))
    silent, halfway = connect(ctx.addr), connect(ctx.addr)
    started = time.monotonic()
    halfway.sendall(b"half a line, never fini")
    talker = Talker(ctx.addr, every=limit / 3, until=started + limit + 0.8)  # outlasts it
    talker.start()
    try:
        deadline = started + limit + slack
        ends = {"a silent client": closed_within(silent, deadline),
                "a client idle halfway through a line": closed_within(halfway, deadline)}
        waited = time.monotonic() - started
    finally:
        silent.close()
        halfway.close()
        talker.join(limit + slack + 5)
    kept = [who for who, end in ends.items() if end == "open"]
    if kept:
        return Outcome(False, figure=f"{', '.join(kept)} still open after {waited:.1f} s",
                       expected=f"the server to close clients idle for its {limit:g} s "
                       f"timeout (within {limit + slack:g} s)",
                       got=f"{' and '.join(kept)} still open after {waited:.1f} s",
                       hint=idle_hint(ctx.model, limit))
    if talker.problem:
        return Outcome(False, expected=f"a client that sends a line every {limit / 3:.1f} s "
                       "to stay connected and served (an idle timeout, not a time limit)",
                       got=talker.problem,
                       hint="restart a client's idle timer whenever bytes arrive from it")
    return Outcome(True, figure=f"2 idle clients closed within {waited:.1f} s "
                   f"(timeout {limit:g} s); a client sending a line every {limit / 3:.1f} s "
                   f"kept and served {talker.served} times")


class Talker(threading.Thread):
    """A client that sends a line every `every` s until `until`: it is never idle."""

    def __init__(self, addr, every: float, until: float):
        super().__init__(daemon=True)
        self.addr, self.every, self.until = addr, every, until
        self.served, self.problem = 0, ""

    def run(self) -> None:
        try:
            with connect(self.addr) as sock:
                while time.monotonic() < self.until:
                    line = b"still here %d" % self.served
                    sock.sendall(line + b"\n")
                    got = Reader(sock, 3.0).read_until_size(len(reply_for(line)))
                    if got != reply_for(line):
                        self.problem = (f"after {self.served} replies it got {got[:40]!r} "
                                        "(closed while active?)")
                        return
                    self.served += 1
                    time.sleep(self.every)
        except OSError as exc:
            self.problem = f"after {self.served} replies: {why_failed(exc)}"


def idle_hint(model: str, limit: float) -> str:
    if model == "asyncio":
        return (f"wrap each read in asyncio.timeout({limit:g}) (or asyncio.wait_for) and close "
                "the connection when it expires")
    if model == "asyncio_protocol":
        return (f"loop.call_later({limit:g}, transport.close) in connection_made; cancel and "
                "restart that timer in data_received")
    if model in hints.BLOCKING:
        return f"conn.settimeout({limit:g}) and close the connection on socket.timeout"
    return (f"remember when each connection last sent bytes; pass the wait call a timeout "
            f"and close the connections idle for more than {limit:g} s")

