"""Checks of what a process or thread per connection costs: zombies and the task ceiling.

`robust.no_zombies` (lab-1's fork exercise): a child that exits stays in the
process table as a zombie (state Z in /proc) until its parent waits for it.
A fork server that never calls waitpid() keeps one per client that ever left.

`robust.thread_ceiling` (a lesson, `expect: fail`) and `robust.refuse_past_ceiling`
(lab-1's thread-ceiling exercise): nothing in a thread-per-connection program
bounds its threads; the OS does (the sandbox's pids limit: 512 tasks in docker
mode, emulated in local mode, see servers/osprofile/sitecustomize.py). Past it
Thread.start() raises RuntimeError. A naive server dies there, with every
client; a careful one refuses the clients it cannot serve and keeps the others.
"""

from __future__ import annotations

import selectors
import socket
import time
from dataclasses import dataclass, field

from grader import evidence
from grader.checks.model import HOW, not_found, server_root
from grader.checks.registry import CheckContext, Param, Stage, check
from grader.lineclient import Reader, connect, exchange, reply_for
from grader.outcome import Outcome
from grader.proc import raise_fd_limit

REAP_HINT = (
    "a child that has exited stays a zombie until its parent waits for it: install a SIGCHLD "
    "handler that calls os.waitpid(-1, os.WNOHANG) in a loop until it returns (0, 0) (one "
    "signal may stand for many children), or signal.signal(signal.SIGCHLD, signal.SIG_IGN) "
    "so the kernel reaps them"
)
REFUSE_HINT = (
    "wrap Thread.start() in try/except RuntimeError: close the connection you cannot serve "
    "and go back to accept(); the clients you already serve keep their threads"
)


# --- robust.no_zombies ---------------------------------------------------------------

def each(before: int | None, during: int | None, count: int, what: str) -> str:
    """'; ≈ 650 KiB of memory per child': what a connection costs, from the server's
    Pss before and while `count` connections were held; '' when it cannot be read."""
    if before is None or during is None or count <= 0:
        return ""
    return f"; ≈ {max(during - before, 0) / count:,.0f} KiB of memory per {what}"


def visit(addr, clients: int, count_children):
    """`clients` connect at once and are each answered once, then all leave (EOF).
    Returns count_children() taken while they were all connected."""
    socks = []
    try:
        for i in range(clients):
            socks.append(connect(addr))
            socks[-1].sendall(b"visitor %d\n" % i)
        deadline = time.monotonic() + 5.0  # for all of them: a server that serves
        for i, sock in enumerate(socks):  # one at a time must not cost 5 s each
            Reader(sock, max(deadline - time.monotonic(), 0.01)).read_until_size(
                len(reply_for(b"visitor %d" % i)))
        return count_children()
    finally:
        for sock in socks:
            sock.close()


def children_states(root: int) -> dict[int, str]:
    """{pid: state letter} of every descendant of `root` (Z: a zombie)."""
    states = {}
    for pid in evidence.tree(root):
        if pid != root and (fields := evidence.stat(pid)):
            states[pid] = fields[0]
    return states


@check("robust.no_zombies", Stage.NETWORK, "no zombie processes after clients leave",
       Param("clients", int, 50, "clients that connect, are answered once, and leave"),
       Param("wait", float, 5.0, "seconds the server has to reap its children after they leave"))
def no_zombies(ctx: CheckContext) -> Outcome:
    # Deterministic against a server that never waits for its children: a zombie
    # stays until its parent reaps it or exits, so once any child has exited
    # (its client left) the count below can only grow. A reaping server reaches
    # zero within milliseconds; `wait` is only a bound on a loaded machine.
    root = server_root(ctx)
    if root is None:
        return not_found()
    clients, wait = int(ctx.param("clients")), float(ctx.param("wait"))
    before = evidence.memory_kib([root])
    seen, during = visit(ctx.addr, clients, lambda: (
        sum(s != "Z" for s in children_states(root).values()),
        evidence.memory_kib(evidence.tree(root))))
    cost = each(before, during, seen, "child")
    left = time.monotonic()
    states = children_states(root)
    while time.monotonic() - left < wait and states:
        time.sleep(0.1)
        states = children_states(root)
    zombies = sorted(pid for pid, state in states.items() if state == "Z")
    living = len(states) - len(zombies)
    if ctx.model == "fork" and seen == 0:
        return Outcome(False, figure=f"no child processes under {clients} clients",
                       expected=f"a child process per client ({clients} while they were "
                       "connected), each reaped once it exits",
                       got="the server never forked: there was nothing to reap",
                       hint=HOW["fork"])
    figure = (f"{seen} child processes while {clients} clients were connected; "
              f"{len(zombies)} zombies, {living} still running {wait:g} s after they left{cost}")
    if not zombies:
        return Outcome(True, figure=f"{seen} child processes while {clients} clients were "
                       f"connected; no zombies {time.monotonic() - left:.1f} s after they left"
                       + (f" ({living} children still running)" if living else "") + cost)
    return Outcome(False, figure=figure,
                   expected=f"no zombie processes {wait:g} s after {clients} clients left",
                   got=f"{len(zombies)} zombies (state Z in /proc/PID/stat, e.g. pid "
                   f"{zombies[0]}): children that exited and were never waited for",
                   hint=REAP_HINT)


