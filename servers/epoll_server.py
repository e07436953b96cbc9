"""LINE/1 server, model: IO multiplexing with select.epoll(), level-triggered.

Blocks: only in epoll.poll(). The kernel keeps the interest set (register /
modify / unregister) and a ready list, so a call costs O(ready sockets), not
O(all sockets): ten thousand idle clients cost nothing per call.
Level-triggered: a socket is reported again on every call for as long as it is
still readable (or writable), so reading once per event is enough.
Scales: to tens of thousands of clients.
Needs: epoll, which is Linux-only. The course notes say epoll is on macOS:
it is not; macOS and the BSDs have kqueue (kqueue_server.py).
"""
import select

from lineproto import Connection, accept, listen, require, run


def main():
    require(select, "epoll", "epoll is Linux-only (macOS has kqueue: use kqueue_server.py)")
    READ, WRITE = select.EPOLLIN, select.EPOLLOUT
    FAILED = select.EPOLLHUP | select.EPOLLERR
    listener = listen(blocking=False)
    ep = select.epoll()
    ep.register(listener, READ)
    conns = {}                                       # fd -> Connection
    while True:
        for fd, events in ep.poll():                 # blocks here, and only here
            if fd == listener.fileno():
                sock = accept(listener)
                if sock is not None:
                    conn = conns[sock.fileno()] = Connection(sock)
                    conn.registered = READ
                    ep.register(sock, READ)
                continue
            conn = conns.get(fd)
            if conn is None:
                continue
            ok = True
            if events & (READ | FAILED):             # data, EOF or an error: recv() tells which
                ok = conn.on_readable()
            if ok and events & WRITE:
                ok = conn.on_writable()
            if not ok:
                ep.unregister(fd)
                del conns[fd]
                conn.close()
            elif conn.interest(READ, WRITE) != conn.registered:
                conn.registered = conn.interest(READ, WRITE)
                ep.modify(fd, conn.registered)       # ask for EPOLLOUT only while output waits


if __name__ == "__main__":
    run(main)
