"""lab-1 step 4: a bounded pool of POOL_SIZE threads (blocking IO).

Nothing in a thread-per-connection program bounds its threads: ten thousand
clients would be ten thousand threads, but the OS stops it first (RLIMIT_NPROC,
the container's pids limit, memory: 512 tasks in the grading sandbox), and
hitting that limit crashes a naive server: Thread.start() raises RuntimeError
(step 2's thread-ceiling check). A pool starts POOL_SIZE workers once; the
main thread accepts and hands each connection to the pool through a queue.
The price: a worker is held for its client's whole life, so client
POOL_SIZE + 1 waits until one leaves. The grader shows it (robust.pool_ceiling). Paste your
serve_client() from step 1, then build the pool (YOUR CODE HERE). Run
`make lab-1 EXERCISE=threadpool`.
"""

import os
import queue  # noqa: F401 - you will need it
import socket
import threading  # noqa: F401 - you will need it

HOST = os.environ.get("HOST", "0.0.0.0")
PORT = int(os.environ.get("PORT", "9000"))
POOL_SIZE = int(os.environ.get("POOL_SIZE", "16"))  # the grader expects 16


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


def worker(waiting) -> None:
    """Forever: take the next accepted connection from `waiting` and serve it."""
    # YOUR CODE HERE
    raise NotImplementedError


def main() -> None:
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((HOST, PORT))
    listener.listen(1024)
    # YOUR CODE HERE: make a queue.SimpleQueue(), start POOL_SIZE daemon
    # threads running worker(queue), and put each accepted connection in it
    # instead of serving it here.
    while True:
        conn, _ = listener.accept()
        serve_client(conn)


if __name__ == "__main__":
    main()
