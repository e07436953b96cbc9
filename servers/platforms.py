"""Which IO model runs on which operating system: the one table (Contract 3).

The grader, the labs and the docs all read MODELS; `emulate(profile)` makes a
Linux Python look like another platform's by hiding what that platform's
Python lacks (select.poll under windows, select.epoll under macos, ...).
Emulation hides what an OS lacks; it cannot add what Linux lacks (kqueue,
IOCP). So under macos selectors.DefaultSelector and asyncio use poll, not
kqueue as on a real Mac; under windows they use select, not the IOCP proactor
loop (MODELS below says what the real platforms do).

The course notes say epoll is available on macOS: it is not. epoll is
Linux-only; macOS (and the BSDs) have kqueue instead.
"""

from __future__ import annotations

OSES = ("linux", "macos", "windows")

# model -> {os: how it is available there, or None when it is not}
MODELS: dict[str, dict[str, str | None]] = {
    "iterative": {"linux": "yes", "macos": "yes", "windows": "yes"},
    "thread": {"linux": "yes", "macos": "yes", "windows": "yes"},
    "threadpool": {"linux": "yes", "macos": "yes", "windows": "yes"},
    "fork": {"linux": "yes", "macos": "yes", "windows": None},
    "nonblocking": {"linux": "yes", "macos": "yes", "windows": "yes"},
    "select": {"linux": "fd < 1024", "macos": "fd < 1024", "windows": "sockets only, 512 at most"},
    "poll": {"linux": "yes", "macos": "yes", "windows": None},
    "epoll": {"linux": "yes", "macos": None, "windows": None},
    "epoll_et": {"linux": "yes", "macos": None, "windows": None},
    "kqueue": {"linux": None, "macos": "yes", "windows": None},
    "selectors": {"linux": "epoll", "macos": "kqueue", "windows": "select"},
    "socketserver": {"linux": "yes", "macos": "yes", "windows": "yes"},
    "asyncio": {"linux": "selector loop (epoll)", "macos": "selector loop (kqueue)",
                "windows": "proactor loop (IOCP)"},
    # callbacks (the notes' 回调): asyncio.Protocol on the same event loop, no coroutines
    "asyncio_protocol": {"linux": "selector loop (epoll)", "macos": "selector loop (kqueue)",
                         "windows": "proactor loop (IOCP)"},
    # not a server: lab-0's module exercise (threading.local, contextvars) runs anywhere
    "threadlocal": {"linux": "yes", "macos": "yes", "windows": "yes"},
}

# What each emulated profile removes from a Linux Python: (module, attribute).
HIDDEN: dict[str, tuple[tuple[str, str], ...]] = {
    "linux": (),
    "macos": (("select", "epoll"), ("select", "EPOLLIN"), ("select", "EPOLLOUT")),
    "windows": (
        ("select", "poll"), ("select", "epoll"), ("select", "EPOLLIN"), ("select", "EPOLLOUT"),
        ("os", "fork"), ("os", "forkpty"),
    ),
}
WINDOWS_SELECT_LIMIT = 512  # Windows' FD_SETSIZE as CPython builds it
WINDOWS_SELECT_ERROR = "too many file descriptors in select()"  # ValueError, as on Windows

# What to use instead of what a profile hides: the grader says it when a server
# crashes on one of them ("select.epoll does not exist on windows: use ...").
INSTEAD: dict[tuple[str, str], str] = {
    ("select", "epoll"): "selectors.DefaultSelector (epoll is Linux-only)",
    ("select", "EPOLLIN"): "selectors.DefaultSelector and selectors.EVENT_READ",
    ("select", "EPOLLOUT"): "selectors.DefaultSelector and selectors.EVENT_WRITE",
    ("select", "poll"): "selectors.DefaultSelector, or select.select",
    ("os", "fork"): "a thread per connection (threading), or multiprocessing",
    ("os", "forkpty"): "subprocess",
    ("select", "select"): f"select() on Windows takes at most {WINDOWS_SELECT_LIMIT} sockets: "
                          "close new clients past that many instead of watching them",
}


def available(model: str, os_name: str) -> bool:
    return MODELS.get(model, {}).get(os_name) is not None


def where(model: str) -> list[str]:
    """The operating systems on which `model` runs."""
    return [os_name for os_name in OSES if available(model, os_name)]


def unavailable_reason(model: str, os_name: str) -> str:
    """Why `model` cannot run on `os_name`, and where it can."""
    places = " and ".join(where(model)) or "no supported OS"
    facility = {"epoll": "epoll", "epoll_et": "epoll", "kqueue": "kqueue",
                "poll": "select.poll", "fork": "os.fork"}.get(model, model)
    return f"{facility} is not available on {os_name}; this exercise runs on {places}"


def emulate(profile: str) -> None:
    """Hide what `profile`'s Python lacks from this (Linux) interpreter."""
    import importlib

    if profile not in HIDDEN:
        raise ValueError(f"unknown OS profile {profile!r}; choose from {', '.join(OSES)}")
    for module_name, attribute in HIDDEN[profile]:
        module = importlib.import_module(module_name)
        if hasattr(module, attribute):
            delattr(module, attribute)
    if profile == "windows":
        _limit_select(WINDOWS_SELECT_LIMIT)


def _limit_select(limit: int) -> None:
    """select.select on Windows takes at most FD_SETSIZE (512) sockets."""
    import select

    class LimitedSelect:
        """A callable object, not a function: selectors.SelectSelector stores
        select.select as a class attribute, and a function would become a method."""

        def __init__(self, real):
            self.real = real

        def __call__(self, rlist, wlist, xlist, *timeout):
            if max(len(rlist), len(wlist), len(xlist)) > limit:
                raise ValueError(f"{WINDOWS_SELECT_ERROR} (Windows limit {limit})")
            return self.real(rlist, wlist, xlist, *timeout)

    select.select = LimitedSelect(select.select)
