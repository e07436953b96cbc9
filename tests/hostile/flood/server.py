"""Hostile: a correct LINE/1 server whose other thread floods stdout and stderr."""

import os
import socket
import sys
import threading

SPAM = "flood " * 170 + "\n"  # ~1 KiB a line


def flood() -> None:
    while True:
        sys.stdout.write(SPAM * 64)
        sys.stderr.write(SPAM * 64)


def serve(conn: socket.socket) -> None:
    buf = b""
    with conn:
        while data := conn.recv(65536):
            buf += data
            *lines, buf = buf.split(b"\n")
            conn.sendall(b"".join(b"%d %s\n" % (len(x), x) for x in lines))


threading.Thread(target=flood, daemon=True).start()
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind((os.environ.get("HOST", "0.0.0.0"), int(os.environ.get("PORT", "9000"))))
srv.listen(128)
while True:
    threading.Thread(target=serve, args=(srv.accept()[0],), daemon=True).start()
