"""Broken on purpose: serves one client at a time, so a silent client blocks all."""

import os
import socket

listener = socket.create_server((os.environ.get("HOST", "0.0.0.0"), int(os.environ.get("PORT", "9000"))))
while True:
    conn, _ = listener.accept()
    with conn:
        buf = b""
        try:
            while data := conn.recv(65536):
                buf += data
                *lines, buf = buf.split(b"\n")
                conn.sendall(b"".join(b"%d %s\n" % (len(x), x) for x in lines))
        except OSError:
            pass  # a reset client: on to the next one
