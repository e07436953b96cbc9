"""Locust users that speak LINE/1 over raw TCP.

Locust monkey-patches `socket` with gevent before this file is imported, so
these plain sockets are cooperative: one worker process drives many users.
Every reply fires one Locust `request` event with its round-trip time; Locust
turns those into its statistics (stats decoupled from clients through events).

Configuration (environment):
  LOCUST_HOST        tcp://server:9000 (Locust's own --host)
  IOLAB_LINE_SIZE    bytes per line, default 1024
  IOLAB_PIPELINE     lines in flight per connection, default 1
"""

import os
import socket
import time

from locust import User, constant, task

LINE_SIZE = int(os.environ.get("IOLAB_LINE_SIZE", "1024"))
PIPELINE = max(1, int(os.environ.get("IOLAB_PIPELINE", "1")))
TIMEOUT = float(os.environ.get("IOLAB_REPLY_TIMEOUT", "5"))


def parse_host(host: str) -> tuple[str, int]:
    """tcp://server:9000 or server:9000 -> ("server", 9000)."""
    host = host.split("://", 1)[-1].rstrip("/")
    name, _, port = host.rpartition(":")
    return name or "127.0.0.1", int(port)


class LineUser(User):
    """A persistent connection that sends lines and checks every reply."""

    wait_time = constant(0)  # closed loop: next line as soon as the reply is in
    host = "tcp://127.0.0.1:9000"

    def on_start(self) -> None:
        self.sock = None
        self.inbuf = bytearray()
        tag = b"u%d-" % id(self)
        body = (tag + b"x" * LINE_SIZE)[:LINE_SIZE]
        self.line = body + b"\n"
        self.reply = b"%d %s\n" % (len(body), body)

    def on_stop(self) -> None:
        self._close()

    def _connect(self) -> socket.socket:
        sock = socket.create_connection(parse_host(self.host), timeout=TIMEOUT)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.inbuf.clear()
        return sock

    def _close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def _read_reply(self) -> bytes:
        while True:
            end = self.inbuf.find(b"\n")
            if end >= 0:
                reply = bytes(self.inbuf[: end + 1])
                del self.inbuf[: end + 1]
                return reply
            chunk = self.sock.recv(256 * 1024)
            if not chunk:
                raise ConnectionError("server closed the connection")
            self.inbuf += chunk

    @task
    def send_lines(self) -> None:
        start = time.perf_counter()
        exception = None
        try:
            if self.sock is None:
                self.sock = self._connect()
            self.sock.sendall(self.line * PIPELINE)
            for _ in range(PIPELINE):
                reply = self._read_reply()
                if reply != self.reply:
                    raise ValueError(f"wrong reply: {reply[:40]!r}")
        except Exception as exc:  # noqa: BLE001 - every failure is a failed request
            exception = exc
            self._close()
        elapsed_ms = (time.perf_counter() - start) * 1000 / PIPELINE
        for _ in range(PIPELINE):
            self.environment.events.request.fire(
                request_type="LINE",
                name=f"{LINE_SIZE} B line",
                response_time=elapsed_ms,
                response_length=len(self.reply),
                exception=exception,
                context={},
            )
        if exception is not None:
            time.sleep(0.1)  # do not spin on a dead server
