"""LINE/1 network checks: framing, pipelining, big lines, and bad clients.

Each check opens fresh connections, so one failure does not cascade into the
next. Figures say what was measured; failures say what was expected.
"""

from __future__ import annotations

import socket
import threading
import time

from grader.checks import hints
from grader.checks.registry import CheckContext, Param, Stage, check
from grader.lineclient import (
    Reader,
    connect,
    describe,
    exchange,
    first_difference,
    reply_for,
    reset,
    why_failed,
)
from grader.outcome import Outcome

FRAMING_HINT = (
    "keep an input buffer per connection and reply once per complete line "
    "(split on b'\\n'), never once per recv() chunk"
)


def _compare(got: bytes, expected: bytes, figure: str, hint: str) -> Outcome:
    if got == expected:
        return Outcome(True, figure=figure)
    wanted = expected.split(b"\n")[:-1]
    right = 0
    for ok, seen in zip(wanted, got.split(b"\n")[:-1]):
        if ok != seen:
            break
        right += 1
    return Outcome(
        False,
        figure=f"{right} of {len(wanted)} replies right",
        expected=describe(expected),
        got=first_difference(got, expected),
        hint=hint,
    )


@check("line.basic", Stage.NETWORK, "a line gets its length and itself back",
       Param("timeout", float, 5.0, "seconds to wait for the replies"))
def basic(ctx: CheckContext) -> Outcome:
    lines = [b"hello", b"", b"two words", "héllo".encode()]
    expected = b"".join(reply_for(line) for line in lines)
    chunks = [line + b"\n" for line in lines]
    got = exchange(ctx.addr, chunks, expected, timeout=ctx.param("timeout"), gap=0.05)
    return _compare(got, expected, "4/4 replies", "reply b'%d %s\\n' % (len(line), line) per line")


@check("line.split", Stage.NETWORK, "a line split over many segments",
       Param("timeout", float, 5.0, "seconds to wait for the replies"))
def split(ctx: CheckContext) -> Outcome:
    text = b"hello, segmented world"
    chunks = [bytes([b]) for b in text] + [b"\n", b"ab", b"c\nde", b"f\n"]
    expected = reply_for(text) + reply_for(b"abc") + reply_for(b"def")
    got = exchange(ctx.addr, chunks, expected, timeout=ctx.param("timeout"), gap=0.01)
    return _compare(got, expected, f"{len(chunks)} segments, 3 replies", FRAMING_HINT)


@check("line.pipelined", Stage.NETWORK, "many lines in one segment",
       Param("lines", int, 200, "lines sent in one segment"),
       Param("timeout", float, 5.0, "seconds to wait for the replies"))
def pipelined(ctx: CheckContext) -> Outcome:
    count = int(ctx.param("lines"))
    lines = [b"line %d" % i for i in range(count)]
    expected = b"".join(reply_for(line) for line in lines)
    payload = b"".join(line + b"\n" for line in lines)
    got = exchange(ctx.addr, [payload], expected, timeout=ctx.param("timeout"))
    return _compare(got, expected, f"{count}/{count} replies in order", FRAMING_HINT)


@check("line.large", Stage.NETWORK, "64 KiB lines, replies larger than one send()",
       Param("lines", int, 96, "lines sent (96 x 64 KiB: more than a send buffer holds)"),
       Param("size", int, 64 * 1024, "bytes per line"),
       Param("timeout", float, 10.0, "seconds to wait for the replies"))
def large(ctx: CheckContext) -> Outcome:
    count = int(ctx.param("lines"))  # 6 MiB of replies: more than a send buffer holds
    size = int(ctx.param("size"))
    lines = [bytes([97 + i % 26]) * size for i in range(count)]
    expected = b"".join(reply_for(line) for line in lines)
    payload = b"".join(line + b"\n" for line in lines)
    got = exchange(ctx.addr, [payload], expected, timeout=ctx.param("timeout"),
                   slow_reader=True)
    return _compare(got, expected, f"{count} × {size // 1024} KiB lines, {len(expected)} bytes back",
                    _large_hint(got, expected, size, ctx.model))


def _large_hint(got: bytes, expected: bytes, size: int, model: str) -> str:
    """Where the replies go wrong tells which bug. A reply whose length prefix is not the
    line's, or with a b'\n' inside it, answered a recv() chunk, not a line (framing); a
    reply cut short, or followed too early by the next one, lost the rest of a send()."""
    at = next((i for i, (a, b) in enumerate(zip(got, expected)) if a != b), None)
    if at is None:  # what came is right, only short
        return hints.partial_send(model)
    start = expected.rfind(b"\n", 0, at) + 1  # the reply the difference is in
    number = expected.count(b"\n", 0, start) + 1
    head, wanted = got[start:].split(b" ", 1)[0], expected[start:].split(b" ", 1)[0]
    if not head.isdigit():
        return FRAMING_HINT
    if head != wanted:
        return hints.framing(f"reply {number} says its line is {int(head)} bytes long, "
                             f"but the line sent was {size}")
    if b"\n" in got[start:start + len(head) + 1 + int(head)]:
        return hints.framing(f"reply {number} has a b'\\n' inside it")
    return hints.partial_send(model)


