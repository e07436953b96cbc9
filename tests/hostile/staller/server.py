"""Hostile: accepts every connection and never replies: the grading of the
exercise would take as long as every check's own timeouts add up to, so the
exercise's wall-clock limit (lab.yaml limits.timeout) stops it."""

import os
import socket
import time

srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind((os.environ.get("HOST", "0.0.0.0"), int(os.environ.get("PORT", "9000"))))
srv.listen(128)
held = []
while True:
    held.append(srv.accept()[0])
    time.sleep(0)
