"""lab-3 step 3: the same LINE/1 server on select.epoll (Linux only).

epoll keeps the interest list inside the kernel: register each fd once, and
ep.poll() returns only the ready ones, so a call costs O(ready), not O(n).
This is level-triggered (the default): a socket that is ready is reported
again on every call until it is not. Framing and partial sends come from
your ../linebuf.py (step 1); this step is about epoll itself:

  ep.register(fd, events)   once, when a connection arrives (done below);
  ep.modify(fd, events)     when what you want to know about it changes;
  ep.unregister(fd)         before you close it (done in forget()).

What to do (each YOUR CODE HERE):
  1. interest(c): the events to want for c now. EPOLLOUT only while c.outbuf
     holds bytes: a connected socket is almost always writable, so asking
     with nothing to send makes ep.poll() return at once, forever (checks
     resource.idle_cpu, model.conformance). EPOLLIN only until c.eof: a
     half-closed socket is readable forever (every recv() returns b'' at
     once), the same spin (check resource.halfclose_cpu). And EPOLLIN only
     while c.outbuf holds less than MAX_PENDING: a client that sends and
     never reads would otherwise pile its replies up in your memory; not
     reading makes TCP block its send() (backpressure, robust.backpressure).
  2. modify: after serving c, tell epoll when interest(c) differs from what
     it watches (c.watching), and only then: each ep.modify() is an epoll_ctl() system call.
  3. EOF: the client half-closed: set c.eof; close it (forget) only once
     c.outbuf is empty (check robust.eof).

`make lab-3 EXERCISE=epoll`. Run it alone: PORT=9000 python server.py.
The course notes say epoll exists on macOS: it does not. epoll is Linux-only;
macOS and the BSDs have kqueue (select.kqueue), which the grader cannot run
in its Linux containers.
"""

import os
import select
import socket
import sys

sys.path.append(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import linebuf  # noqa: E402 - your step 1: ../linebuf.py (graded beside this file)

HOST = os.environ.get("HOST", "0.0.0.0")
PORT = int(os.environ.get("PORT", "9000"))
MAX_PENDING = 1024 * 1024  # stop reading a client while this much output waits for it


class Conn:
    """One client: its socket, its unfinished line, the replies not yet sent."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock, self.fd = sock, sock.fileno()
        self.lines, self.outbuf = linebuf.LineBuffer(), bytearray()
        self.eof = False    # the client half-closed: read no more, close once outbuf is sent
        self.watching = 0   # the events epoll watches on it now


def interest(c: Conn) -> int:
    """The events epoll should report for c now."""
    # YOUR CODE HERE (1): EPOLLOUT only while c.outbuf holds bytes; EPOLLIN only until
    # c.eof, and only while len(c.outbuf) < MAX_PENDING.
    return select.EPOLLIN | select.EPOLLOUT


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
    ep = select.epoll()
    ep.register(listener.fileno(), select.EPOLLIN)
    conns: dict[int, Conn] = {}

    def forget(c: Conn) -> None:
        # unregister before close: the kernel drops a closed fd from the interest
        # list only once no other descriptor refers to the same socket
        ep.unregister(c.fd)
        del conns[c.fd]
        c.sock.close()

    while True:
        for fd, events in ep.poll():            # sleeps; returns only the ready fds
            if fd == listener.fileno():
                try:
                    sock, _ = listener.accept()
                except BlockingIOError:
                    continue
                sock.setblocking(False)
                c = conns[sock.fileno()] = Conn(sock)
                c.watching = interest(c)
                ep.register(c.fd, c.watching)
                continue
            c = conns.get(fd)
            if c is None:
                continue
            try:
                if events & (select.EPOLLIN | select.EPOLLHUP | select.EPOLLERR):
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
            # YOUR CODE HERE (2): ep.modify(fd, ...) when interest(c) != c.watching.


if __name__ == "__main__":
    main()
