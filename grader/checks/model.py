"""Model checks: which IO model a server really uses, judged from outside it.

A server that passes every LINE/1 check with a thread per client has not
learnt select(). These checks load the server with their own clients and read
what the kernel sees (grader/evidence.py): how many processes and threads,
whether an epoll instance is open, which system call the idle thread sleeps
in, how much CPU it burns while nothing happens.

The server's PID comes in ctx.server_pid (local mode: the grader started it);
in docker mode the grader shares the server's PID namespace and finds it.
ctx.model is the exercise's model and ctx.os_name the OS profile.
"""

from __future__ import annotations

import selectors
import threading
import time
from collections import Counter

from grader import evidence
from grader.checks import hints
from grader.checks.registry import CheckContext, Param, Stage, check
from grader.lineclient import (
    connect,
    describe,
    exchange,
    first_difference,
    reply_for,
    why_failed,
)
from grader.outcome import Outcome
from grader.proc import raise_fd_limit
from servers.platforms import MODELS, WINDOWS_SELECT_LIMIT

MULTIPLEXING = ("select", "poll", "epoll", "epoll_et", "kqueue", "selectors", "asyncio",
                "asyncio_protocol")
LOOP_OF_LIBRARY = ("selectors", "asyncio", "asyncio_protocol")  # DefaultSelector decides
ONE_THREAD = MULTIPLEXING + ("nonblocking", "iterative")
FACILITY = {"select": "select()", "poll": "poll()", "epoll": "epoll", "kqueue": "kqueue"}
DEFAULT_SELECTOR = {"linux": "epoll", "macos": "poll", "windows": "select"}  # emulated profiles
BUSY = 0.2  # s/s wanting a CPU (on one or queued) above which an idle server is spinning


def server_root(ctx: CheckContext) -> int | None:
    return ctx.server_pid or evidence.find_server()


def not_found() -> Outcome:
    return Outcome.error(
        "the grader cannot see the server's processes",
        hint="docker mode: the grader service needs pid: \"service:pidns\" in compose.yaml; "
        "local mode: the runner passes the server's pid")


def profile(ctx: CheckContext) -> str:
    return ctx.os_name if ctx.os_name in DEFAULT_SELECTOR else "linux"


def multiplexer(blocked: Counter) -> str | None:
    """select | poll | epoll: what the sleeping threads wait in, if any."""
    for name, calls in evidence.MULTIPLEXERS.items():
        if any(blocked[c] for c in calls):
            return name
    return "select/poll" if blocked["select/poll"] else None  # known from wchan only


class Clients:
    """`n` connections that keep sending lines (non-blocking, never hang)."""

    def __init__(self, addr, n: int):
        self.socks = []
        try:
            for _ in range(n):
                self.socks.append(connect(addr, timeout=5))
                self.socks[-1].setblocking(False)
        except OSError:
            for sock in self.socks:
                sock.close()
            raise  # run_check: "connection failed: ..."
        self.replied: set[int] = set()
        self.running = threading.Event()
        self.thread = threading.Thread(target=self._pump, daemon=True)

    def _pump(self) -> None:
        sel = selectors.DefaultSelector()
        for i, sock in enumerate(self.socks):
            sel.register(sock, selectors.EVENT_READ, i)
        while self.running.is_set():
            for sock in self.socks:
                try:
                    sock.send(b"are you there?\n")
                except OSError:
                    pass  # full buffer or closed by the server: try again next round
            deadline = time.monotonic() + 0.05
            while (left := deadline - time.monotonic()) > 0:
                for key, _ in sel.select(left):
                    try:
                        if key.fileobj.recv(65536):
                            self.replied.add(key.data)
                    except OSError:
                        pass
        sel.close()

    def __enter__(self):
        self.running.set()
        self.thread.start()
        return self

    def stop(self) -> None:
        self.running.clear()
        self.thread.join(5)

    def __exit__(self, *exc):
        self.stop()
        for sock in self.socks:
            sock.close()


def sample(root: int, times: int, gap: float) -> evidence.Snapshot:
    """Several snapshots merged: the most processes and threads, every sleep seen."""
    best = None
    for _ in range(times):
        snap = evidence.snapshot(root)
        if best is None:
            best = snap
        else:
            best.processes, best.threads = (max(best.processes, snap.processes),
                                            max(best.threads, snap.threads))
            best.blocked += snap.blocked
            if snap.eventpoll is not None:
                best.eventpoll = max(best.eventpoll or 0, snap.eventpoll)
                best.edge_triggered |= snap.edge_triggered
        time.sleep(gap)
    return best


