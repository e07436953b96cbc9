"""LINE/1 server, model: blocking IO, one process per connection (os.fork).

Blocks: each child in recv()/sendall() for its one client; the parent in
accept(). A silent client only parks its own process.
Scales: to hundreds of clients; each costs a process (fork copies the page
tables; memory is shared copy-on-write), but children run truly in parallel,
with no GIL between them.
Needs: fork() (Linux, macOS; Windows has no fork).
"""
import os
import signal

from lineproto import accept, listen, require, run, serve_blocking

children = set()


def reap(signum, frame):
    """SIGCHLD: collect every child that has exited, so none stays a zombie."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:   # no children at all
            return
        if pid == 0:                # children left, none exited
            return
        children.discard(pid)


def main():
    require(os, "fork", "Windows has no fork(); use thread_server.py")
    signal.signal(signal.SIGCHLD, reap)
    listener = listen()
    try:
        while True:
            conn = accept(listener)
            if conn is None:
                continue
            pid = os.fork()
            if pid == 0:                                   # the child
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                listener.close()
                try:
                    serve_blocking(conn)
                finally:
                    os._exit(0)                            # never return into the parent's loop
            children.add(pid)
            conn.close()        # the parent's copy: the child has its own
    finally:
        for pid in list(children):                         # stopping: stop the children too
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass


if __name__ == "__main__":
    run(main)