# --- the thread ceiling ------------------------------------------------------------------

SERVED, CLOSED, SILENT, WRONG, UNREACHABLE, NOT_TRIED = (
    "served", "closed", "silent", "wrong", "unreachable", "not tried")


@dataclass
class Crowd:
    """What happened to each of `count` clients that arrived one after another."""

    count: int
    states: list[str]
    open: dict[int, socket.socket] = field(default_factory=dict)  # the served, still connected
    alive: bool | None = None  # the server process, after (None: cannot tell)
    cost: str = ""  # memory per served client, e.g. "≈ 90 KiB of memory per thread"

    def of(self, state: str) -> list[int]:
        return [i for i, s in enumerate(self.states) if s == state]

    def close(self) -> None:
        for sock in self.open.values():
            sock.close()
        self.open.clear()

    def story(self) -> str:
        """'510 served, 90 closed without a reply (from client 511)'"""
        parts = [f"{len(self.of(SERVED))} served"]
        words = {CLOSED: "closed without a reply",
                 SILENT: "neither answered nor closed", WRONG: "answered wrongly",
                 UNREACHABLE: "could not connect", NOT_TRIED: "not tried: the server was gone"}
        for state, text in words.items():
            if self.of(state):
                first = self.of(state)[0] + 1
                parts.append(f"{len(self.of(state))} {text} (from client {first})")
        if self.alive is False:
            parts.append("the server process died")
        return ", ".join(parts)


def line_of(i: int) -> bytes:
    return b"client %d" % i


def arrive(addr, count: int, root: int | None) -> tuple[dict[int, socket.socket], list[str]]:
    """`count` clients connect one after another, each sending one line at once."""
    socks, states, failures = {}, [NOT_TRIED] * count, 0
    for i in range(count):
        try:
            sock = connect(addr, timeout=5.0)
        except OSError:
            states[i], failures = UNREACHABLE, failures + 1
            if failures >= 3 or (root is not None and not evidence.alive(root)):
                break  # the server is gone: each later connect would only wait
            continue
        failures = 0
        try:
            sock.sendall(line_of(i) + b"\n")
        except OSError:
            states[i] = CLOSED
            sock.close()
            continue
        sock.setblocking(False)
        socks[i], states[i] = sock, SILENT
    return socks, states


def collect(socks: dict[int, socket.socket], states: list[str], timeout: float) -> None:
    """Up to `timeout` s for each client's reply, or its close; the rest stay SILENT."""
    sel = selectors.DefaultSelector()
    got: dict[int, bytes] = {}
    for i, sock in socks.items():
        sel.register(sock, selectors.EVENT_READ, i)
        got[i] = b""
    deadline = time.monotonic() + timeout
    while sel.get_map() and (left := deadline - time.monotonic()) > 0:
        for key, _ in sel.select(left):
            i = key.data
            try:
                data = key.fileobj.recv(4096)
            except BlockingIOError:
                continue
            except OSError:  # reset: closed with our line unread
                data = b""
            got[i] += data
            expected = reply_for(line_of(i))
            if data and expected.startswith(got[i]) and got[i] != expected:
                continue  # more to come
            states[i] = SERVED if got[i] == expected else CLOSED if not got[i] else WRONG
            sel.unregister(key.fileobj)
    sel.close()
    for i in [i for i in socks if states[i] != SERVED]:
        socks.pop(i).close()


def crowd(ctx: CheckContext) -> Crowd:
    """ctx's `clients` arrive; what became of each, the served still connected."""
    raise_fd_limit()
    count, timeout = int(ctx.param("clients")), float(ctx.param("timeout"))
    root = server_root(ctx)
    host, port = ctx.addr
    addr = (socket.gethostbyname(host), port)  # docker: no name lookup once the server is gone
    before = evidence.memory_kib([root]) if root else None
    socks, states = arrive(addr, count, root)
    collect(socks, states, timeout)
    result = Crowd(count, states, socks)
    if root is not None:
        result.alive = evidence.alive(root)
        if result.alive:
            result.cost = each(before, evidence.memory_kib([root]), len(result.of(SERVED)),
                               "thread")
    return result


def no_ceiling(crowd_: Crowd) -> Outcome:
    return Outcome.unavailable(
        f"no thread ceiling below {crowd_.count} clients here: all were served (the sandbox "
        "sets the ceiling: docker's pids limit, or its emulation in local mode)")


CEILING_PARAMS = (
    Param("clients", int, 600, "clients that connect one after another and stay (more than "
          "the sandbox's pids limit)"),
    Param("timeout", float, 5.0, "seconds each client has to be answered or closed"))


