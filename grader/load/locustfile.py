"""Locust users that speak LINE/1 over raw TCP.

Locust monkey-patches `socket` with gevent before this file is imported, so
these plain sockets are cooperative: a blocked recv() parks one greenlet, not
the process, and one worker process drives many users. Nothing here does
blocking IO below Python's socket module (no C extension, no subprocess).

Two users:

- `LineUser` (the one the grader runs): one persistent connection, a closed
  loop of lines. Every reply fires one Locust `request` event with that
  reply's own round-trip time (with pipelining: from sending the batch to the
  arrival of that reply), so Locust's statistics count replies.
  Those round trips are also kept at microsecond resolution and written to
  <output prefix>_latency.json (grader/load/latency.py).
- `LurkerUser`: opens IOLAB_LURK_CONNECTIONS connections and stays silent on
  all of them: the idle load that shows what select/poll pay per call.
  It fires one `CONNECT` event per connection it opens and, at every check,
  one failed `CONNECT` event per connection the server has closed.
- `ChorusUser`: opens IOLAB_LURK_CONNECTIONS connections like LurkerUser,
  then every IOLAB_CHORUS_PERIOD seconds sends one line on each of them and
  reads every reply: all connections active (`python -m grader measure`).
  One `CHORUS` event per reply, so the replies that time the server stay
  LineUser's `LINE` events.

The grader selects LineUser explicitly (Environment(user_classes=[LineUser])
in local mode, LOCUST_USER_CLASSES=LineUser in compose.yaml), so other users
here never change grading. To add idle connections to a run by hand:

    locust -f grader/load/locustfile.py LineUser LurkerUser \\
        --config-users '{"user_class_name": "LurkerUser", "fixed_count": 2}'

Configuration (environment):
  LOCUST_HOST             tcp://server:9000 (Locust's own --host)
  IOLAB_LINE_SIZE         bytes per line, default 1024
  IOLAB_PIPELINE          lines in flight per connection, default 1
  IOLAB_REPLY_TIMEOUT     seconds to wait for a reply, default 5
  IOLAB_LOAD_GATE         a file: wait for it to exist before starting (gate.py)
  IOLAB_PROTOCOL          line (LINE/1, default) or echo: LineUser expects each line
                          back unchanged (the yardstick, grader/yardstick/echo_server.py,
                          measured by grader/calibration.py)
  IOLAB_LURK_CONNECTIONS  idle connections per LurkerUser, default 100
  IOLAB_LURK_CHECK        seconds between a lurker's checks of its connections, default 5
  IOLAB_CHORUS_PERIOD     seconds between a ChorusUser's rounds, default 0.5
"""

import os
import socket
import time
import weakref
from time import perf_counter

from locust import User, constant, constant_pacing, events, task

from grader.load import gate, latency

LINE_SIZE = int(os.environ.get("IOLAB_LINE_SIZE", "1024"))
PIPELINE = max(1, int(os.environ.get("IOLAB_PIPELINE", "1")))
TIMEOUT = float(os.environ.get("IOLAB_REPLY_TIMEOUT", "5"))
LURK_CONNECTIONS = int(os.environ.get("IOLAB_LURK_CONNECTIONS", "100"))
LURK_CHECK = float(os.environ.get("IOLAB_LURK_CHECK", "5"))
CHORUS_PERIOD = float(os.environ.get("IOLAB_CHORUS_PERIOD", "0.5"))
ECHO = os.environ.get("IOLAB_PROTOCOL", "line") == "echo"
RECV_SIZE = 256 * 1024
# A reply owed when the run starts to stop, asked this long ago or more, is a failed
# request: Locust counts only finished requests, so a server that serves one client at a
# time would lose nothing for the 19 users it never answered (their first request is
# still in flight at the stop; and as the stopping users close their connections one by
# one, it even serves them all in the stop's grace time). So the overdue ones are
# written off at Locust's test_stopping, before any user is stopped; a correct server's
# in-flight replies are milliseconds old.
STALL = float(os.environ.get("IOLAB_STALL", "1.0"))
LIVE: "weakref.WeakSet[LineUser]" = weakref.WeakSet()  # the users of this process


def write_off_overdue(**_kwargs) -> None:
    """Locust's test_stopping: every user's overdue replies are failed requests."""
    now = perf_counter()
    for user in list(LIVE):
        user.write_off(now)


class NeverServed(Exception):
    """This user got no reply at all during the whole load phase (latency.py counts them)."""


class Unanswered(Exception):
    """A reply still owed, and long overdue, when the load phase ended."""


