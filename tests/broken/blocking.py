"""A correct blocking LINE/1 server, a thread or a process per connection, with one
switchable flaw (as flawed.py does for the multiplexing model).

Each tests/broken/<model>_<flaw>.py calls serve(model, flaw=...), so it differs from
the correct server of its model in exactly one way.
"""

import os
import signal
import socket
import threading

FLAWS = {
    "fork": {"none", "no_reap"},
    "thread": {"none", "dies_at_ceiling", "hangs_at_ceiling"},
}


def reply(line: bytes) -> bytes:
    return b"%d %s\n" % (len(line), line)


def serve_client(conn: socket.socket) -> None:
    with conn:
        buf = b""
        while True:
            try:
                data = conn.recv(65536)
            except OSError:
                return
            if not data:
                return
            *lines, buf = (buf + data).split(b"\n")
            try:
                conn.sendall(b"".join(reply(line) for line in lines))
            except OSError:
                return


def reap(signum, frame) -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def start_child(listener: socket.socket, conn: socket.socket) -> None:
    if os.fork() == 0:
        listener.close()
        try:
            serve_client(conn)
        finally:
            os._exit(0)
    conn.close()


def start_thread(conn: socket.socket, flaw: str) -> None:
    if flaw == "dies_at_ceiling":  # the flaw: RuntimeError ends the accept loop, and the process
        threading.Thread(target=serve_client, args=(conn,), daemon=True).start()
        return
    try:
        threading.Thread(target=serve_client, args=(conn,), daemon=True).start()
    except RuntimeError:
        if flaw != "hangs_at_ceiling":  # the flaw: the refused client is never closed
            conn.close()


def serve(model: str, flaw: str = "none") -> None:
    assert flaw in FLAWS[model], (model, flaw)
    if model == "fork" and flaw != "no_reap":  # the flaw: children are never waited for
        signal.signal(signal.SIGCHLD, reap)
    listener = socket.create_server((os.environ.get("HOST", "0.0.0.0"),
                                     int(os.environ.get("PORT", "9000"))), backlog=1024)
    while True:
        conn, _ = listener.accept()
        if model == "fork":
            start_child(listener, conn)
        else:
            start_thread(conn, flaw)
