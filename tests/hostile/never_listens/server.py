"""Hostile: binds the port, prints that it is ready, never calls listen()."""

import os
import socket
import time

sock = socket.socket()
sock.bind((os.environ.get("HOST", "0.0.0.0"), int(os.environ.get("PORT", "9000"))))
print("ready! all checks passed!", flush=True)  # printing earns nothing
time.sleep(3600)
