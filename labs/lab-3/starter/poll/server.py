"""lab-3 step 2: the same LINE/1 server on select.poll.

poll() keeps a set of registrations (fd -> the events you want) between
calls, instead of three lists rebuilt every time, and has no FD_SETSIZE: fds
are bounded only by `ulimit -n`. It still hands the kernel every registered
fd on each call, which checks them all: O(n) per call. Framing and partial
sends come from your ../linebuf.py (step 1); this step is about poll itself:

  register(fd, events)   once, when a connection arrives (done below);
  modify(fd, events)     when what you want to know about it changes;
  unregister(fd)         before you close it (done in forget()).

What to do (each YOUR CODE HERE):
  1. interest(c): the events to want for c now. POLLOUT only while c.outbuf
     holds bytes: a connected socket is almost always writable, so asking
     with nothing to send makes poll() return at once, forever (checks
     resource.idle_cpu, model.conformance). POLLIN only until c.eof: a
     half-closed socket is readable forever (every recv() returns b'' at
     once), the same spin (check resource.halfclose_cpu).
  2. modify: after serving c, tell poll() when interest(c) differs from what
     it watches (c.watching), and only then: each modify() is a system call.
  3. EOF: the client half-closed: set c.eof; close it (forget) only once
     c.outbuf is empty (check robust.eof).

`make lab-3 EXERCISE=poll`. Run it alone: PORT=9000 python server.py.
Not on Windows: CPython does not expose poll() there (Windows has WSAPoll).
"""

import os
import select
import socket
import sys

sys.path.append(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import linebuf  # noqa: E402 - your step 1: ../linebuf.py (graded beside this file)

HOST = os.environ.get("HOST", "0.0.0.0")
PORT = int(os.environ.get("PORT", "9000"))


class Conn:
    """One client: its socket, its unfinished line, the replies not yet sent."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock, self.fd = sock, sock.fileno()
        self.lines, self.outbuf = linebuf.LineBuffer(), bytearray()
        self.eof = False    # the client half-closed: read no more, close once outbuf is sent
        self.watching = 0   # the events poll() watches on it now


def interest(c: Conn) -> int:
    """The events poll() should report for c now."""
    # YOUR CODE HERE (1): POLLOUT only while c.outbuf holds bytes; POLLIN only until c.eof.
    return select.POLLIN | select.POLLOUT


def listen() -> socket.socket:
    """A non-blocking listening socket on HOST:PORT."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((HOST, PORT))
    listener.listen(1024)
    listener.setblocking(False)
    return listener


def main() -> None:
    listener = listen()
    poller = select.poll()
    poller.register(listener, select.POLLIN)
    conns: dict[int, Conn] = {}

    def forget(c: Conn) -> None:
        # unregister before close: poll() reports a closed fd still registered as
        # POLLNVAL at once, on every call
        poller.unregister(c.fd)
        del conns[c.fd]
        c.sock.close()

    while True:
        for fd, events in poller.poll():        # sleeps until some fd is ready
            if fd == listener.fileno():
                try:
                    sock, _ = listener.accept()
                except BlockingIOError:
                    continue
                sock.setblocking(False)
                c = conns[sock.fileno()] = Conn(sock)
                c.watching = interest(c)
                poller.register(sock, c.watching)
                continue
            c = conns.get(fd)
            if c is None:
                continue
            try:
                if events & (select.POLLIN | select.POLLHUP | select.POLLERR):
                    data = c.sock.recv(65536)   # b'' at EOF; raises on a reset
                    if not data:
                        # YOUR CODE HERE (3): the client half-closed but may still be owed
                        # replies: set c.eof instead, and forget(c) once c.outbuf is empty.
                        forget(c)
                        continue
                    c.outbuf += c.lines.feed(data)
                if c.outbuf:                    # most replies go out at once
                    linebuf.send_some(c.sock, c.outbuf)
            except (ConnectionResetError, BrokenPipeError):
                forget(c)
                continue
            # YOUR CODE HERE (2): poller.modify(fd, ...) when interest(c) != c.watching.


if __name__ == "__main__":
    main()
