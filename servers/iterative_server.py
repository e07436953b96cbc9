"""LINE/1 server, model: iterative (one client at a time).

Blocks: accept(), then recv() and sendall() for the one client being served.
While it waits for that client, nobody else is served: a silent client stops
the whole server (by design: this is the model the others improve on).
Scales: to one client. Needs: nothing but blocking sockets (any OS).
"""
from lineproto import accept, listen, run, serve_blocking


def main():
    listener = listen()
    while True:
        conn = accept(listener)          # blocks until a client connects
        if conn is not None:
            serve_blocking(conn)         # blocks until this client leaves


if __name__ == "__main__":
    run(main)
