"""lab-3 step 4: the same LINE/1 server on selectors.DefaultSelector.

selectors picks the best mechanism the platform has (epoll on Linux, kqueue
on macOS, select on Windows) behind one API, and lets you attach your own
data to each registration: sel.select() hands it back as key.data, so there
is no fd -> connection table to keep. Framing and partial sends come from
your ../linebuf.py (step 1); this step is about the selectors API:

  sel.register(sock, events, data)   once, when a connection arrives (done below);
  sel.modify(sock, events, data)     when what you want to know changes;
  sel.unregister(sock)               before you close it (done in forget()).

What to do (each YOUR CODE HERE):
  1. interest(c): the events to want for c now. EVENT_WRITE only while
     c.outbuf holds bytes: a connected socket is almost always writable, so
     asking with nothing to send makes sel.select() return at once, forever
     (checks resource.idle_cpu, model.conformance). EVENT_READ only until
     c.eof: a half-closed socket is readable forever (every recv() returns
     b'' at once), the same spin (check resource.halfclose_cpu). A
     connection that wants neither is done: forget it (selectors refuses a
     registration for no events).
  2. modify: after serving c, tell the selector when interest(c) differs
     from what it watches (key.events), and only then: each change is a
     system call (epoll_ctl) with the epoll selector.
  3. EOF: the client half-closed: set c.eof; close it (forget) only once
     c.outbuf is empty (check robust.eof).

`make lab-3 EXERCISE=selectors` (OS=windows: DefaultSelector is select()
there, with its 512-socket limit; OS=macos: poll(), since Linux has no kqueue).
"""

import os
import selectors
import socket
import sys

sys.path.append(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import linebuf  # noqa: E402 - your step 1: ../linebuf.py (graded beside this file)

HOST = os.environ.get("HOST", "0.0.0.0")
PORT = int(os.environ.get("PORT", "9000"))


class Conn:
    """What we attach to a registration: the socket, its unfinished line, its replies."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock, self.lines, self.outbuf = sock, linebuf.LineBuffer(), bytearray()
        self.eof = False  # the client half-closed: read no more, close once outbuf is sent


def interest(c: Conn) -> int:
    """The events the selector should report for c now."""
    # YOUR CODE HERE (1): EVENT_WRITE only while c.outbuf holds bytes; EVENT_READ only
    # until c.eof.
    return selectors.EVENT_READ | selectors.EVENT_WRITE


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
    sel = selectors.DefaultSelector()
    sel.register(listener, selectors.EVENT_READ, None)   # data None: the listener

    def forget(c: Conn) -> None:
        sel.unregister(c.sock)  # before close: the selector's map is keyed by fd
        c.sock.close()

    while True:
        for key, events in sel.select():        # sleeps until some socket is ready
            if key.data is None:
                try:
                    sock, _ = listener.accept()
                except BlockingIOError:
                    continue
                sock.setblocking(False)
                c = Conn(sock)
                sel.register(sock, interest(c), c)
                continue
            c = key.data
            try:
                if events & selectors.EVENT_READ:
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
            # YOUR CODE HERE (2): sel.modify(c.sock, ..., c) when interest(c) != key.events.


if __name__ == "__main__":
    main()
