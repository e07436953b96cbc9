"""lab-1's connection-pool lesson: `python -m grader pool-demo` (`make pool-demo`).

The notes pair the thread pool (线程池) with the connection pool (连接池): a
client that keeps a few connections open and reuses them, instead of paying
for a new one per request. This runs both clients against a LINE/1 server
(the student's lab-1 thread pool by default) on loopback, with real sockets:

1. a new connection per request: connect, one line, its reply, close;
2. a pool of persistent connections, the same callers and requests;
3. the pool's ceiling from the client's side: a client pool larger than the
   server's POOL_SIZE. The server's workers are held by the first POOL_SIZE
   connections for as long as they stay open, so the rest wait unanswered:
   the notes' "池始终有其上限", met from both ends.

It prints replies/s, p50/p95 latency (µs) and the TIME_WAIT sockets each
client leaves behind (the side that closes first keeps each connection in
TIME_WAIT for 60 s on Linux, a port of its own), and writes pool.csv,
pool.svg and summary.txt. Figures are this machine's, for comparison side by
side; nothing here is graded.
"""

from __future__ import annotations

import argparse
import csv
import queue
import selectors
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from grader.errors import UsageError
from grader.lineclient import Reader, connect, reply_for
from grader.paths import LABS, RESULTS, shown
from grader.proc import NotListening, start_server, stop_group
from grader.report import new_run_id
from grader.svg import bar_chart

TIME_WAIT, CLOSING_STATES = "06", {"04", "05", "07", "08", "09"}  # /proc/net/tcp `st`
REQUEST_TIMEOUT = 5.0


