"""LINE/1 server, model: blocking IO served by a fixed pool of threads.

Blocks: each worker in recv()/sendall() for the client it serves; the main
thread in accept(). No thread is created per connection, but a worker is held
for the client's whole life: when POOL_SIZE clients are connected (silent
ones too), new clients wait in the queue, unanswered, until a worker is free.
Scales: to POOL_SIZE concurrent clients (env POOL_SIZE, default 16).
Needs: blocking sockets and threads (Linux, macOS, Windows).

A queue of daemon workers rather than concurrent.futures.ThreadPoolExecutor,
whose non-daemon workers would keep the process alive at exit while a silent
client holds one of them.
"""
import os
import queue
import threading

from lineproto import NAME, accept, listen, log, run, serve_blocking

POOL_SIZE = int(os.environ.get("POOL_SIZE", "16"))
waiting = queue.SimpleQueue()   # accepted connections no worker has taken yet
busy = 0                        # workers serving a client
lock = threading.Lock()


def worker():
    global busy
    while True:
        conn = waiting.get()            # blocks until the main thread hands over a client
        with lock:
            busy += 1
        serve_blocking(conn)            # blocks for the client's whole life
        with lock:
            busy -= 1


def main():
    listener = listen()
    for _ in range(POOL_SIZE):
        threading.Thread(target=worker, daemon=True).start()
    warned = False
    while True:
        conn = accept(listener)
        if conn is None:
            continue
        waiting.put(conn)
        if busy >= POOL_SIZE and not warned:
            log(f"{NAME}: all {POOL_SIZE} workers are busy; new connections wait"
                f" in the queue ({waiting.qsize()} waiting)")
            warned = True   # say it once, not once per connection


if __name__ == "__main__":
    run(main)
