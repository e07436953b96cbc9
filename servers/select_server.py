"""LINE/1 server, model: IO multiplexing with select.select().

Blocks: only in select(), which sleeps until some socket is ready; every
socket is non-blocking, so one thread serves all clients and a silent client
costs nothing but its buffers. Writability is asked for only while a
connection has output pending (a socket is almost always writable).
Scales: to hundreds of clients: each call rebuilds three fd_set bitmaps
(highest fd + 1 bits) from the lists, the kernel checks every watched fd
(O(n) per call), and file descriptors must be < FD_SETSIZE (1024) on Linux
and macOS: libc's fd_set has a fixed size and CPython refuses larger fds.
On Windows an fd_set is a list of at most 512 sockets (as CPython builds it)
and no other kind of file.
Needs: select() (Linux, macOS, Windows).
"""
import select
import sys

from lineproto import NAME, Connection, accept, listen, log, run

# CPython has no select.poll on Windows: there (and under the emulated windows profile,
# which hides it too) select() counts sockets, at most 512; elsewhere fds must be < 1024.
WINDOWS = sys.platform == "win32" or not hasattr(select, "poll")
FD_SETSIZE = 512 if WINDOWS else 1024


def main():
    listener = listen(blocking=False)
    conns = set()
    refused = False
    while True:
        rlist = [listener] + [c for c in conns if c.wants_read()]
        wlist = [c for c in conns if c.wants_write()]
        readable, writable, _ = select.select(rlist, wlist, [])   # blocks here, and only here
        for conn in readable:
            if conn is listener:
                sock = accept(listener)
                if sock is None:
                    continue
                if (len(conns) + 1 if WINDOWS else sock.fileno()) >= FD_SETSIZE:
                    if not refused:
                        log(f"{NAME}: select() can watch only FD_SETSIZE={FD_SETSIZE}"
                            " descriptors; refusing clients beyond that")
                    refused = True
                    sock.close()
                    continue
                conns.add(Connection(sock))
            elif not conn.on_readable():
                conn.close()
                conns.discard(conn)
        for conn in writable:
            if not conn.closed and not conn.on_writable():
                conn.close()
                conns.discard(conn)


if __name__ == "__main__":
    run(main)
