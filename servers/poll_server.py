"""LINE/1 server, model: IO multiplexing with select.poll().

Blocks: only in poll(). Unlike select() there is no FD_SETSIZE limit (nfds is
bounded only by RLIMIT_NOFILE) and Python's poll object keeps the interest set
between calls (register / modify / unregister), but each poll() still copies
the whole pollfd array into the kernel, which checks every fd: O(n) per call,
so it slows down as idle connections pile up.
Scales: to a few thousand clients.
Needs: select.poll (Linux, macOS; CPython does not expose it on Windows,
although Windows has WSAPoll).
"""
import select

from lineproto import Connection, accept, listen, require, run

READ, WRITE = select.POLLIN, select.POLLOUT
FAILED = select.POLLHUP | select.POLLERR | select.POLLNVAL


def main():
    require(select, "poll", "CPython does not expose select.poll on Windows (WSAPoll exists, "
            "Python does not wrap it); use select_server.py or selectors_server.py")
    listener = listen(blocking=False)
    poller = select.poll()
    poller.register(listener, READ)
    conns = {}                                       # fd -> Connection
    while True:
        for fd, events in poller.poll():             # blocks here, and only here
            if fd == listener.fileno():
                sock = accept(listener)
                if sock is not None:
                    conn = conns[sock.fileno()] = Connection(sock)
                    conn.registered = READ
                    poller.register(sock, READ)
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
                poller.unregister(fd)
                del conns[fd]
                conn.close()
            elif conn.interest(READ, WRITE) != conn.registered:
                conn.registered = conn.interest(READ, WRITE)
                poller.modify(fd, conn.registered)   # ask for POLLOUT only while output waits


if __name__ == "__main__":
    run(main)
