"""lab-0 starter: write your own threading.local, then see why asyncio needs contextvars.

Run `make lab-0` to grade this file. Read ../README.md first. Fill in the
places marked YOUR CODE HERE; each function says in one line what it must do.

Step 1-2: MyLocal. As written, every thread shares one dict: exactly the bug
of a module global (see demo.py). Make each thread see only its own
attributes, as the course notes sketch it: a big dict keyed by the thread.
Step 3: a thread's attributes must be freed when the thread ends.
Step 4: handle() keeps a request id in a threading.local, which every asyncio
task of one thread shares. Make it per task with contextvars.
"""

import asyncio
import threading


class MyLocal:
    """Attributes that each thread sees on its own, like threading.local."""

    def __init__(self) -> None:
        # object.__setattr__ skips our own __setattr__ below.
        # YOUR CODE HERE: keep one dict of attributes per thread, not one for all.
        object.__setattr__(self, "_data", {})

    def _mine(self) -> dict:
        """The calling thread's own attribute dict (created on first use)."""
        # YOUR CODE HERE: this returns the same dict to every thread (a module
        # global in disguise). Key the dicts by thread: threading.get_ident()
        # first (step 2), then fix the leak that step 3 finds.
        return self._data

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
        # YOUR CODE HERE: delete it from the calling thread's dict; a name this
        # thread never set must raise AttributeError, not KeyError.
        del self._mine()[name]


# YOUR CODE HERE (step 4): a threading.local is shared by every task of the
# event loop's thread. Replace it with a contextvars.ContextVar.
_state = threading.local()


def current_request_id():
    """The request id of the running task (None when none was set)."""
    return getattr(_state, "request_id", None)


async def handle(rid: str) -> str:
    """Serve one request: remember `rid`, let other tasks run, return current_request_id()."""
    _state.request_id = rid
    await asyncio.sleep(0.001)  # another task runs here and sets its own id
    return current_request_id()
