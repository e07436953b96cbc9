"""lab-3 step 3: the same LINE/1 server on select.epoll (Linux only).

epoll keeps the interest list inside the kernel: you register each fd once,
and epoll.poll() returns only the ready ones, so a call costs O(ready), not
O(n). This is level-triggered (the default): a socket with unread data is
reported again on every call. Paste your fixed on_readable/on_writable and EOF
handling from step 1 (../server.py). `make lab-3 EXERCISE=epoll`.
The course notes say epoll exists on macOS: it does not. epoll is Linux-only;
macOS and the BSDs have kqueue (select.kqueue), which the grader cannot run
in its Linux containers.
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
    ep = select.epoll()
    ep.register(listener.fileno(), select.EPOLLIN)
    conns: dict[int, socket.socket] = {}
    inbufs: dict[int, bytearray] = {}
    outbufs: dict[int, bytearray] = {}

    def forget(fd: int) -> None:
        ep.unregister(fd)
        conns.pop(fd).close()
        del inbufs[fd], outbufs[fd]

    while True:
        for fd, events in ep.poll():            # blocks; returns only ready fds
            if fd == listener.fileno():
                try:
                    conn, _ = listener.accept()
                except BlockingIOError:
                    continue
                conn.setblocking(False)
                conns[conn.fileno()] = conn
                inbufs[conn.fileno()], outbufs[conn.fileno()] = bytearray(), bytearray()
                ep.register(conn.fileno(), select.EPOLLIN)
                continue
            sock = conns[fd]
            try:
                if events & (select.EPOLLIN | select.EPOLLHUP | select.EPOLLERR):
                    if not on_readable(sock, inbufs[fd], outbufs[fd]):
                # YOUR CODE HERE: your half-close handling from step 1: on EOF
                # send the replies still owed, then close.
                        forget(fd)
                        continue
                if events & select.EPOLLOUT:
                    on_writable(sock, outbufs[fd])
            except (ConnectionResetError, BrokenPipeError):
                forget(fd)
                continue
            # ask for EPOLLOUT only while replies wait, or epoll.poll() never sleeps
            ep.modify(fd, select.EPOLLIN | (select.EPOLLOUT if outbufs[fd] else 0))


if __name__ == "__main__":
    main()
