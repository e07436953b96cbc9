"""LINE/1 server, model: IO multiplexing with select.epoll(), edge-triggered.

Blocks: only in epoll.poll(). With EPOLLET the kernel reports a socket only
when its state changes (new data arrived, send-buffer space freed), not again
while it stays ready. So on every event the server must drain: accept() until
BlockingIOError, recv() until BlockingIOError, send() until BlockingIOError or
nothing is left. Whatever it leaves behind is not reported again until new
data arrives (which may be never).
In exchange each socket is registered once (EPOLLIN | EPOLLOUT) and never
modified: no epoll_ctl after registration, but an extra recv() -> EAGAIN per
event (the drain). Which wins depends on the workload; here level-triggered
does (epoll_server.py modifies only when interest changes, which is rare):
84,773 against 99,778 replies per server CPU-second at 100 clients in
bench/results/2026-11-28/summary.md.
Scales: to tens of thousands of clients.
Needs: epoll, which is Linux-only. The course notes say epoll is on macOS:
it is not; macOS and the BSDs have kqueue (kqueue_server.py, EV_CLEAR is its
edge-triggered mode).
"""
import select

from lineproto import Connection, accept, listen, require, run


def main():
    require(select, "epoll", "epoll is Linux-only (macOS has kqueue: use kqueue_server.py)")
    EDGE = select.EPOLLET
    listener = listen(blocking=False)
    ep = select.epoll()
    ep.register(listener, select.EPOLLIN | EDGE)
    conns = {}                                           # fd -> Connection
    while True:
        for fd, _ in ep.poll():                          # blocks here, and only here
            if fd == listener.fileno():
                while True:                              # accept every waiting client
                    sock = accept(listener)
                    if sock is None:
                        break
                    conns[sock.fileno()] = Connection(sock)
                    ep.register(sock, select.EPOLLIN | select.EPOLLOUT | EDGE)
                continue
            conn = conns.get(fd)
            if conn is None:
                continue
            # Whatever the edge was, send all we can, then read until the socket is empty.
            # (If the client stops reading, on_readable stops at MAX_PENDING output;
            # the EPOLLOUT edge that comes when it reads again resumes the draining.)
            if not (conn.on_writable() and conn.on_readable(drain=True)):
                ep.unregister(fd)
                del conns[fd]
                conn.close()


if __name__ == "__main__":
    run(main)
