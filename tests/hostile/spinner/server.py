"""Hostile: a correct LINE/1 server, plus two processes spinning on the CPU."""

import os
import socket
import threading

for _ in range(2):
    if os.fork() == 0:
        while True:
            pass


def serve(conn: socket.socket) -> None:
    buf = b""
    with conn:
        while data := conn.recv(65536):
            buf += data
            *lines, buf = buf.split(b"\n")
            conn.sendall(b"".join(b"%d %s\n" % (len(x), x) for x in lines))


srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind((os.environ.get("HOST", "0.0.0.0"), int(os.environ.get("PORT", "9000"))))
srv.listen(128)
while True:
    threading.Thread(target=serve, args=(srv.accept()[0],), daemon=True).start()
