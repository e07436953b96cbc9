"""LINE/1 server, model: IO multiplexing with selectors.DefaultSelector.

Blocks: only in sel.select(). selectors picks the best mechanism the platform
has (epoll on Linux, kqueue on macOS/BSD, devpoll on Solaris, poll, select on
Windows) behind one register / modify / unregister / select API; the data
attached to each registration (here its Connection) comes back with its events.
Scales: as far as the chosen mechanism does.
Needs: any OS (the selector class chosen is printed to stderr at start).
"""
import selectors

from lineproto import NAME, Connection, accept, listen, log, run

READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE
SELECT_LIMIT = 512   # SelectSelector is the default only on Windows: 512 sockets


def main():
    sel = selectors.DefaultSelector()
    log(f"{NAME}: DefaultSelector is {type(sel).__name__}")
    listener = listen(blocking=False)
    sel.register(listener, READ, None)                 # data None marks the listener
    while True:
        for key, events in sel.select():                # blocks here, and only here
            conn = key.data
            if conn is None:
                sock = accept(listener)
                if sock is not None and isinstance(sel, selectors.SelectSelector) \
                        and len(sel.get_map()) >= SELECT_LIMIT:
                    sock.close()   # select() would raise ValueError: refuse, keep serving
                elif sock is not None:
                    sel.register(sock, READ, Connection(sock))
                continue
            if conn.closed:                             # closed by an earlier event of this batch
                continue
            ok = True
            if events & READ:
                ok = conn.on_readable()
            if ok and events & WRITE:
                ok = conn.on_writable()
            if not ok:
                sel.unregister(conn.sock)
                conn.close()
            elif conn.interest(READ, WRITE) != key.events:
                sel.modify(conn.sock, conn.interest(READ, WRITE), conn)   # WRITE only while output waits


if __name__ == "__main__":
    run(main)
