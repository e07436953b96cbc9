"""What a multiplexed loop must get right beyond answering lines (lab-3).

`resource.halfclose_cpu`: a client half-closes (shutdown(SHUT_WR)) while
replies are still owed to it, and does not read them for a while. From then
on recv() on that socket returns b'' at once, so the socket is readable
forever: a level-triggered select/poll/epoll loop that still asks for reads on
it returns at once, every time, and spins until the client reads. A correct
server asks only for writability then, which the client's full window never
grants: it sleeps.

`robust.refuse_past_fd_setsize` (the select-limit exercise): select() cannot
watch an fd of FD_SETSIZE (1024) or more (Windows: more than 512 sockets).
A careful select() server refuses the clients past that (accepts and closes
them, or stops accepting while full) and keeps serving the ones it has; a
naive one passes the fd to select(), gets ValueError and dies with every client.
"""

from __future__ import annotations

import selectors
import socket
import time

from grader import evidence
from grader.checks import hints
from grader.checks.model import not_found, profile, server_root
from grader.checks.processes import CLOSED, SERVED, SILENT, crowd, served_after, still_served
from grader.checks.registry import CheckContext, Param, Stage, check
from grader.lineclient import why_failed
from grader.outcome import Outcome

LINE = b"x" * 999 + b"\n"  # 1000 bytes a line: few lines, cheap for any server to frame


# --- resource.halfclose_cpu --------------------------------------------------------------

