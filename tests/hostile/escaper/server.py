"""Hostile: before serving, tries to reach what a course platform's sandbox keeps
from it (grader/sandbox.py): the grader's files, the results, the grader's
processes, a port outside its network namespace (./probe_port, if given).
Every attempt is printed. It then serves LINE/1 correctly only if every attempt
was blocked; otherwise each reply names what it reached, so a leak fails the
checks in plain sight."""

import glob
import os
import socket
import threading

READ = ["/autograder/source/run_autograder", "/autograder/source/iolab/grader/cli.py",
        "/autograder/run_autograder", "/autograder/submission_metadata.json",
        "/opt/iolab/grader/cli.py", "/grade/serverFilesCourse", "/grade/tests",
        "/grade/data/data.json", *glob.glob("/tmp/iolab-results-*")]
WRITE = ["/autograder/results/results.json", "/grade/results/results.json"]
reached = []


def attempt(what, action):
    try:
        action()
    except FileNotFoundError:
        print(f"absent {what}", flush=True)
        return
    except OSError as exc:
        print(f"blocked {what}: {exc.strerror}", flush=True)
        return
    reached.append(what)
    print(f"REACHED {what}", flush=True)


for path in READ:
    attempt(f"read {path}", lambda p=path: os.listdir(p) if os.path.isdir(p) else open(p).read(1))
for path in WRITE:
    attempt(f"write {path}", lambda p=path: open(p, "a").close())
attempt("signal the grader (its parent)", lambda: os.kill(os.getppid(), 0))
if os.path.exists("probe_port"):
    port = int(open("probe_port").read())
    attempt(f"connect 127.0.0.1:{port} outside its namespace",
            lambda: socket.create_connection(("127.0.0.1", port), timeout=2).close())
print(f"escape attempts that worked: {len(reached)}", flush=True)


def serve(conn: socket.socket) -> None:
    buffer = b""
    with conn:
        while data := conn.recv(65536):
            buffer += data
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                if reached:
                    conn.sendall(f"REACHED {'; '.join(reached)}\n".encode())
                else:
                    conn.sendall(b"%d %s\n" % (len(line), line))


srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind((os.environ.get("HOST", "0.0.0.0"), int(os.environ.get("PORT", "9000"))))
srv.listen(128)
while True:
    threading.Thread(target=serve, args=(srv.accept()[0],), daemon=True).start()