@check("robust.silent_client", Stage.NETWORK, "a silent client does not block others",
       Param("timeout", float, 3.0, "seconds to wait for the reply"))
def silent_client(ctx: CheckContext) -> Outcome:
    quiet = [connect(ctx.addr) for _ in range(2)]
    try:
        quiet[1].sendall(b"half a line, never finished")
        time.sleep(0.2)  # let the server accept them (and get stuck, if it will)
        expected = reply_for(b"anyone there?")
        got = exchange(ctx.addr, [b"anyone there?\n"], expected, timeout=ctx.param("timeout"))
    finally:
        for sock in quiet:
            sock.close()
    if got == expected:
        return Outcome(True, figure="served while 2 clients stayed silent")
    return Outcome(
        False,
        expected=f"{describe(expected)} within {ctx.param('timeout'):g} s while 2 other "
        "clients were silent",
        got=first_difference(got, expected),
        hint="a blocking recv() on one client stalls every other one: "
        "wait for readiness (select/poll/epoll) or give each client its own thread",
    )


@check("robust.reset", Stage.NETWORK, "clients that reset (RST) do not kill the server",
       Param("timeout", float, 5.0, "seconds to wait for the reply after the resets"))
def client_reset(ctx: CheckContext) -> Outcome:
    for payload in (b"reset me\n" * 1000, b"partial line then RST", b""):
        sock = connect(ctx.addr)
        if payload:
            sock.sendall(payload)
        time.sleep(0.05)
        reset(sock)
    time.sleep(0.2)
    expected = reply_for(b"still alive?")
    try:
        got = exchange(ctx.addr, [b"still alive?\n"], expected, timeout=ctx.param("timeout"))
    except OSError as exc:
        why = f"could not connect after 3 resets: {why_failed(exc)}"
        return Outcome(False, expected="the server to keep serving", got=why, hint=_RESET_HINT)
    if got == expected:
        return Outcome(True, figure="3 resets survived, next client served")
    return Outcome(False, expected=describe(expected), got=first_difference(got, expected),
                   hint=_RESET_HINT)


_RESET_HINT = (
    "catch ConnectionResetError and BrokenPipeError (OSError) per connection: "
    "close that one socket, forget its buffers and keep serving the others"
)


@check("robust.eof", Stage.NETWORK, "half-close: replies owed are sent, then the server closes",
       Param("timeout", float, 5.0, "seconds to wait for the replies and the close"))
def eof_flush(ctx: CheckContext) -> Outcome:
    lines = [b"a", b"bb", b"x" * 30000]
    expected = b"".join(reply_for(line) for line in lines)
    with connect(ctx.addr) as sock:
        sock.sendall(b"".join(line + b"\n" for line in lines) + b"no newline, no reply")
        sock.shutdown(socket.SHUT_WR)
        reader = Reader(sock, ctx.param("timeout"))
        got = reader.read_until_eof(len(expected) + 4096)
    if got == expected and reader.eof:
        return Outcome(True, figure=f"{len(lines)} replies, then the server closed")
    if got != expected:
        return Outcome(False, expected=describe(expected) + " then EOF",
                       got=first_difference(got, expected),
                       hint=FRAMING_HINT if not expected.startswith(got) else  # wrong, not short
                       "on recv() == b'' the client is done sending: "
                       "still send every reply you owe, then close")
    return Outcome(False, expected="the server to close after its replies",
                   got=f"the connection stayed open ({reader.error})",
                   hint=hints.never_closes(ctx.model))


@check("robust.concurrent", Stage.NETWORK, "many clients at once",
       Param("clients", int, 50, "clients connected at once"),
       Param("rounds", int, 10, "lines each client sends, one at a time"))
def concurrent(ctx: CheckContext) -> Outcome:
    clients = int(ctx.param("clients"))
    rounds = int(ctx.param("rounds"))
    failures: list[str] = []

    def one_client(n: int) -> None:
        try:
            with connect(ctx.addr, timeout=10) as sock:
                for r in range(rounds):
                    line = b"client %d round %d" % (n, r)
                    sock.sendall(line + b"\n")
                    got = Reader(sock, 10.0).read_until_size(len(reply_for(line)))
                    if got != reply_for(line):
                        failures.append(f"client {n}: {first_difference(got, reply_for(line))}")
                        return
        except OSError as exc:
            failures.append(f"client {n}: {why_failed(exc)}")

    threads = [threading.Thread(target=one_client, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    if not failures:
        return Outcome(True, figure=f"{clients} clients × {rounds} lines, all correct")
    return Outcome(False, figure=f"{clients - len(failures)}/{clients} clients served",
                   expected=f"all {clients} concurrent clients served",
                   got=f"{len(failures)} failed, first: {failures[0]}",
                   hint=hints.concurrent(ctx.model))
