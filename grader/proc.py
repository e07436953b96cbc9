"""Processes: start a server and wait until it listens, stop a process group,
find a free port, hold signals off during a teardown.

One copy of each for the grader, the bench and the tests. Every child is
started in a session of its own, so stopping it stops everything it started
(a forking server's children too) and a Ctrl-C at the terminal reaches only
the grader, which then tears down in order.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

try:
    import resource  # POSIX only
except ImportError:  # Windows: no rlimits
    resource = None

Address = tuple[str, int]


class NotListening(RuntimeError):
    """A server that exited or never listened; the message says which, with its log's tail."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def wait_listening(addr: Address, timeout: float,
                   alive: Callable[[], bool] | None = None) -> bool:
    """True once something accepts TCP connections at addr; False on timeout, or at
    once when `alive()` says the server has exited (no point waiting for it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if alive is not None and not alive():  # before connecting: in the stack a failed
            return False                       # name lookup of a gone server takes seconds
        try:
            socket.create_connection(addr, timeout=1.0).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def start_server(path: Path, port: int | None = None, *, env: dict | None = None,
                 cwd: Path | None = None, stdout=subprocess.DEVNULL, wait: float = 10.0,
                 preexec_fn=None, python: str = sys.executable) -> tuple[subprocess.Popen, int]:
    """`python path` with HOST=127.0.0.1 and PORT in its environment, in a session of
    its own; returns (process, port) once it listens (wait=0: at once). Raises
    NotListening (after stopping it) when it exits or does not listen in time."""
    port = port or free_port()
    env = {**os.environ, **(env or {}), "HOST": "127.0.0.1", "PORT": str(port)}
    proc = subprocess.Popen([python, str(path)], cwd=cwd or path.parent, env=env,
                            stdin=subprocess.DEVNULL, stdout=stdout, stderr=subprocess.STDOUT,
                            start_new_session=True, preexec_fn=preexec_fn)
    if wait and not wait_listening(("127.0.0.1", port), wait, lambda: proc.poll() is None):
        code = proc.poll()
        stop_group(proc)
        why = f"exited with code {code}" if code is not None else f"did not listen within {wait:g} s"
        raise NotListening(f"{path.name} {why}")
    return proc, port


def stop_group(proc: subprocess.Popen, grace: float = 3.0) -> None:
    """SIGTERM to the process group, up to `grace` s to exit, then SIGKILL the group
    (its children too, even when the leader has already exited)."""
    if proc.poll() is None:
        _signal_group(proc, signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            pass
    _signal_group(proc, signal.SIGKILL)
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        pass


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


@contextmanager
def signals_deferred():
    """Hold SIGINT/SIGTERM off while a teardown runs (main thread only); re-raise after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    old = {sig: signal.signal(sig, lambda s, _f: caught.append(s))
           for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
        if caught:  # now act on the first one as its handler would have
            handler = old[caught[0]]
            if callable(handler):
                handler(caught[0], None)
            raise KeyboardInterrupt


def raise_fd_limit() -> None:
    """Soft RLIMIT_NOFILE up to the hard one: the grader holds > 1024 sockets
    (robust.fd_limit), and local-mode servers start from the raised value."""
    if resource is None:
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = 65536 if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
