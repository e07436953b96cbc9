"""lab-3 step 2: the same LINE/1 server on select.poll.

poll() takes a set of (fd, event mask) registrations that lives between
calls, instead of three lists rebuilt every time, and has no 1024 limit.
Like select() it still scans every registered fd per call: O(n).
Paste your fixed on_readable/on_writable and EOF handling from step 1
(../server.py), then read how the loop below differs. `make lab-3 EXERCISE=poll`.
Not on Windows (Python there has no select.poll).
"""

import os
import select
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


def main() -> None:
    listener = listen()
    poller = select.poll()
    poller.register(listener, select.POLLIN)
    conns: dict[int, socket.socket] = {}
    inbufs: dict[int, bytearray] = {}
    outbufs: dict[int, bytearray] = {}

    def forget(fd: int) -> None:
        poller.unregister(fd)
        conns.pop(fd).close()
        del inbufs[fd], outbufs[fd]

    while True:
        for fd, events in poller.poll():        # blocks until some fd is ready
            if fd == listener.fileno():
                try:
                    conn, _ = listener.accept()
                except BlockingIOError:
                    continue
                conn.setblocking(False)
                conns[conn.fileno()] = conn
                inbufs[conn.fileno()], outbufs[conn.fileno()] = bytearray(), bytearray()
                poller.register(conn, select.POLLIN)
                continue
            sock = conns[fd]
            try:
                if events & (select.POLLIN | select.POLLHUP | select.POLLERR):
                    if not on_readable(sock, inbufs[fd], outbufs[fd]):
                # YOUR CODE HERE: your half-close handling from step 1: on EOF
                # send the replies still owed, then close.
                        forget(fd)
                        continue
                if events & select.POLLOUT:
                    on_writable(sock, outbufs[fd])
            except (ConnectionResetError, BrokenPipeError):
                forget(fd)
                continue
            # ask for POLLOUT only while replies wait, or poll() never sleeps
            poller.modify(fd, select.POLLIN | (select.POLLOUT if outbufs[fd] else 0))


if __name__ == "__main__":
    main()