@dataclass
class Phase:
    """One client's run: how long it took, each request's latency, the ports it used."""

    name: str
    label: str  # short, for the charts
    connections: int  # connections opened
    latencies: list[float] = field(default_factory=list)  # seconds, one per reply
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0
    ports: set[int] = field(default_factory=set)  # the client's local ports
    time_wait: int | None = None  # sockets left in TIME_WAIT (None: not Linux)

    @property
    def replies_per_s(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    def percentile_us(self, q: float) -> float:
        ordered = sorted(self.latencies)
        if not ordered:
            return 0.0
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1e6


def ask(sock, line: bytes) -> None:
    """One request on an open connection; raises OSError unless the reply is right."""
    sock.sendall(line + b"\n")
    got = Reader(sock, REQUEST_TIMEOUT).read_until_size(len(reply_for(line)))
    if got != reply_for(line):
        raise OSError(f"expected {reply_for(line)!r}, got {got[:40]!r}")


def run_callers(phase: Phase, callers: int, requests: int, request) -> Phase:
    """`callers` threads share `requests`; request(i) makes one. The first failure stops all."""
    lock, stop, next_i = threading.Lock(), threading.Event(), iter(range(requests))

    def caller() -> None:
        while not stop.is_set():
            with lock:
                i = next(next_i, None)
            if i is None:
                return
            started = time.perf_counter()
            try:
                request(i)
            except OSError as exc:
                phase.failures.append(f"request {i}: {exc.strerror or exc}")
                stop.set()
                return
            with lock:
                phase.latencies.append(time.perf_counter() - started)

    threads = [threading.Thread(target=caller) for _ in range(callers)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    phase.seconds = time.perf_counter() - started
    return phase


def per_request(addr, requests: int, callers: int) -> Phase:
    """A new connection for every request, closed by the client after its reply."""
    phase = Phase("a new connection per request", "new connection each", requests)

    def request(i: int) -> None:
        with connect(addr, REQUEST_TIMEOUT) as sock:
            phase.ports.add(sock.getsockname()[1])
            ask(sock, b"request %d" % i)

    return run_callers(phase, callers, requests, request)


def pooled(addr, requests: int, callers: int, size: int) -> Phase:
    """A pool of `size` persistent connections; each request borrows one and gives it back."""
    noun = "connection" if size == 1 else "connections"
    phase = Phase(f"a pool of {size} persistent {noun}", f"pool of {size} {noun}", size)
    pool: queue.Queue = queue.Queue()
    opened = [connect(addr, REQUEST_TIMEOUT) for _ in range(size)]
    for sock in opened:
        phase.ports.add(sock.getsockname()[1])
        pool.put(sock)

    def request(i: int) -> None:
        sock = pool.get()  # waits while every connection is lent out: the pool's own ceiling
        try:
            ask(sock, b"request %d" % i)
        finally:
            pool.put(sock)

    try:
        return run_callers(phase, callers, requests, request)
    finally:
        for sock in opened:
            sock.close()


def tcp_states(server_port: int, ports: set[int]) -> list[str] | None:
    """The TCP state of every socket between `ports` and the server (both ends), from
    /proc/net/tcp{,6}; None where there is no such file (not Linux)."""
    states, found = [], False
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(name, encoding="ascii") as fh:
                rows = fh.read().splitlines()[1:]
        except OSError:
            continue
        found = True
        for row in rows:
            fields = row.split()
            local, remote = (int(a.rsplit(":", 1)[1], 16) for a in fields[1:3])
            if (remote == server_port and local in ports) or (
                    local == server_port and remote in ports):
                states.append(fields[3])
    return states if found else None


def count_time_wait(server_port: int, ports: set[int], settle: float = 5.0) -> int | None:
    """Sockets of these connections in TIME_WAIT, once none is still closing
    (FIN_WAIT, CLOSING, LAST_ACK: the server's FIN may not have arrived yet)."""
    deadline = time.monotonic() + settle
    while True:
        states = tcp_states(server_port, ports)
        if states is None:
            return None
        if not CLOSING_STATES & set(states) or time.monotonic() > deadline:
            return states.count(TIME_WAIT)
        time.sleep(0.05)


@dataclass
class Ceiling:
    """A client pool of `connections` against a server pool of `server_pool` workers."""

    server_pool: int
    connections: int
    wait: float
    answered: int = 0  # within `wait`, while every connection stays open
    released: int = 0  # connections the client closed to free server workers
    answered_after: int = 0  # of the starved, answered after the release

    @property
    def starved(self) -> int:
        return self.connections - self.answered


def answers(socks: dict[int, object], lines: dict[int, bytes], timeout: float) -> set[int]:
    """Which of `socks` get their line's reply within `timeout` s."""
    sel, got, done = selectors.DefaultSelector(), {i: b"" for i in socks}, set()
    for i, sock in socks.items():
        sock.setblocking(False)
        sel.register(sock, selectors.EVENT_READ, i)
    deadline = time.monotonic() + timeout
    while len(done) < len(socks) and (left := deadline - time.monotonic()) > 0:
        for key, _ in sel.select(left):
            try:
                data = key.fileobj.recv(4096)
            except OSError:
                data = b""
            got[key.data] += data
            if not data or got[key.data] == reply_for(lines[key.data]):
                done.add(key.data)
                sel.unregister(key.fileobj)
    sel.close()
    return {i for i in done if got[i] == reply_for(lines[i])}


def pool_ceiling(addr, server_pool: int, extra: int, wait: float) -> Ceiling:
    """server_pool + extra persistent connections, each asking once, all kept open."""
    result = Ceiling(server_pool, server_pool + extra, wait)
    socks, lines = {}, {}
    try:
        for i in range(result.connections):
            socks[i] = connect(addr, REQUEST_TIMEOUT)
            lines[i] = b"pooled connection %d" % (i + 1)
            socks[i].sendall(lines[i] + b"\n")
            time.sleep(0.01)  # in order: the server accepts them one after another
        answered = answers(socks, lines, wait)
        result.answered = len(answered)
        starved = {i: socks[i] for i in socks if i not in answered}
        if starved:
            for i in sorted(answered)[:len(starved)]:  # give back as many as starve
                socks.pop(i).close()
                result.released += 1
            result.answered_after = len(answers(starved, lines, REQUEST_TIMEOUT))
    finally:
        for sock in socks.values():
            sock.close()
    return result


def table(phases: list[Phase]) -> list[str]:
    rows = [f"{'client':<40} {'requests':>8} {'replies/s':>10} {'p50 µs':>8} {'p95 µs':>8} "
            f"{'TIME_WAIT':>9}"]
    for p in phases:
        tw = "n/a" if p.time_wait is None else str(p.time_wait)
        rows.append(f"{p.name:<40} {len(p.latencies):>8} {p.replies_per_s:>10,.0f} "
                    f"{p.percentile_us(0.5):>8,.0f} {p.percentile_us(0.95):>8,.0f} {tw:>9}")
    return rows


def compare(value: float, base: float, up: str, down: str) -> str:
    """'2.1x more' / '3.0x lower': value against base, in the right direction."""
    if not value or not base:
        return "n/a"
    return f"{value / base:.1f}x {up}" if value >= base else f"{base / value:.1f}x {down}"


def story(phases: list[Phase], ceiling: Ceiling | None) -> list[str]:
    """What the figures say, in words (the ratios are this run's, this machine's)."""
    new, pool = phases
    lines = []
    if new.latencies and pool.latencies:
        rate = compare(pool.replies_per_s, new.replies_per_s, "more", "fewer")
        p50, p95 = (compare(pool.percentile_us(q), new.percentile_us(q), "higher", "lower")
                    for q in (0.5, 0.95))
        lines.append(f"The pool: {rate} replies/s; latency p50 {p50}, p95 {p95} (no handshake, "
                     "accept() and close per request; figures vary from run to run on a busy "
                     "machine, the TIME_WAIT counts do not).")
    if new.time_wait is not None:
        lines.append(f"{new.time_wait} TIME_WAIT sockets after {len(new.latencies)} short "
                     f"connections, {pool.time_wait} after the pool closed its "
                     f"{pool.connections}: each holds a local port for 60 s.")
    if ceiling is None:
        return lines
    c = ceiling
    if c.starved:
        lines.append(f"Pool ceiling: {c.connections} persistent connections against "
                     f"POOL_SIZE={c.server_pool}: {c.answered} answered, {c.starved} waited "
                     f"{c.wait:g} s unanswered; once the client closed {c.released}, "
                     f"{c.answered_after} of them were answered "
                     "(池始终有其上限, from both ends).")
    else:
        lines.append(f"Pool ceiling: all {c.connections} connections were answered: the server "
                     f"did not stop at POOL_SIZE={c.server_pool} (is it a bounded pool?).")
    return lines


def write(out: Path, phases: list[Phase], ceiling: Ceiling | None, text: list[str]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "pool.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["client", "connections", "replies", "failures", "seconds",
                         "replies_per_s", "p50_us", "p95_us", "time_wait"])
        for p in phases:
            writer.writerow([p.name, p.connections, len(p.latencies), len(p.failures),
                             f"{p.seconds:.3f}", f"{p.replies_per_s:.0f}",
                             f"{p.percentile_us(0.5):.0f}", f"{p.percentile_us(0.95):.0f}",
                             "" if p.time_wait is None else p.time_wait])
    charts = [bar_chart(title, {p.label: {unit: value(p)} for p in phases}, x_label=unit)
              for title, unit, value in (
                  ("Throughput", "replies/s", lambda p: p.replies_per_s),
                  ("Latency, 95th percentile", "µs", lambda p: p.percentile_us(0.95)),
                  ("Sockets left in TIME_WAIT", "sockets", lambda p: p.time_wait or 0))]
    (out / "pool.svg").write_text(stack(charts), encoding="utf-8")
    (out / "summary.txt").write_text("\n".join(text) + "\n", encoding="utf-8")


def stack(charts: list[str], width: int = 720) -> str:
    """Several svg.py charts, one under the other, as one SVG file."""
    heights = [int(c.split('height="', 1)[1].split('"', 1)[0]) for c in charts]
    parts, y = [], 0
    for chart, height in zip(charts, heights):
        parts.append(f'<g transform="translate(0 {y})">{chart}</g>')
        y += height
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{y}" '
            f'viewBox="0 0 {width} {y}">' + "".join(parts) + "</svg>")


