"""lab-1 step 1: an iterative LINE/1 server (blocking IO, one client at a time).

The course notes' first server: accept() a client, serve it until it leaves,
then accept the next. It runs, but it answers each recv() chunk as if it were
one line and may lose part of a reply. Fix serve_client() (YOUR CODE HERE),
then run `make lab-1 EXERCISE=iterative`. One check fails by design: a silent
client stalls an iterative server; the report marks it as the lesson.

Run it alone:  PORT=9000 python server.py   then   nc localhost 9000
"""

import os
import socket

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
                data = conn.recv(65536)  # blocks until this client sends something
            except ConnectionResetError:
                return
            if not data:
                return  # EOF: the client is done (every whole line was answered)
            # YOUR CODE HERE: keep a buffer; reply once per complete line
            # (split on b"\n"), keep an unfinished line for the next recv().
            # send() may take only part of the reply: use sendall().
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
        conn, _ = listener.accept()   # blocks until a client connects
        serve_client(conn)            # blocks until that client leaves


if __name__ == "__main__":
    main()