@check("robust.thread_ceiling", Stage.NETWORK,
       "the lesson: a thread per connection meets the OS's ceiling", *CEILING_PARAMS)
def thread_ceiling(ctx: CheckContext) -> Outcome:
    # Deterministic for a thread per connection in the sandbox: `clients` (600)
    # is more than the pids limit (512 tasks), so whatever the timing some
    # clients are not served: refused (closed), left hanging, or lost with the server.
    result = crowd(ctx)
    result.close()
    if len(result.of(SERVED)) == result.count:
        return no_ceiling(result)
    # (no memory figure: right after refuse_past_ceiling, its threads may still be ending)
    return Outcome(False, figure=result.story(),
                   expected=f"all {result.count} clients served, each by a thread of its own",
                   got=result.story(),
                   hint="nothing in the program bounds its threads; the OS does (RLIMIT_NPROC, "
                   "the container's pids limit, memory). " + REFUSE_HINT)


def still_served(socks: dict[int, socket.socket], timeout: float) -> list[int]:
    """The connected clients that do NOT get a reply to a second line within `timeout` s."""
    for i, sock in socks.items():
        sock.setblocking(True)
        try:
            sock.sendall(line_of(i) + b" again\n")
        except OSError:
            pass
    deadline = time.monotonic() + timeout  # for all of them, not each
    return [i for i, sock in socks.items()
            if Reader(sock, max(deadline - time.monotonic(), 0.01)).read_until_size(
                len(reply_for(line_of(i) + b" again"))) != reply_for(line_of(i) + b" again")]


def served_after(addr, timeout: float) -> bool:
    """A new client, once the crowd has left, is served (retrying while it is refused)."""
    deadline, line = time.monotonic() + timeout, b"after the crowd"
    while time.monotonic() < deadline:
        try:
            if exchange(addr, [line + b"\n"], reply_for(line), timeout=2.0) == reply_for(line):
                return True
        except OSError:
            pass
        time.sleep(0.2)
    return False


@check("robust.refuse_past_ceiling", Stage.NETWORK,
       "past the thread ceiling: refuse the extra clients, keep serving the others",
       *CEILING_PARAMS)
def refuse_past_ceiling(ctx: CheckContext) -> Outcome:
    # Deterministic against a server that lets Thread.start()'s RuntimeError
    # escape: the clients outnumber the sandbox's tasks, so the error is raised
    # every run, and then the process is gone (the served clients' second line
    # fails). Against one that leaves refused clients open: they stay SILENT.
    timeout = float(ctx.param("timeout"))
    result = crowd(ctx)
    try:
        served = len(result.of(SERVED))
        if served == result.count:
            return no_ceiling(result)
        lost = still_served(result.open, timeout) if result.alive is not False else list(
            result.open)
    finally:
        result.close()
    failure = judge_refusal(result, served, lost)
    if failure:
        return failure
    if not served_after(ctx.addr, timeout):
        return Outcome(False, figure=result.story(),
                       expected="a new client served once the crowd had left",
                       got=f"no reply within {timeout:g} s",
                       hint="when a client leaves, its thread must end (return from the "
                       "handler): the next client needs that task")
    refused = len(result.of(CLOSED))
    return Outcome(True, figure=f"{served} served, {refused} refused (closed at once, from "
                   f"client {result.of(CLOSED)[0] + 1}); the {served} served were served again, "
                   "and a new client after they left" + result.cost)


def judge_refusal(result: Crowd, served: int, lost: list[int]) -> Outcome | None:
    """Why a server did not survive its ceiling cleanly, or None."""
    if result.alive is False or (served and len(lost) == served):
        return Outcome(False, figure=result.story(),
                       expected=f"the server to survive {result.count} clients, refusing those "
                       "it cannot serve",
                       got=result.story() + (f"; the {served} served clients lost their "
                                             "connection" if served else "") + ": the server died",
                       hint="Thread.start() raises RuntimeError (\"can't start new thread\") at "
                       "the OS's limit; uncaught in the accept loop it ends the process. "
                       + REFUSE_HINT)
    hanging = sum(len(result.of(s)) for s in (SILENT, WRONG, UNREACHABLE, NOT_TRIED))
    if hanging:
        return Outcome(False, figure=result.story(),
                       expected="every client either served or refused (closed at once)",
                       got=result.story(),
                       hint=f"{hanging} clients were neither served nor refused: each client "
                       "must be served by a thread of its own, or refused (closed at once) when "
                       "no thread can be started; a client left open waits forever and its "
                       "socket leaks")
    if lost:
        return Outcome(False, figure=result.story(),
                       expected=f"the {served} served clients still served",
                       got=f"{len(lost)} of them got no reply to a second line",
                       hint="refusing a client must not disturb the threads already serving")
    if not served:
        return Outcome(False, figure=result.story(), expected="some clients served",
                       got="none was", hint="start a thread per accepted connection")
    return None
