"""Applies the IOLAB_OS profile to every Python started with this folder on
PYTHONPATH (Python imports `sitecustomize` at start-up). The grader puts it
there for the server under test; see servers/platforms.py.

In local mode it also stands in for the sandbox's pids limit (IOLAB_TASKS,
set by grader/targets/local.py): docker mode's `pids_limit: 512` makes the
kernel refuse a 513th task in the container, and Thread.start() then raises
RuntimeError("can't start new thread"). Local mode cannot ask the kernel for
that: RLIMIT_NPROC counts every process of the user and does not bind root.
So once this process has IOLAB_TASKS tasks (threads, the main one included),
starting another fails here with the same error, as in docker mode. Only
threads started through `threading` are counted; processes (os.fork) are not."""

import os
import sys


def _limit_tasks(limit: int) -> None:
    import threading

    name = ("_start_joinable_thread" if hasattr(threading, "_start_joinable_thread")
            else "_start_new_thread")  # Python 3.13+ / 3.10-3.12
    start = getattr(threading, name)

    def tasks() -> int:
        try:
            return len(os.listdir("/proc/self/task"))  # every thread, Python's or not
        except OSError:
            return threading.active_count()

    def start_within_limit(*args, **kwargs):
        if tasks() >= limit:  # as docker's pids limit does: `limit` tasks, the main one included
            raise RuntimeError("can't start new thread")
        return start(*args, **kwargs)

    setattr(threading, name, start_within_limit)


_tasks = os.environ.get("IOLAB_TASKS", "")
if _tasks.isdigit():
    _limit_tasks(int(_tasks))

_profile = os.environ.get("IOLAB_OS", "")
if _profile and _profile != "linux":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    try:
        import platforms

        platforms.emulate(_profile)
    finally:
        sys.path.pop(0)