def describe_model(load: evidence.Snapshot, idle: evidence.Snapshot, clients: int,
                   idle_cpu: float) -> str:
    if load.processes >= clients // 2:
        return f"a process per connection ({load.processes} processes)"
    if load.threads >= clients // 2:
        return f"a thread per connection ({load.threads} threads)"
    if load.processes > 1:
        return f"{load.processes} processes"
    if load.threads > 2:
        return f"a pool of threads ({load.threads} threads)"
    if mux := multiplexer(idle.blocked):
        return f"one thread multiplexing with {mux}" + (" (edge-triggered)" if idle.edge_triggered
                                                        else "")
    if idle_cpu > BUSY:
        return f"one thread busy polling (wants a CPU {idle_cpu:.2f} s/s idle)"
    return "one thread, blocking (" + ", ".join(sorted(idle.blocked)) + ")"


def verdict(model: str, os_name: str, load: evidence.Snapshot, idle: evidence.Snapshot,
            clients: int) -> tuple[str, str] | None:
    """(expected, got) when the evidence contradicts the exercise's model, else None."""
    threads = f"{load.threads} threads" if load.threads != 1 else "1 thread"
    if load.processes > 1:
        threads = f"{load.processes} processes, {threads}"
    under = f"{threads} under {clients} clients"
    if load.eventpoll and not MODELS["epoll"].get(os_name):
        return (f"no epoll: it does not exist on {os_name}",
                f"an epoll instance (anon_inode:[eventpoll]) is open under the {os_name} "
                f"profile")
    mux = multiplexer(idle.blocked)
    if mux in ("poll", "epoll") and not MODELS[mux].get(os_name):
        return f"no {FACILITY[mux]}: it does not exist on {os_name}", f"it sleeps in {mux}"
    if model in ONE_THREAD:
        wanted = DEFAULT_SELECTOR[os_name] if model in LOOP_OF_LIBRARY else (
            "epoll" if model == "epoll_et" else model)
        how = (f"multiplexing with {FACILITY.get(wanted, wanted)}" if model in MULTIPLEXING
               else "with non-blocking sockets" if model == "nonblocking"
               else "serving one client at a time")
        if load.processes > 1 or load.threads > 2:
            return f"one thread {how}", f"{under}; this exercise requires one thread {how}"
        if model in MULTIPLEXING:
            if "?" in idle.blocked and mux is None:
                return f"one thread {how}", "cannot tell what it sleeps in (no ptrace rights)"
            if mux != wanted and not (mux == "select/poll" and wanted in ("select", "poll")):
                return (f"its thread asleep in {FACILITY.get(wanted, wanted)} while idle",
                        f"{asleep_in(idle)}; this exercise requires one thread {how}")
            if wanted == "epoll" and idle.eventpoll == 0:
                return "an epoll instance", "no anon_inode:[eventpoll] fd is open"
            if model == "epoll_et" and not idle.edge_triggered:
                return "sockets registered with EPOLLET", "epoll is level-triggered"
        elif mux:
            return f"one thread {how}", f"it sleeps in {mux}: that is multiplexing"
    elif model in ("thread", "socketserver") and (load.processes > 1
                                                  or load.threads < clients // 2):
        return f"a thread per connection (about {clients + 1} threads)", under
    elif model == "threadpool" and (load.processes > 1 or not 2 < load.threads < clients // 2):
        return "a fixed pool of threads (fewer threads than clients)", under
    elif model == "fork" and load.processes < clients // 2:
        return f"a process per connection (about {clients + 1} processes)", under
    return None


def asleep_in(idle: evidence.Snapshot) -> str:
    """What the idle thread was seen doing, in words."""
    if set(idle.blocked) == {"running"}:
        return "it never sleeps: its thread was running each time it was looked at, while idle"
    return "it sleeps in " + ", ".join(sorted(idle.blocked))


def spins(idle: evidence.Snapshot) -> bool:
    return "running" in idle.blocked and multiplexer(idle.blocked) is None


@check("model.conformance", Stage.NETWORK, "the server really uses the exercise's IO model",
       Param("clients", int, 200, "clients connected while the evidence is sampled"))
def conformance(ctx: CheckContext) -> Outcome:
    root = server_root(ctx)
    if root is None:
        return not_found()
    model, os_name = ctx.model, profile(ctx)
    clients = int(ctx.param("clients"))
    with Clients(ctx.addr, clients) as load_clients:
        time.sleep(0.5)
        load = sample(root, 3, 0.2)
        load_clients.stop()
        time.sleep(0.3)
        idle = sample(root, 3, 0.1)
        spinning = load.threads <= 2 and multiplexer(idle.blocked) is None
        idle_cpu = evidence.busy_rate(root, 0.5)[1] if spinning else 0.0
        served = len(load_clients.replied)
    if not evidence.alive(root):
        return Outcome(False, figure=f"{load.threads} threads, {load.processes} processes",
                       expected=f"the server to survive {clients} clients",
                       got="the server died", hint="see its log in the results folder")
    if idle.fds is None and multiplexer(idle.blocked) is None:
        return Outcome.error("the grader has no ptrace rights over the server: it cannot read "
                             "/proc/PID/fd or /proc/PID/task/*/syscall",
                             hint="docker mode: the grader service needs cap_add SYS_PTRACE")
    found = describe_model(load, idle, clients, idle_cpu)
    asleep = ("idle threads never asleep (running)" if set(idle.blocked) == {"running"}
              else f"idle threads in {', '.join(sorted(idle.blocked))}")
    figure = (f"{found}; {served}/{clients} clients answered; {asleep}; "
              f"eventpoll fds: {idle.eventpoll}")
    if model not in MODELS:
        return Outcome(True, figure=figure)  # no model to hold it to: evidence only
    wrong = verdict(model, os_name, load, idle, clients)
    if wrong is None:
        return Outcome(True, figure=figure)
    if model in hints.MULTIPLEXING and spins(idle) and load.threads <= 2 and load.processes == 1:
        return Outcome(False, figure=figure, expected=wrong[0], got=wrong[1],
                       hint=hints.spinning(model))  # the model is right; its wait never waits
    return Outcome(False, figure=figure, expected=wrong[0], got=wrong[1], hint=HOW.get(
        model, "one loop in one thread: wait for ready sockets, then serve them; no threads, "
        "no os.fork") + " (the grader counts threads, processes, fds and system calls in /proc)")


HOW = {
    "thread": "start a thread per accepted connection",
    "socketserver": "socketserver.ThreadingTCPServer starts a thread per connection",
    "threadpool": "start a fixed number of threads once and hand them the connections",
    "fork": "os.fork() once per accepted connection; the child serves it and exits",
    "nonblocking": "one thread looping over non-blocking sockets, no select/poll/epoll",
    "iterative": "one thread: accept a client, serve it to the end, then the next",
}


@check("resource.idle_cpu", Stage.NETWORK, "no CPU burnt while clients are idle (no busy polling)",
       Param("clients", int, 5, "idle clients connected"),
       Param("seconds", float, 0.5, "how long CPU time is measured (a busy loop wants "
             "all of it, from the first scheduler tick)"),
       Param("max_cpu", float, BUSY, "seconds per second on a CPU or waiting for one, allowed "
             "while idle (a busy loop: 1.00, however little CPU a crowded machine gives it)"))
def idle_cpu(ctx: CheckContext) -> Outcome:
    # Deterministic against a server that spins while idle (busy polling, a multiplexer
    # asked for writability with nothing to send): its CPU rate alone depends on the
    # machine's load (a spinner given a fifth of a core measures 0.2), so the time it
    # wanted a CPU is judged (on one or queued, from schedstat): a spinner wants all
    # of it, an idle server none, whatever the load.
    root = server_root(ctx)
    if root is None:
        return not_found()
    clients, seconds = int(ctx.param("clients")), float(ctx.param("seconds"))
    limit = float(ctx.param("max_cpu"))
    socks = [connect(ctx.addr) for _ in range(clients)]
    try:
        for sock in socks:
            sock.sendall(b"hello\n")
        time.sleep(0.2)
        # judged on the time it wanted a CPU (on one or queued for one): a busy loop
        # wants it all, whatever share of a crowded machine it gets
        cpu, rate = evidence.busy_rate(root, seconds)
    finally:
        for sock in socks:
            sock.close()
    figure = (f"{rate:.2f} s/s on a CPU or waiting for one ({cpu:.2f} CPU s/s) with {clients} "
              "idle clients")
    if rate <= limit:
        return Outcome(True, figure=figure)
    return Outcome(False, figure=figure, expected=f"at most {limit:g} seconds per second on a "
                   "CPU or waiting for one while every client is idle",
                   got=f"{rate:.2f} (a whole core is 1.00; it got {cpu:.2f} CPU s/s of it)",
                   hint=hints.spinning(ctx.model))


@check("resource.threads", Stage.NETWORK, "threads stay bounded as clients grow",
       Param("clients", int, 50, "clients connected"),
       Param("max_threads", int, 2, "threads allowed in the one process"))
def threads(ctx: CheckContext) -> Outcome:
    root = server_root(ctx)
    if root is None:
        return not_found()
    clients, limit = int(ctx.param("clients")), int(ctx.param("max_threads"))
    with Clients(ctx.addr, clients):
        time.sleep(0.5)
        snap = sample(root, 3, 0.2)
    figure = f"{snap.threads} threads, {snap.processes} process(es) under {clients} clients"
    if snap.threads <= limit and snap.processes == 1:
        return Outcome(True, figure=figure)
    return Outcome(False, figure=figure, expected=f"at most {limit} threads in one process",
                   got=figure, hint="a thread or process per client costs memory and "
                   "scheduling: serve them all from one thread with an IO multiplexer")


@check("robust.fd_limit", Stage.NETWORK, "more than 1024 connections at once",
       Param("connections", int, 1100, "connections held open at once"),
       Param("timeout", float, 5.0, "seconds to wait for the last client's reply"))
def fd_limit(ctx: CheckContext) -> Outcome:
    raise_fd_limit()
    count = int(ctx.param("connections"))
    root = server_root(ctx)
    socks, snap = [], None
    expected = reply_for(b"one more")
    try:
        for _ in range(count):
            socks.append(connect(ctx.addr, timeout=5))
        time.sleep(0.3)
        got = exchange(ctx.addr, [b"one more\n"], expected, timeout=ctx.param("timeout"))
        if root is not None:
            snap = evidence.snapshot(root)  # after: every earlier connection was accepted
    except OSError as exc:
        got = b""
        late = snap is None  # a snapshot taken after the failure, maybe while it exits
        snap = snap or (evidence.snapshot(root) if root and evidence.alive(root) else None)
        why = f"client {len(socks) + 1} could not connect: {why_failed(exc)}"
    else:
        why, late = "", False
    finally:
        for sock in socks:
            sock.close()
    fds = f" (it holds {snap.sockets} sockets, highest fd {snap.max_fd})" if snap and snap.max_fd else ""
    if got == expected:
        return Outcome(True, figure=f"client {count + 1} served while {count} were connected{fds}")
    time.sleep(0.3)
    try:
        alive = exchange(ctx.addr, [b"after\n"], reply_for(b"after"), timeout=5.0) == reply_for(b"after")
    except OSError:
        alive = False
    died = root is not None and not alive and not evidence.alive(root)
    state = ("it refused them cleanly: it still serves once they leave" if alive else
             "and then its process ended: it crashed instead of refusing them" if died else
             "and then it stopped serving: crashed?")
    if (late or died) and not alive:
        fds, snap = "", None  # counted while it went down: those figures mean nothing
    got_text = why or first_difference(got, expected)
    os_name = profile(ctx)
    uses_select = (ctx.model == "select" or (snap and multiplexer(snap.blocked) == "select")
                   or (ctx.model in LOOP_OF_LIBRARY
                       and DEFAULT_SELECTOR[os_name] == "select"))
    if uses_select:
        fd = (snap.max_fd + 1) if snap and snap.max_fd else 1024
        lesson = (f"select() cannot watch socket {WINDOWS_SELECT_LIMIT + 1}: FD_SETSIZE is "
                  f"{WINDOWS_SELECT_LIMIT} sockets on Windows" if os_name == "windows"
                  else f"select() cannot watch fd {fd}: FD_SETSIZE is 1024 on Linux")
        return Outcome(False, figure=f"{count} connections{fds}",
                       expected=f"client {count + 1} served",
                       got=f"{lesson} ({got_text}; {state})", hint=SELECT_LIMIT_HINT[os_name])
    return Outcome(False, figure=f"{count} connections{fds}",
                   expected=f"{describe(expected)} for client {count + 1}",
                   got=f"{got_text}; {state}", hint=FD_LIMIT_HINT[os_name])


SELECT_LIMIT_HINT = {
    "linux": "this is select()'s lesson, not a bug to hide: poll() and epoll have no such limit",
    "macos": "this is select()'s lesson, not a bug to hide: poll() and kqueue have no such limit",
    "windows": f"Python on Windows has only select(), which takes at most {WINDOWS_SELECT_LIMIT} "
               "sockets: close new clients past that many instead of watching them, so the "
               "server keeps serving the others",
}
FD_LIMIT_HINT = {
    "linux": "past 1024 descriptors select() fails and the default `ulimit -n` may too: use poll "
             "or epoll, and handle EMFILE from accept() without dying or spinning (stop "
             "watching the listener for a moment)",
    "macos": "past 1024 descriptors select() fails and the default `ulimit -n` may too: use poll "
             "(kqueue on a real Mac), and handle EMFILE from accept() without dying or spinning "
             "(stop watching the listener for a moment)",
    "windows": f"on Windows select() takes at most {WINDOWS_SELECT_LIMIT} sockets and there is no "
               "poll or epoll: keep serving past that many connections (a thread per connection "
               "does), and handle errors from accept() without dying",
}
