"""lab-3 step 4: the same LINE/1 server on selectors.DefaultSelector.

selectors picks the best mechanism the platform has (epoll on Linux, kqueue
on macOS, select on Windows) behind one API, and lets you attach data to
each registration. The same file runs everywhere. Paste your fixed
on_readable/on_writable and EOF handling from step 1 (../server.py).
`make lab-3 EXERCISE=selectors` (try OS=windows: it falls back to select).
"""

import os
import selectors
import socket

HOST = os.environ.get("HOST", "0.0.0.0")
PORT = int(os.environ.get("PORT", "9000"))


def reply(line: bytes) -> bytes:
    """LINE/1: the reply to one line (without its b'\\n') is b'<len> <line>\\n'."""
    return b"%d %s\n" % (len(line), line)


def on_readable(conn: socket.socket, inbuf: bytearray, outbuf: bytearray) -> bool:
    """Read what arrived; queue a reply per complete line. False when the client is gone."""
    data = conn.recv(65536)
    if not data:
        return False
    # YOUR CODE HERE: your line framing from step 1 (../server.py).
    outbuf += reply(data.rstrip(b"\n"))
    return True


def on_writable(conn: socket.socket, outbuf: bytearray) -> None:
    """Send as much of outbuf as the socket takes now; keep the rest."""
    # YOUR CODE HERE: your partial-send handling from step 1.
    conn.send(outbuf)
    outbuf.clear()


def listen() -> socket.socket:
    """A non-blocking listening socket on HOST:PORT."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((HOST, PORT))
    listener.listen(1024)
    listener.setblocking(False)
    return listener


class Conn:
    """What we attach to a registration: the socket and its two buffers."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock, self.inbuf, self.outbuf = sock, bytearray(), bytearray()


def main() -> None:
    listener = listen()
    sel = selectors.DefaultSelector()
    sel.register(listener, selectors.EVENT_READ, None)   # data None: the listener

    def forget(c: Conn) -> None:
        sel.unregister(c.sock)
        c.sock.close()

    while True:
        for key, events in sel.select():        # blocks until some socket is ready
            if key.data is None:
                try:
                    sock, _ = listener.accept()
                except BlockingIOError:
                    continue
                sock.setblocking(False)
                sel.register(sock, selectors.EVENT_READ, Conn(sock))
                continue
            c = key.data
            try:
                if events & selectors.EVENT_READ:
                    if not on_readable(c.sock, c.inbuf, c.outbuf):
                # YOUR CODE HERE: your half-close handling from step 1: on EOF
                # send the replies still owed, then close.
                        forget(c)
                        continue
                if events & selectors.EVENT_WRITE:
                    on_writable(c.sock, c.outbuf)
            except (ConnectionResetError, BrokenPipeError):
                forget(c)
                continue
            # ask for EVENT_WRITE only while replies wait, or select() never sleeps
            wanted = selectors.EVENT_READ | (selectors.EVENT_WRITE if c.outbuf else 0)
            if wanted != key.events:
                sel.modify(c.sock, wanted, c)


if __name__ == "__main__":
    main()
