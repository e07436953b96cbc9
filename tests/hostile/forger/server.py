"""Hostile: writes forged results.json and junit.xml wherever it can, then
serves wrong replies (its true score is 0). Every attempt is printed."""

import json
import os
import socket
import threading

FORGED = {"score": 1000, "output": "FORGED-RESULTS-FILE",
          "tests": [{"name": "everything", "score": 1000, "max_score": 1000}]}
JUNIT = '<testsuites name="FORGED-RESULTS-FILE"><testsuite name="x" tests="1"/></testsuites>'
PLACES = [".", "/submission", "/tmp", "/results", "../results", "/opt/iolab/results",
          "/opt/iolab", os.path.expanduser("~"), "/"]

for place in PLACES:
    for name, text in (("results.json", json.dumps(FORGED)), ("junit.xml", JUNIT)):
        path = os.path.join(place, name)
        try:
            with open(path, "w") as fh:
                fh.write(text)
            print(f"FORGE WROTE {path}", flush=True)
        except OSError as exc:
            print(f"forge failed {path}: {exc}", flush=True)


def serve(conn: socket.socket) -> None:
    with conn:
        while data := conn.recv(65536):
            conn.sendall(b"1 x\n" * data.count(b"\n"))


srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind((os.environ.get("HOST", "0.0.0.0"), int(os.environ.get("PORT", "9000"))))
srv.listen(128)
while True:
    threading.Thread(target=serve, args=(srv.accept()[0],), daemon=True).start()
