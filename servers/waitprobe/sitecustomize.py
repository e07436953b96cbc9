"""The wait-call probe of `python -m grader measure`: times every select(),
poll() and epoll.poll() call the server makes, from inside its process.

The grader puts this folder on the server's PYTHONPATH (Python imports
`sitecustomize` at start-up, before the server's own code) and names a file
in IOLAB_WAITPROBE, in the grader's results folder, never in the submission.
Without IOLAB_WAITPROBE, importing this module changes nothing (the grader
imports it for the file format).

What one record says about one wait call:
- when it started (CLOCK_MONOTONIC, ns: the load generator's clock too, so the
  grader keeps only the calls inside its measured window);
- the CPU time the calling thread spent in it (CLOCK_THREAD_CPUTIME_ID: the
  scheduler's own per-thread accounting, in ns). A wait call mostly sleeps
  until a client sends; the time asleep is no CPU time, so this is the work
  the call costs (for select/poll: walking every watched fd, hooking the
  thread onto each one's wait queue, unhooking it again), not how long the
  client took. It includes what Python does around the system call (select()
  turns your three lists into fd_sets: a fileno() per entry), which is part of
  what one call costs your server;
- how many fds it watched and how many it returned ready, and its wall time
  (asleep included: the grader keeps only calls that ended in its window).

The records go into a memory-mapped file: plain memory writes (no system
call, no flush), readable by the grader while the server runs and after it is
killed. The cost of reading the CPU clock itself (about a microsecond on a
virtual machine) is measured once at start-up and stored in the header, for
the grader to subtract.
"""

import os
import select
import struct
import time

MAGIC = b"IOLABWP1"
HEADER = struct.Struct("<8sqqq")    # magic, records written, capacity, clock overhead (ns)
RECORD = struct.Struct("<qqiiii")   # start ns, thread CPU ns, watched fds, ready, kind, wall µs
KINDS = ("select", "poll", "epoll")
CAPACITY = 1 << 20                  # records; the file is sparse until written
_COUNT_AT = 8                       # offset of "records written" in the header


def _fileno(obj):
    return obj if isinstance(obj, int) else obj.fileno()


def _size(items):
    return len(items) if hasattr(items, "__len__") else None


class _Recorder:
    def __init__(self, path):
        import mmap

        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.ftruncate(fd, HEADER.size + CAPACITY * RECORD.size)
            self.map = mmap.mmap(fd, HEADER.size + CAPACITY * RECORD.size)
        finally:
            os.close(fd)  # the mapping stays: the server sees no extra fd
        self.count = 0
        HEADER.pack_into(self.map, 0, MAGIC, 0, CAPACITY, _clock_overhead())

    def add(self, start, cpu, watched, ready, kind, wall_us):
        if self.count < CAPACITY:
            RECORD.pack_into(self.map, HEADER.size + self.count * RECORD.size,
                             start, cpu, watched, ready, kind, min(wall_us, 2 ** 31 - 1))
            self.count += 1
            struct.pack_into("<q", self.map, _COUNT_AT, self.count)


def _clock_overhead():
    """The least CPU time two back-to-back clock reads show: what each timing adds."""
    clock = time.thread_time_ns
    return min(-clock() + clock() for _ in range(2000))


def _timed(recorder, kind, call, watched, ready_of):
    """Run call(); record its CPU time. An exception (select() refusing fd 1024) passes
    through unrecorded: the server sees exactly what it would have seen."""
    clock = time.thread_time_ns
    start = time.monotonic_ns()
    cpu = clock()
    result = call()
    cpu = clock() - cpu
    recorder.add(start, cpu, watched, ready_of(result), kind,
                 (time.monotonic_ns() - start) // 1000)
    return result


class _Watched:
    """The fds a poll/epoll object watches (the kernel's or Python's interest list)."""

    def _init_watch(self):
        self._watched = set()

    def register(self, fd, *args):
        self._obj.register(fd, *args)
        self._watched.add(_fileno(fd))

    def modify(self, fd, *args):
        self._obj.modify(fd, *args)

    def unregister(self, fd):
        self._obj.unregister(fd)
        self._watched.discard(_fileno(fd))

    def __getattr__(self, name):  # close, closed, fileno, ...
        return getattr(self._obj, name)

    def __enter__(self):
        self._obj.__enter__()
        return self

    def __exit__(self, *exc):
        return self._obj.__exit__(*exc)


def install(path):
    recorder = _Recorder(path)
    real_select, real_poll, real_epoll = select.select, getattr(select, "poll", None), \
        getattr(select, "epoll", None)

    def timed_select(rlist, wlist, xlist, timeout=None):
        lists = [x if _size(x) is not None else list(x) for x in (rlist, wlist, xlist)]
        watched = sum(len(x) for x in lists)
        return _timed(recorder, 0, lambda: real_select(*lists, timeout), watched,
                      lambda r: len(r[0]) + len(r[1]) + len(r[2]))

    timed_select.__doc__ = real_select.__doc__
    select.select = timed_select

    if real_poll is not None:
        class Poll(_Watched):
            def __init__(self):
                self._obj = real_poll()
                self._init_watch()

            def poll(self, *args):
                return _timed(recorder, 1, lambda: self._obj.poll(*args), len(self._watched),
                              len)

        select.poll = Poll

    if real_epoll is not None:
        class Epoll(_Watched):
            fromfd = staticmethod(real_epoll.fromfd)

            def __init__(self, *args, **kwargs):
                self._obj = real_epoll(*args, **kwargs)
                self._init_watch()

            def poll(self, *args, **kwargs):
                return _timed(recorder, 2, lambda: self._obj.poll(*args, **kwargs),
                              len(self._watched), len)

        select.epoll = Epoll


if os.environ.get("IOLAB_WAITPROBE"):
    install(os.environ["IOLAB_WAITPROBE"])