def server_file(path: Path) -> Path:
    """The server to run: a .py file, or a folder with server.py (bad input: UsageError)."""
    if path.is_dir():
        path = path / "server.py"
    if not path.is_file() or path.suffix != ".py":
        raise UsageError(f"{path} is not a server: pass a folder with server.py, or a .py file")
    return path.resolve()


def demo(addr, args: argparse.Namespace) -> tuple[list[Phase], Ceiling | None]:
    phases = [per_request(addr, args.requests, args.callers)]
    phases[0].time_wait = count_time_wait(addr[1], phases[0].ports)
    if phases[0].failures:
        return phases, None
    phases.append(pooled(addr, args.requests, args.callers, args.callers))
    phases[1].time_wait = count_time_wait(addr[1], phases[1].ports)
    if phases[1].failures:
        return phases, None
    return phases, pool_ceiling(addr, args.pool_size, args.extra, args.wait)


def run(args: argparse.Namespace, out=print) -> int:
    """python -m grader pool-demo: 0 when every request was answered, 1 otherwise."""
    path = server_file(args.server)
    for name in ("requests", "callers", "pool_size", "extra"):
        if getattr(args, name) < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be at least 1")
    folder = args.out or args.results / "lab-1" / f"pool-demo-{new_run_id()}"
    folder.mkdir(parents=True, exist_ok=True)
    out(f"server: {shown(path)} (POOL_SIZE={args.pool_size}) on 127.0.0.1")
    with open(folder / "server.log", "wb") as log:
        try:
            proc, port = start_server(path, env={"POOL_SIZE": str(args.pool_size)}, stdout=log)
        except NotListening as exc:
            out(f"error: the server did not start: {exc} (see {shown(folder / 'server.log')})")
            return 1
        try:
            phases, ceiling = demo(("127.0.0.1", port), args)
        finally:
            stop_group(proc)
    failures = [f for p in phases for f in p.failures]
    text = table(phases) + [""]
    if not failures:
        text += story(phases, ceiling)
    else:
        text.append(f"error: the server did not answer every request ({failures[0]}): does "
                    "it serve persistent connections and many at once? (lab-1 step 4)")
    write(folder, phases, ceiling, text)
    for line in text:
        out(line)
    out(f"written: {shown(folder / 'pool.csv')}, {shown(folder / 'pool.svg')}")
    return 1 if failures else 0


