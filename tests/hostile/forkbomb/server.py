"""Hostile: a fork bomb. Every process forks for ever; it never listens.

The container's pids limit makes fork() fail (EAGAIN); the failures are
printed, then retried, as a careless bomb would.
"""

import os
import time

print("forking", flush=True)
while True:
    try:
        os.fork()
    except OSError as exc:
        print(f"fork failed: {exc}", flush=True)
        time.sleep(0.2)
