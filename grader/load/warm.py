"""Local mode's load phases, forked from one process that has already imported Locust.

Importing Locust costs about 0.9 CPU-seconds (gevent's monkey-patching, Flask for
the web UI it brings, requests, geventhttpclient), as much as the grader's side of a
2 s load phase. A grader process that runs several phases (a lab's exercises, their
calibrations, every grading of a test session) pays it once: the first phase starts
a warm process (`python -m grader.load.warm`) that imports Locust and waits; each
phase is then a fork of it, with the phase's own environment, in a process
group (stopped as a group, as a phase started as a process of its own is), in the
phase's folder, running grader/load/local.py's main() as `python -m grader.load.local
PREFIX` would.

The warm process imports Locust and nothing of ours: the locustfile reads its
settings from the environment when it is imported, so each fork imports it after
setting the phase's environment. A fork inherits gevent's loop with its clock
stopped when the warm process last ran it: local.main() sets it to now before it
sets a timer (else the phase's safety stop, 30 s after its start, fired at once in
a fork of a warm process more than 30 s old: a phase of no length, passed).

    start_phase(env, prefix) -> a process handle: pid, poll(), wait(timeout)

Where a process that is not our child cannot be watched (no os.pidfd_open: macOS,
Windows, Linux before 5.3), or IOLAB_WARM_LOCUST=0, each phase is a process of its
own, as before. The choice is made in one place, start_phase().

Protocol, one JSON line each way: {"env": {...}, "prefix": "..."} -> {"pid": N}.
The warm process reaps its finished forks before each new one (so every pid is
watched through a pidfd before it can be reused) and exits when its stdin closes:
when the grader process that started it exits, however it exits.
"""

from __future__ import annotations

import ctypes
import json
import os
import select
import signal
import subprocess
import sys
import threading

from grader.paths import REPO
from grader.proc import stop_group

WARM_ENV = "IOLAB_WARM_LOCUST"  # "0": every phase a process of its own
PR_SET_PDEATHSIG = 1  # prctl(2): the signal a process gets when its parent ends
REPLY_WAIT = 60  # s for the warm process to fork (its first answer waits for Locust's import)


def available() -> bool:
    return hasattr(os, "pidfd_open") and os.environ.get(WARM_ENV, "1") != "0"


def start_phase(env: dict, prefix: str):
    """A load phase writing PREFIX_* (grader/load/local.py), waiting at its gate."""
    prefix = os.path.abspath(prefix)  # the phase runs in its own folder
    if available():
        try:
            return _WARM.fork(env, prefix)
        except (OSError, ValueError):
            pass  # the warm process died or could not start: a process of its own
    return subprocess.Popen([sys.executable, "-m", "grader.load.local", prefix],
                            cwd=REPO, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)  # stop_group ends it, also on Ctrl-C


class ForkedPhase:
    """A phase forked by the warm process: what stop_group and the target call of a
    subprocess.Popen (pid, returncode, poll, wait). Its exit status is its parent's
    (the warm process's) to collect: nothing here reads one, so it is 0 once it ended."""

    def __init__(self, pid: int):
        self.pid = pid
        self.returncode: int | None = None
        self._fd = os.pidfd_open(pid)

    def poll(self) -> int | None:
        return self._wait(0)

    def wait(self, timeout: float | None = None) -> int:
        if self._wait(timeout) is None:
            raise subprocess.TimeoutExpired(f"load phase {self.pid}", timeout)
        return self.returncode

    def _wait(self, timeout: float | None) -> int | None:
        if self.returncode is None:
            poller = select.poll()  # not select(): a grader's fds may be past FD_SETSIZE
            poller.register(self._fd, select.POLLIN)
            if poller.poll(None if timeout is None else timeout * 1000):
                self.returncode = 0
                os.close(self._fd)
        return self.returncode


class _Warm:
    """The grader's side of the warm process: one fork at a time (a lock), so every
    pid is watched before the warm process reaps anything."""

    def __init__(self):
        self.lock = threading.Lock()
        self.proc: subprocess.Popen | None = None

    def fork(self, env: dict, prefix: str) -> ForkedPhase:
        with self.lock:
            if self.proc is None or self.proc.poll() is not None:
                self.proc = subprocess.Popen(
                    [sys.executable, "-m", "grader.load.warm"], cwd=REPO,
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL, start_new_session=True)
            try:
                return ForkedPhase(self._ask(env, prefix))
            except BaseException:  # no answer, or a Ctrl-C while waiting for it: a fork
                stop_group(self.proc, grace=0)  # no one holds would wait at its gate,
                self.proc = None  # so stop the warm process, and its forks die with it
                raise

    def _ask(self, env: dict, prefix: str) -> int:
        self.proc.stdin.write(json.dumps({"env": env, "prefix": prefix}).encode() + b"\n")
        self.proc.stdin.flush()
        poller = select.poll()
        poller.register(self.proc.stdout, select.POLLIN)
        reply = self.proc.stdout.readline() if poller.poll(REPLY_WAIT * 1000) else b""
        if not reply:  # exited, or stuck
            raise OSError("the warm Locust process did not answer")
        return json.loads(reply)["pid"]


_WARM = _Warm()


# --- the warm process ------------------------------------------------------------

def serve() -> None:
    waitpid = os.waitpid  # the kernel's: gevent's would look for children it watches
    import gevent.os
    import locust  # noqa: F401  monkey-patches the standard library, once
    from locust import env, html, stats  # noqa: F401  what a phase imports of Locust

    for line in sys.stdin.buffer:
        request = json.loads(line)
        _reap(waitpid)
        warm = os.getpid()
        pid = gevent.os.fork_gevent()  # the child's gevent hub made anew
        if pid == 0:
            _phase(request, warm)  # never returns
        try:  # its own group before the grader may stop it (the child does the same:
            os.setpgid(pid, pid)  # whichever runs first); in the warm process's session
        except OSError:  # already gone: the grader finds it ended
            pass
        sys.stdout.write(json.dumps({"pid": pid}) + "\n")
        sys.stdout.flush()


def _reap(waitpid) -> None:
    try:
        while waitpid(-1, os.WNOHANG)[0]:
            pass
    except ChildProcessError:
        pass


def _phase(request: dict, warm: int) -> None:
    code = 1
    try:
        _die_with(warm)
        os.setpgid(0, 0)
        os.chdir(os.path.dirname(request["prefix"]))  # `ps` and leftover checks see its folder
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        os.environ.clear()
        os.environ.update(request["env"])
        from grader.load.local import main
        code = main(request["prefix"])
    finally:
        os._exit(code)


def _die_with(parent: int) -> None:
    """SIGKILL this fork when the warm process ends: it ends when its grader does, even
    by SIGKILL, or when its grader gave up on it, and a phase left waiting at its gate
    would wait there for an hour (gate.GATE_WAIT)."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # it ended before prctl (then our parent is another)
        os._exit(1)


if __name__ == "__main__":
    serve()
