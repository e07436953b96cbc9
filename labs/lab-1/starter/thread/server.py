"""lab-1 step 2: a thread per connection (blocking IO, many clients at once).

Each client gets its own thread, so a client that blocks in recv() blocks
only its own thread. Paste your fixed serve_client() from step 1, then start
a thread per connection in main() (YOUR CODE HERE). Run
`make lab-1 EXERCISE=thread`.

Nothing in this program bounds its threads; the OS does (RLIMIT_NPROC, the
container's pids limit, memory). The grading sandbox allows 512 tasks, so at
about 510 connected clients Thread.start() raises RuntimeError ("can't start
new thread"); uncaught, it ends the process and every client with it. Catch it,
close the client you cannot serve, and keep serving the others (YOUR CODE
HERE): `make lab-1 EXERCISE=thread-ceiling` sends 600 clients.
"""

import os
import socket
import threading  # noqa: F401 - you will need it

HOST = os.environ.get("HOST", "0.0.0.0")
PORT = int(os.environ.get("PORT", "9000"))


def reply(line: bytes) -> bytes:
    """LINE/1: the reply to one line (without its b'\\n') is b'<len> <line>\\n'."""
    return b"%d %s\n" % (len(line), line)


def serve_client(conn: socket.socket) -> None:
    """Reply to every complete line of one client, in order, until it half-closes."""
    with conn:
        while True:
            try:
                data = conn.recv(65536)
            except ConnectionResetError:
                return
            if not data:
                return
            # YOUR CODE HERE: your line framing and sendall() from step 1.
            try:
                conn.send(reply(data.rstrip(b"\n")))
            except (ConnectionResetError, BrokenPipeError):
                return


def main() -> None:
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((HOST, PORT))
    listener.listen(1024)
    while True:
        conn, _ = listener.accept()
        # YOUR CODE HERE: serve the client in a new thread (daemon=True, so
        # Ctrl-C ends the server) and go straight back to accept().
        # At the OS's ceiling Thread.start() raises RuntimeError: refuse that
        # client (close conn) instead of letting the error end the server.
        serve_client(conn)


if __name__ == "__main__":
    main()
