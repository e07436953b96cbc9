"""LINE/1 server, model: non-blocking IO with busy polling (no select).

Blocks: nothing. Every socket is non-blocking: accept(), recv() and send()
return at once, raising BlockingIOError when nothing is ready, and the loop
asks every socket again and again. That is the flaw: it burns a whole CPU
core at 100% even with no client at all (by design, to show why
multiplexing exists), and each pass costs a system call per connection.
Scales: to a few hundred clients, at the price of one busy core.
Needs: non-blocking sockets (Linux, macOS, Windows).
"""
from lineproto import Connection, accept, listen, run


def main():
    listener = listen(blocking=False)
    conns = []
    while True:                                 # spins: never waits for anything
        sock = accept(listener)                 # None at once if nobody is connecting
        if sock is not None:
            conns.append(Connection(sock))
        still_open = []
        for conn in conns:
            # recv() (BlockingIOError if no data: try again next pass), then send what is pending
            if conn.on_readable() and conn.on_writable():
                still_open.append(conn)
            else:
                conn.close()
        conns = still_open


if __name__ == "__main__":
    run(main)