def add_parser(verbs) -> None:
    """The `pool-demo` verb of python -m grader."""
    demo_cmd = verbs.add_parser("pool-demo", help="lab-1: a new connection per request vs a "
                                "connection pool, and the pool's ceiling",
                                description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    demo_cmd.add_argument("--server", type=Path, default=LABS / "lab-1" / "starter" / "threadpool",
                          help="a folder with server.py, or a .py file (default: your lab-1 "
                          "thread pool)")
    demo_cmd.add_argument("--requests", type=int, default=2000, help="requests per client")
    demo_cmd.add_argument("--callers", type=int, default=4,
                          help="threads making requests at once (and the pool's connections)")
    demo_cmd.add_argument("--pool-size", type=int, default=16,
                          help="the server's POOL_SIZE (passed in its environment)")
    demo_cmd.add_argument("--extra", type=int, default=4,
                          help="connections past POOL_SIZE in the ceiling demo")
    demo_cmd.add_argument("--wait", type=float, default=2.0,
                          help="seconds the connections past the pool wait in the ceiling demo")
    demo_cmd.add_argument("--results", type=Path, default=RESULTS,
                          help="results/lab-1/pool-demo-<run-id>/ goes here (default: ./results)")
    demo_cmd.add_argument("--out", type=Path, help="write pool.csv, pool.svg and summary.txt "
                          "in this folder instead")
    demo_cmd.set_defaults(run=run)