def parse_host(host: str) -> tuple[str, int]:
    """tcp://server:9000 or server:9000 -> ("server", 9000)."""
    host = host.split("://", 1)[-1].rstrip("/")
    name, _, port = host.rpartition(":")
    return name or "127.0.0.1", int(port)


class LineUser(User):
    """A persistent connection that sends lines and checks every reply."""

    wait_time = constant(0)  # closed loop: next line as soon as the replies are in
    host = "tcp://127.0.0.1:9000"

    def on_start(self) -> None:
        self.sock = None
        self.inbuf = bytearray()
        self.served, self.owed, self.waiting_since, self.written_off = False, 0, None, False
        LIVE.add(self)
        events_ = self.environment.events
        if write_off_overdue not in getattr(events_.test_stopping, "_handlers", []):
            events_.test_stopping.add_listener(write_off_overdue)
        tag = b"u%d-" % id(self)
        body = (tag + b"x" * LINE_SIZE)[:LINE_SIZE]
        self.batch = (body + b"\n") * PIPELINE  # PIPELINE lines in one send
        # echo: the yardstick's reply, the line as sent (same bytes to check per reply)
        self.reply = body + b"\n" if ECHO else b"%d %s\n" % (len(body), body)
        self.name = f"{LINE_SIZE} B line"
        self.fire = self.environment.events.request.fire

    def on_stop(self) -> None:
        LIVE.discard(self)
        self._close()

    def write_off(self, now: float) -> None:
        """The run is stopping: replies owed for STALL s or more failed, and a user that
        never got any reply says so (grader/load/latency.py counts NeverServed)."""
        if not self.owed or self.waiting_since is None or now - self.waiting_since < STALL:
            return
        elapsed_ms = (now - self.waiting_since) * 1000
        for i in range(self.owed):
            exc = (Unanswered("no reply when the load phase ended") if self.served or i
                   else NeverServed("no reply at all during the load phase"))
            self.fire(request_type="LINE", name=self.name, response_time=elapsed_ms,
                      response_length=0, exception=exc, context={})
        self.written_off = True  # a reply that comes now, in the stop's grace, is not counted

    def _connect(self) -> socket.socket:
        sock = socket.create_connection(parse_host(self.host), timeout=TIMEOUT)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.inbuf.clear()
        return sock

    def _close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def _take_replies(self, limit: int) -> int:
        """Remove up to `limit` complete replies from inbuf; raise on a wrong one."""
        buf, expected, size = self.inbuf, self.reply, len(self.reply)
        pos = count = 0
        while count < limit:
            end = buf.find(b"\n", pos)
            if end < 0:
                break
            if end + 1 - pos != size or buf[pos:end + 1] != expected:
                raise ValueError(f"wrong reply: {bytes(buf[pos:pos + 40])!r}")
            pos = end + 1
            count += 1
        if len(buf) - pos > size:  # more than one reply's worth and still no b"\n"
            raise ValueError(f"wrong reply: {bytes(buf[pos:pos + 40])!r} (no b'\\n')")
        del buf[:pos]
        return count

    def _ok(self, count: int, start: float) -> None:
        elapsed_ms = (perf_counter() - start) * 1000  # each reply's own round trip
        for _ in range(count):
            self.fire(request_type="LINE", name=self.name, response_time=elapsed_ms,
                      response_length=len(self.reply), exception=None, context={})

    @task
    def send_lines(self) -> None:
        self.owed = PIPELINE  # on_stop reads it when the run ends mid-request
        start = self.waiting_since = perf_counter()
        try:
            if self.sock is None:
                self.sock = self._connect()
                start = perf_counter()  # the connect is not part of any reply's round trip
            self.sock.sendall(self.batch)
            while self.owed:
                chunk = self.sock.recv(RECV_SIZE)
                if not chunk:
                    raise ConnectionError("server closed the connection")
                self.inbuf += chunk
                got = self._take_replies(self.owed)
                if got:
                    self.owed -= got
                    self.served = True
                    if not self.written_off:
                        self._ok(got, start)
        except Exception as exc:  # noqa: BLE001 - every failure is a failed request
            self._close()
            elapsed_ms = (perf_counter() - start) * 1000
            for _ in range(0 if self.written_off else self.owed):  # every reply owed failed
                self.fire(request_type="LINE", name=self.name, response_time=elapsed_ms,
                          response_length=0, exception=exc, context={})
            self.owed = 0
            time.sleep(0.1)  # do not spin on a dead server (gevent-patched: parks this user)
        finally:
            self.waiting_since = None if not self.owed else self.waiting_since


