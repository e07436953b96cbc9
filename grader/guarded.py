"""`python -m grader.guarded LAB ...`: the grader's command line, ended when its
parent dies.

A batch starts each student's grader in a session of its own (so a Ctrl-C at
the terminal reaches the batch, which then stops its graders in order). Were
the batch, or a cluster worker, killed with SIGKILL, those graders would run on
as orphans, their stacks and load phases included. Here a watchdog thread sees
the parent go (the process is then re-parented) and sends this process SIGTERM:
the grader's usual teardown (cli.py: SIGTERM is a Ctrl-C), exit 143.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

POLL = 0.5  # seconds between looks at the parent


def watch_parent(parent: int) -> None:
    while True:
        time.sleep(POLL)
        if os.getppid() != parent:
            os.kill(os.getpid(), signal.SIGTERM)
            return


def main() -> int:
    threading.Thread(target=watch_parent, args=(os.getppid(),), daemon=True,
                     name="orphan-watch").start()
    from grader.cli import main as cli_main
    return cli_main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
