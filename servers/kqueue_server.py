"""LINE/1 server, model: IO multiplexing with select.kqueue() (macOS, BSD).

Blocks: only in kqueue.control(). Like epoll, the kernel keeps the interest
set and returns only ready events, so a call costs O(ready), not O(all). Each
socket has two filters, KQ_FILTER_READ and KQ_FILTER_WRITE, each reported as
its own event; the write filter is enabled only while output waits.
Closing a socket removes its filters. Level-triggered (EV_CLEAR would make a
filter edge-triggered, like EPOLLET).
Scales: to tens of thousands of clients.
Needs: kqueue: macOS and the BSDs. Linux has none (it has epoll: the course
notes put epoll on macOS; it is Linux-only), nor has Windows.
"""
import select

from lineproto import Connection, accept, listen, require, run


def main():
    require(select, "kqueue", "kqueue is macOS/BSD-only (on Linux use epoll_server.py)")
    READ, WRITE = select.KQ_FILTER_READ, select.KQ_FILTER_WRITE
    ADD, ENABLE, DISABLE = select.KQ_EV_ADD, select.KQ_EV_ENABLE, select.KQ_EV_DISABLE
    listener = listen(blocking=False)
    kq = select.kqueue()
    kq.control([select.kevent(listener, READ, ADD)], 0)
    conns = {}                                          # fd -> Connection
    while True:
        for ev in kq.control(None, 1024):               # blocks here, and only here
            fd = ev.ident
            if fd == listener.fileno():
                sock = accept(listener)
                if sock is not None:
                    conn = conns[sock.fileno()] = Connection(sock)
                    conn.registered = (True, False)
                    kq.control([select.kevent(sock, READ, ADD),
                                select.kevent(sock, WRITE, ADD | DISABLE)], 0)
                continue
            conn = conns.get(fd)
            if conn is None:                            # closed by an earlier event of this batch
                continue
            ok = conn.on_readable() if ev.filter == READ else conn.on_writable()
            if not ok:
                del conns[fd]
                conn.close()                            # also deletes its two filters
                continue
            reading, writing = conn.wants_read(), conn.wants_write()
            if (reading, writing) != conn.registered:   # WRITE only while output waits
                conn.registered = (reading, writing)
                kq.control([select.kevent(fd, READ, ENABLE if reading else DISABLE),
                            select.kevent(fd, WRITE, ENABLE if writing else DISABLE)], 0)


if __name__ == "__main__":
    run(main)
