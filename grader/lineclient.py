"""A LINE/1 client for the checks: blocking sockets, every wait bounded.

The server is untrusted: every read has a deadline and a size cap, so a
server that stalls, floods or lies makes a check fail, never hang.
"""

from __future__ import annotations

import errno
import socket
import struct
import threading
import time

Address = tuple[str, int]


def reply_for(line: bytes) -> bytes:
    """What LINE/1 says the server must answer to `line` (without its \\n)."""
    return b"%d %s\n" % (len(line), line)


def connect(addr: Address, timeout: float = 5.0, rcvbuf: int = 0) -> socket.socket:
    """A TCP connection with Nagle off; a small `rcvbuf` makes the server's send() partial."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)  # before connect: sets the window
    sock.settimeout(timeout)
    try:
        sock.connect(addr)
    except OSError:
        sock.close()
        raise
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def why_failed(exc: OSError) -> str:
    """What a failed connection means for a student. In the stack a server whose
    container has stopped is not "Temporary failure in name resolution" nor "No route
    to host": it is gone."""
    if isinstance(exc, socket.gaierror) or exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
        return "the server is gone (it is no longer running)"
    return exc.strerror or str(exc)


def reset(sock: socket.socket) -> None:
    """Close with an RST instead of a FIN (SO_LINGER on, zero timeout)."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


class Reader:
    """Reads from a socket until a byte count or EOF, within a deadline."""

    def __init__(self, sock: socket.socket, timeout: float):
        self.sock = sock
        self.deadline = time.monotonic() + timeout
        self.data = bytearray()
        self.eof = False
        self.error: str = ""

    def _recv(self, limit: int) -> bool:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            self.error = "timed out"
            return False
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(min(limit, 1 << 20))
        except TimeoutError:
            self.error = "timed out"
            return False
        except OSError as exc:
            self.error = f"connection error: {why_failed(exc)}"
            return False
        if not chunk:
            self.eof = True
            return False
        self.data += chunk
        return True

    def read_until_size(self, size: int, expected: bytes = b"") -> bytes:
        """Read up to `size` bytes (fewer on EOF, timeout or error).

        Given `expected`, stop as soon as the data departs from it: a wrong
        reply is wrong already, waiting out the timeout teaches nothing.
        """
        checked = 0
        while len(self.data) < size and self._recv(size - len(self.data)):
            if expected:
                if self.data[checked:] != expected[checked:len(self.data)]:
                    break
                checked = len(self.data)
        return bytes(self.data)

    def read_until_eof(self, cap: int) -> bytes:
        """Read until EOF or `cap` bytes; `eof` says which."""
        while len(self.data) <= cap and self._recv(cap + 1 - len(self.data)):
            pass
        return bytes(self.data)


def exchange(
    addr: Address, chunks: list[bytes], expected: bytes, timeout: float = 5.0, gap: float = 0.0,
    slow_reader: bool = False,
) -> bytes:
    """Send `chunks` (pausing `gap` s between them) while reading the replies.

    Sending runs in a thread so a server that answers while we still send
    (as it should for big payloads) never deadlocks against us. A slow reader
    has a tiny receive window and starts reading late, so the server's send()
    can take only part of a reply: partial sends must be handled.
    Returns what arrived: `expected` exactly when the server is right.
    """
    with connect(addr, timeout, rcvbuf=4096 if slow_reader else 0) as sock:
        sender = threading.Thread(target=_send_all, args=(sock, chunks, gap), daemon=True)
        sender.start()
        if slow_reader:
            time.sleep(0.5)
        got = Reader(sock, timeout).read_until_size(len(expected), expected)
        sender.join(timeout)
        return got


def lockstep(addr: Address, chunks: list[bytes], replies: list[bytes],
             timeout: float = 5.0) -> bytes:
    """Send each chunk only once the reply to the one before it has arrived, as a
    simple client does: one line in flight, so a server is never handed two lines
    in one recv() by chance. (A pause between chunks is not enough: on a busy
    machine the server may not read within it, and a per-chunk server would pass
    or fail by luck. Framing is line.split's and line.pipelined's to judge.)
    Returns what arrived: the joined `replies` exactly when the server is right."""
    with connect(addr, timeout) as sock:
        reader, wanted = Reader(sock, timeout), b""
        for chunk, reply in zip(chunks, replies):
            try:
                sock.sendall(chunk)
            except OSError:
                break  # the reply so far says what went wrong
            wanted += reply
            if reader.read_until_size(len(wanted), wanted) != wanted:
                break
        return bytes(reader.data)


def _send_all(sock: socket.socket, chunks: list[bytes], gap: float) -> None:
    try:
        for chunk in chunks:
            sock.sendall(chunk)
            if gap:
                time.sleep(gap)
    except OSError:
        pass  # the reader reports what went wrong


def describe(data: bytes, limit: int = 60) -> str:
    """A short printable rendering of bytes for messages."""
    if len(data) <= limit:
        return repr(data)
    return f"{data[: limit // 2]!r}…{data[-limit // 2 :]!r} ({len(data)} bytes)"


def first_mismatch(got: bytes, expected: bytes, block: int = 4096) -> int | None:
    """The index of the first byte where `got` and `expected` differ, None when one is
    the other's beginning. Compares block by block (a byte at a time in Python took
    2 CPU-seconds over line.large's 6 MiB of replies)."""
    n = min(len(got), len(expected))
    start = 0
    while start < n and got[start:start + block] == expected[start:start + block]:
        start += block
    return next((i for i in range(start, min(start + block, n)) if got[i] != expected[i]), None)


def first_difference(got: bytes, expected: bytes) -> str:
    """Where `got` departs from `expected`, in words a student can act on."""
    if got == expected:
        return "identical"
    if not got:
        return "no reply"
    i = first_mismatch(got, expected)
    if i is not None:
        line_no = expected.count(b"\n", 0, i) + 1
        return (
            f"reply {line_no} differs at byte {i}: "
            f"expected {describe(expected[i:i + 20])}, got {describe(got[i:i + 20])}"
        )
    if len(got) < len(expected):
        replies = got.count(b"\n")
        return f"only {len(got)} of {len(expected)} bytes ({replies} complete replies)"
    return f"{len(got) - len(expected)} unexpected extra bytes: {describe(got[len(expected):])}"
