"""Broken on purpose: binds the port but never calls listen()."""

import os
import socket
import time

sock = socket.socket()
sock.bind((os.environ.get("HOST", "0.0.0.0"), int(os.environ.get("PORT", "9000"))))
print("ready!")  # printing readiness earns nothing: only the network counts
time.sleep(3600)
