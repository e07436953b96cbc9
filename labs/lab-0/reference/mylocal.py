"""lab-0 reference: a thread-local of our own, and per-task state under asyncio.

Not for students: the starter is starter/mylocal.py.
"""

import asyncio
import contextvars
import threading
import weakref


class MyLocal:
    """Attributes that each thread sees on its own, like threading.local."""

    def __init__(self) -> None:
        # thread object -> that thread's attributes; an entry goes when its thread is freed
        object.__setattr__(self, "_data", weakref.WeakKeyDictionary())
        object.__setattr__(self, "_lock", threading.Lock())

    def _mine(self) -> dict:
        """The calling thread's own attribute dict (created on first use)."""
        me = threading.current_thread()
        with self._lock:
            return self._data.setdefault(me, {})

    def __getattr__(self, name):
        """The calling thread's value of `name`; AttributeError if it set none."""
        try:
            return self._mine()[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name, value) -> None:
        """Set `name` for the calling thread only."""
        self._mine()[name] = value

    def __delattr__(self, name) -> None:
        """Delete the calling thread's `name`; AttributeError if it set none."""
        try:
            del self._mine()[name]
        except KeyError:
            raise AttributeError(name) from None


request_id: contextvars.ContextVar = contextvars.ContextVar("request_id", default=None)


def current_request_id():
    """The request id of the running task (None when none was set)."""
    return request_id.get()


async def handle(rid: str) -> str:
    """Serve one request: remember `rid`, let other tasks run, return current_request_id()."""
    request_id.set(rid)
    await asyncio.sleep(0.001)
    return current_request_id()