def small_window(addr) -> socket.socket:
    """A client whose replies back up at once: a 4 KiB receive window, and segments
    of at most 536 bytes (TCP_MAXSEG, advertised in its SYN), which keep the server's
    send buffer near its 16 KiB start (Linux sizes it from the segment size: about
    2.6 MiB on loopback otherwise). So a few hundred KiB of replies are still owed at
    the half-close, below the 1 MiB a server with backpressure buffers before it stops
    reading: every server reads up to the EOF, and only then can it spin."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, 536)
        sock.settimeout(5)
        sock.connect(addr)
    except OSError:
        sock.close()
        raise
    return sock


def send_and_half_close(sock: socket.socket, data: bytes, stall: float = 0.5) -> int:
    """Send as much of `data` as the server takes (until it stops reading for `stall`
    s), then shutdown(SHUT_WR). Returns the bytes sent."""
    sock.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(sock, selectors.EVENT_WRITE)
    sent = 0
    try:
        while sent < len(data) and sel.select(stall):
            try:
                sent += sock.send(data[sent:sent + 1024 * 1024])
            except BlockingIOError:
                continue
    finally:
        sel.close()
    sock.shutdown(socket.SHUT_WR)
    return sent


def settle(root: int, limit: float, step: float = 0.2) -> float:
    """Wait (at most `limit` s) until the server sleeps through one `step`: it has
    then framed what it read. A spinning server never does. Returns the wait."""
    started = time.monotonic()
    while time.monotonic() - started < limit:
        before = evidence.wanting(root)[1]
        time.sleep(step)
        if evidence.wanting(root)[1] - before < step / 5:
            break
    return time.monotonic() - started


@check("resource.halfclose_cpu", Stage.NETWORK,
       "a half-closed client that does not read costs no CPU (no spin after EOF)",
       Param("lines", int, 512, "1000-byte lines sent before the half-close (512 KB: more "
             "than the socket buffers take, less than a server buffers before it stops reading)"),
       Param("seconds", float, 1.5, "how long the client then neither sends nor reads"),
       Param("max_busy", float, 0.3, "seconds of that the server may spend on a CPU or "
             "waiting for one (a sleeping server: about 0; a busy loop: all of it)"))
def halfclose_cpu(ctx: CheckContext) -> Outcome:
    # Deterministic on a crowded machine: a busy loop wants a CPU the whole window
    # (on one, or queued for one), whatever share it gets; a server asleep in its
    # wait call wants none. The measure is that wanting time (schedstat), not the
    # CPU share, and the gap is the whole window against about 0.
    root = server_root(ctx)
    if root is None:
        return not_found()
    window, limit = float(ctx.param("seconds")), float(ctx.param("max_busy"))
    try:
        sock = small_window(ctx.addr)
    except OSError as exc:
        return Outcome(False, expected="a connection", got=why_failed(exc),
                       hint="keep accepting clients")
    try:
        sent = send_and_half_close(sock, LINE * int(ctx.param("lines")))
        waited = settle(root, 2.0)
        cpu0, want0 = evidence.wanting(root)
        time.sleep(window)
        cpu1, want1 = evidence.wanting(root)
        gone = not evidence.alive(root)
    finally:
        sock.close()
    cpu, want = cpu1 - cpu0, want1 - want0
    figure = (f"{want:.2f} s of {window:g} s on a CPU or waiting for one ({cpu:.2f} CPU s) "
              f"after {sent // 1000} KB and a half-close, the client not reading")
    if gone:
        return Outcome(False, figure=figure, expected="the server to keep running",
                       got="it ended after the client half-closed",
                       hint="recv() returning b'' ends that client's input, not the server: "
                       "send it what it is owed, close that one socket, serve the others")
    if want <= limit:
        return Outcome(True, figure=figure)
    return Outcome(False, figure=figure,
                   expected=f"at most {limit:g} s of {window:g} s on a CPU or waiting for one "
                   "while the half-closed client does not read (a sleeping server: about 0)",
                   got=f"{want:.2f} s ({cpu:.2f} CPU s; it never slept, not even after "
                   f"{waited:.1f} s to frame the input): a busy loop",
                   hint=hints.half_close_spin(ctx.model))


# --- robust.refuse_past_fd_setsize --------------------------------------------------------

@check("robust.refuse_past_fd_setsize", Stage.NETWORK,
       "past FD_SETSIZE: refuse the extra clients, keep serving the others",
       Param("clients", int, 1100, "clients that connect one after another and stay (more "
             "than select() can watch)"),
       Param("timeout", float, 5.0, "seconds each client has to be answered or closed"))
def refuse_past_fd_setsize(ctx: CheckContext) -> Outcome:
    # Deterministic against the naive select() server: `clients` (1100) needs fds
    # past 1023 whatever the timing, so select() raises ValueError every run and,
    # uncaught, the process ends; the served clients' second line then fails too.
    timeout = float(ctx.param("timeout"))
    result = crowd(ctx)
    try:
        served = len(result.of(SERVED))
        if served == result.count:
            return Outcome(True, figure=f"all {served} clients served: the server met no "
                           "FD_SETSIZE limit (does it use select()?)")
        lost = (still_served(result.open, timeout) if result.alive is not False
                else list(result.open))
    finally:
        result.close()
    os_name = profile(ctx)
    if result.alive is False or not served or (served and len(lost) == served):
        return Outcome(False, figure=result.story(),
                       expected=f"the server to survive {result.count} clients, refusing those "
                       "select() cannot watch and serving the others",
                       got=result.story() + ": it crashed, not a clean refusal"
                       + (f" (the {served} served clients lost their connection)"
                          if served else ""),
                       hint=hints.select_limit(os_name))
    if lost:
        return Outcome(False, figure=result.story(), expected=f"the {served} served clients "
                       "still served", got=f"{len(lost)} of them got no reply to a second line",
                       hint="refusing a new client must not disturb the ones already served")
    if not served_after(ctx.addr, timeout):
        return Outcome(False, figure=result.story(),
                       expected="a new client served once the crowd had left",
                       got=f"no reply within {timeout:g} s",
                       hint="close every connection you refuse and every one that ends: a new "
                       "client gets the lowest free fd, which must be below 1024 again")
    refused, waiting = result.of(CLOSED), result.of(SILENT)
    how = ([f"{len(refused)} refused (closed at once, from client {refused[0] + 1})"]
           if refused else []) + ([f"{len(waiting)} left waiting (not accepted)"]
                                  if waiting else [])
    return Outcome(True, figure=f"{served} served, {', '.join(how) or 'none refused'}: a clean "
                   f"refusal; the {served} served were served again, and a new client after "
                   "they left")