def open_connections(user: User, count: int) -> list[socket.socket]:
    """Open `count` connections to the user's host, one `CONNECT` event each."""
    socks: list[socket.socket] = []
    fire = user.environment.events.request.fire
    addr = parse_host(user.host)
    for _ in range(count):
        start = perf_counter()
        try:
            sock = socket.create_connection(addr, timeout=TIMEOUT)
        except OSError as exc:
            exception = exc
        else:
            exception = None
            socks.append(sock)
        fire(request_type="CONNECT", name="idle connection",
             response_time=(perf_counter() - start) * 1000, response_length=0,
             exception=exception, context={})
    return socks


class LurkerUser(User):
    """Holds IOLAB_LURK_CONNECTIONS idle connections: connects, then stays silent."""

    wait_time = constant(LURK_CHECK)
    host = "tcp://127.0.0.1:9000"

    def on_start(self) -> None:
        self.socks = open_connections(self, LURK_CONNECTIONS)
        for sock in self.socks:
            sock.setblocking(False)  # check() peeks without waiting

    @task
    def check(self) -> int:
        """Drop (and report as failed) every connection the server closed; return how many are held."""
        held = []
        for sock in self.socks:
            try:
                alive = sock.recv(1, socket.MSG_PEEK) != b""  # data from a silent client's server?
            except BlockingIOError:
                alive = True  # open and quiet, as it should be
            except OSError:
                alive = False
            if alive:
                held.append(sock)
            else:
                sock.close()
                self.environment.events.request.fire(
                    request_type="CONNECT", name="idle connection", response_time=0,
                    response_length=0, exception=ConnectionError("closed by the server"),
                    context={})
        self.socks = held
        return len(held)

    def on_stop(self) -> None:
        for sock in self.socks:
            sock.close()
        self.socks = []


class ChorusUser(User):
    """Holds IOLAB_LURK_CONNECTIONS connections and, every IOLAB_CHORUS_PERIOD seconds,
    sends one line on each of them, then reads every reply: the server sees most of
    its connections ready at once. A connection whose reply is wrong or missing is
    dropped (one failed `CHORUS` event); check() returns how many are held."""

    wait_time = constant_pacing(CHORUS_PERIOD)
    host = "tcp://127.0.0.1:9000"

    def on_start(self) -> None:
        self.socks = open_connections(self, LURK_CONNECTIONS)
        body = b"c" * max(1, LINE_SIZE)
        self.line, self.reply = body + b"\n", b"%d %s\n" % (len(body), body)

    @task
    def chorus(self) -> None:
        fire = self.environment.events.request.fire
        start = perf_counter()
        sent = []
        for i, sock in enumerate(list(self.socks)):  # _drop() removes from self.socks
            if i % 32 == 31:
                time.sleep(0)  # gevent: let LineUser's greenlet time its reply meanwhile
            try:
                sock.sendall(self.line)
                sent.append(sock)
            except OSError as exc:
                self._drop(sock, exc, start)
        for i, sock in enumerate(sent):
            if i % 32 == 31:
                time.sleep(0)
            try:
                got = b""
                while not got.endswith(b"\n") and len(got) < len(self.reply):
                    chunk = sock.recv(RECV_SIZE)
                    if not chunk:
                        raise ConnectionError("closed by the server")
                    got += chunk
                if got != self.reply:
                    raise ValueError(f"wrong reply: {got[:40]!r}")
            except (OSError, ValueError) as exc:
                self._drop(sock, exc, start)
                continue
            fire(request_type="CHORUS", name="chorus line",
                 response_time=(perf_counter() - start) * 1000,
                 response_length=len(got), exception=None, context={})

    def _drop(self, sock: socket.socket, exc: Exception, start: float) -> None:
        sock.close()
        if sock in self.socks:
            self.socks.remove(sock)
        self.environment.events.request.fire(
            request_type="CHORUS", name="chorus line",
            response_time=(perf_counter() - start) * 1000, response_length=0,
            exception=exc, context={})

    def check(self) -> int:
        return len(self.socks)

    def on_stop(self) -> None:
        for sock in self.socks:
            sock.close()
        self.socks = []
# Reply times in µs (Locust's statistics round to whole ms): each worker keeps them and
# ships them to the master with Locust's stats reports; the master writes
# <prefix>_latency.json (grader/load/latency.py). Self-contained: one listener.
events.init.add_listener(latency.track)
# Started early by the grader (Target.prepare_load), a generator waits here, after its
# imports, until the load phase opens the gate (grader/load/gate.py).
gate.hold()
events.init.add_listener(gate.workers_ready)
