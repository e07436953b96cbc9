"""Hostile: listens, then on the first line it receives allocates memory until killed.
(On a line, not a connection: a client that connects and sends nothing costs it nothing.)"""

import os
import socket

srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind((os.environ.get("HOST", "0.0.0.0"), int(os.environ.get("PORT", "9000"))))
srv.listen(64)
while True:
    conn, _ = srv.accept()
    if conn.recv(1):
        break
    conn.close()
hoard = []
while True:
    hoard.append(b"x" * (8 << 20))  # 8 MiB, every page touched
    print(f"holding {8 * len(hoard)} MiB", flush=True)
