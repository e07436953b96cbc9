"""What the operating system sees of a server, read from /proc from outside it.

A submission is judged by what it does on the network and by what the kernel
can see of it (Contract 1): its processes, threads, file descriptors, the
system call each thread sleeps in, and the CPU time it burns. Nothing the
server prints can change these figures. Pure stdlib, Linux /proc only.

Rights: /proc/PID/stat and /proc/PID/task are readable by anyone; the fd list,
`syscall` and `wchan` need ptrace rights over the server. Local mode has them
(the server is our own child, same uid). In docker mode the network stage runs
in the stack's `grader` container, which shares the server's PID namespace
(`pid: "service:server"` in compose.yaml) and runs as root with CAP_SYS_PTRACE:
from there the server's processes are the ones of uid 10001, and everything
below is readable. On a course platform (grader/sandbox.py) the grader is root
without CAP_SYS_PTRACE and the server another uid: snapshot() then borrows the
server's uid as the reading thread's file-system uid (borrowed_rights). Without
rights the figures that need them are None.
"""

from __future__ import annotations

import ctypes
import os
import platform
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field

SERVER_UID = 10001  # the server container's user (compose.yaml)
TICKS = os.sysconf("SC_CLK_TCK")
EPOLLET = 1 << 31

# syscall numbers of the calls a server sleeps in, per architecture
_X86_64 = {0: "read", 1: "write", 7: "poll", 23: "select", 35: "nanosleep", 43: "accept",
           44: "sendto", 45: "recvfrom", 47: "recvmsg", 61: "wait4", 202: "futex",
           230: "clock_nanosleep", 232: "epoll_wait", 270: "pselect6", 271: "ppoll",
           281: "epoll_pwait", 288: "accept4", 441: "epoll_pwait2"}
_AARCH64 = {63: "read", 64: "write", 72: "pselect6", 73: "ppoll", 22: "epoll_pwait",
            98: "futex", 101: "nanosleep", 115: "clock_nanosleep", 202: "accept",
            206: "sendto", 207: "recvfrom", 212: "recvmsg", 242: "accept4", 260: "wait4",
            441: "epoll_pwait2"}
SYSCALLS = _AARCH64 if platform.machine() in ("aarch64", "arm64") else _X86_64

# kernel functions shown in /proc/.../wchan -> the syscall they stand for
WCHAN = {"do_epoll_wait": "epoll_wait", "ep_poll": "epoll_wait", "do_select": "select",
         "core_sys_select": "select", "do_sys_poll": "poll", "do_poll": "poll",
         "inet_csk_accept": "accept", "sk_wait_data": "recvfrom", "wait_woken": "recvfrom",
         "do_wait": "wait4", "hrtimer_nanosleep": "clock_nanosleep",
         "do_nanosleep": "clock_nanosleep", "sk_stream_wait_memory": "sendto"}

# what each IO model sleeps in
MULTIPLEXERS = {"select": ("select", "pselect6"), "poll": ("poll", "ppoll"),
                "epoll": ("epoll_wait", "epoll_pwait", "epoll_pwait2")}


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return fh.read()
    except OSError:  # gone, or no rights
        return None


def stat(pid: int, tid: int | None = None) -> list[str] | None:
    """/proc/PID/stat fields after the command name: [state, ppid, ...] (field 3 on)."""
    text = _read(f"/proc/{pid}/task/{tid}/stat" if tid else f"/proc/{pid}/stat")
    return text[text.rindex(")") + 2:].split() if text else None


def cmdline(pid: int) -> list[str]:
    return [a for a in (_read(f"/proc/{pid}/cmdline") or "").split("\0") if a]


def processes() -> dict[int, int]:
    """Every visible process: {pid: ppid}."""
    found = {}
    for name in os.listdir("/proc"):
        if name.isdigit() and (fields := stat(int(name))):
            found[int(name)] = int(fields[1])
    return found


def find_server(uid: int = SERVER_UID) -> int | None:
    """The root process of the server in a shared PID namespace (docker mode):
    the oldest process of `uid` running a file under /submission/, skipping
    the container's init (docker-init/tini, whose command line names it too)."""
    best = None
    for pid in processes():
        try:
            if os.stat(f"/proc/{pid}").st_uid != uid:
                continue
        except OSError:
            continue
        argv = cmdline(pid)
        if not argv or os.path.basename(argv[0]) in ("docker-init", "tini", "dumb-init"):
            continue
        if any(a.startswith("/submission/") for a in argv):
            started = int((stat(pid) or [0] * 20)[19])  # field 22: start time
            if best is None or started < best[0]:
                best = (started, pid)
    return best[1] if best else None


def server_alive(uid: int = SERVER_UID) -> bool | None:
    """Docker mode: whether any process of the server's user is left in the PID
    namespace the grader shares with it (the server's init counts: it lives as long
    as the server). None when the stack's namespace holder (compose.yaml's `pidns`,
    `sleep infinity`) is not visible: no shared namespace, nothing can be told."""
    shared = False
    for pid in processes():
        try:
            owner = os.stat(f"/proc/{pid}").st_uid
        except OSError:
            continue
        if owner == uid:
            return True
        shared = shared or cmdline(pid) == ["sleep", "infinity"]
    return False if shared else None


def tree(root: int) -> list[int]:
    """root and all its descendants."""
    parents = processes()
    pids, frontier = [root], [root]
    while frontier:
        frontier = [p for p, pp in parents.items() if pp in frontier and p not in pids]
        pids += frontier
    return [p for p in pids if p in parents]


def tasks(pid: int) -> list[int]:
    try:
        return [int(t) for t in os.listdir(f"/proc/{pid}/task")]
    except OSError:
        return []


def blocked_in(pid: int, tid: int) -> str:
    """The syscall thread `tid` sleeps in, 'running', or '?' when unknown."""
    fields = stat(pid, tid)
    if fields and fields[0] == "R":
        return "running"
    text = (_read(f"/proc/{pid}/task/{tid}/syscall") or "").split()
    if text and text[0] == "running":
        return "running"
    if text and text[0].lstrip("-").isdigit() and int(text[0]) >= 0:
        return SYSCALLS.get(int(text[0]), f"syscall {text[0]}")
    wchan = (_read(f"/proc/{pid}/task/{tid}/wchan") or "0").strip()
    if wchan.startswith("futex"):  # futex_wait_queue_me, futex_do_wait, ... by kernel version
        return "futex"
    if wchan.startswith("poll_schedule_timeout"):  # where both select() and poll() sleep
        return "select/poll"
    return WCHAN.get(wchan, wchan if wchan != "0" else "?")


def fds(pid: int) -> dict[int, str] | None:
    """{fd: what it is} ('socket:[…]', 'anon_inode:[eventpoll]', …), None without rights."""
    try:
        names = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return None
    found = {}
    for name in names:
        try:
            found[int(name)] = os.readlink(f"/proc/{pid}/fd/{name}")
        except OSError:
            pass  # closed meanwhile
    return found


def edge_triggered(pid: int, fd: int) -> bool:
    """True when any fd watched by epoll instance `fd` has EPOLLET."""
    text = _read(f"/proc/{pid}/fdinfo/{fd}") or ""
    masks = [int(line.split("events:")[1].split()[0], 16)
             for line in text.splitlines() if line.startswith("tfd:") and "events:" in line]
    return any(m & EPOLLET for m in masks)


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of these processes (and their reaped children)."""
    total = 0
    for pid in pids:
        if fields := stat(pid):
            total += sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
    return total / TICKS


def busy_seconds(pids: list[int]) -> tuple[float, float] | None:
    """(seconds on a CPU, seconds runnable but waiting for one) of every thread of
    these processes, from /proc/PID/task/TID/schedstat (nanoseconds); None where the
    kernel does not keep them. Their sum is the time the threads wanted a CPU: a
    busy loop wants it all the time however little it gets on a crowded machine,
    a sleeping server not at all, so the sum tells them apart where CPU time alone
    (a share of the machine) may not."""
    ran = waited = 0
    found = False
    for pid in pids:
        for tid in tasks(pid):
            fields = (_read(f"/proc/{pid}/task/{tid}/schedstat") or "").split()
            if len(fields) >= 2:
                ran, waited, found = ran + int(fields[0]), waited + int(fields[1]), True
    return (ran / 1e9, waited / 1e9) if found else None


@dataclass
class Snapshot:
    root: int
    processes: int
    threads: int
    blocked: Counter = field(default_factory=Counter)  # syscall -> threads sleeping in it
    fds: int | None = None  # None: no rights to read /proc/PID/fd
    sockets: int | None = None
    eventpoll: int | None = None  # epoll instances open
    edge_triggered: bool = False
    max_fd: int | None = None
    cpu: float = 0.0

    def blocked_in_any(self, names) -> bool:
        return any(self.blocked[n] for n in names)


CAP_SYS_PTRACE = 19


def _has_cap(bit: int) -> bool:
    status = _read("/proc/self/status") or ""
    line = next((x for x in status.splitlines() if x.startswith("CapEff:")), "CapEff: 0")
    return bool(int(line.split()[1], 16) >> bit & 1)


@contextmanager
def borrowed_rights(pid: int):
    """Read `pid`'s fd list, syscall and wchan as root without CAP_SYS_PTRACE: the
    kernel grants them to a reader whose file-system uid and gid are the process's
    own (ptrace's FSCREDS check), so this thread takes them for the reads. setfsuid
    is per thread (glibc does not spread it to the others); a thread of root is
    still out of reach of the server's uid (it checks the target's real uid)."""
    try:
        owner = os.stat(f"/proc/{pid}")
    except OSError:
        owner = None
    if owner is None or owner.st_uid == 0 or os.geteuid() != 0 or _has_cap(CAP_SYS_PTRACE):
        yield
        return
    libc = ctypes.CDLL(None, use_errno=True)
    libc.setfsgid(owner.st_gid)
    libc.setfsuid(owner.st_uid)
    try:
        yield
    finally:
        libc.setfsuid(0)
        libc.setfsgid(0)


def snapshot(root: int) -> Snapshot:
    with borrowed_rights(root):
        return _snapshot(root)


def _snapshot(root: int) -> Snapshot:
    pids = tree(root)
    snap = Snapshot(root, len(pids), 0, cpu=cpu_seconds(pids))
    seen: dict[tuple[int, int], str] | None = {}
    for pid in pids:
        for tid in tasks(pid):
            snap.threads += 1
            snap.blocked[blocked_in(pid, tid)] += 1
        table = fds(pid)
        if table is None:
            seen = None
        elif seen is not None:
            seen.update({(pid, fd): target for fd, target in table.items()})
            snap.edge_triggered |= any(edge_triggered(pid, fd) for fd, target in table.items()
                                       if target == "anon_inode:[eventpoll]")
    if seen is not None:
        snap.fds = len(seen)
        snap.sockets = sum(t.startswith("socket:") for t in seen.values())
        snap.eventpoll = sum(t == "anon_inode:[eventpoll]" for t in seen.values())
        snap.max_fd = max((fd for _, fd in seen), default=None)
    return snap


def alive(pid: int) -> bool:
    return stat(pid) is not None and stat(pid)[0] not in ("Z", "X")


def cpu_rate(root: int, seconds: float) -> float:
    """CPU seconds per second the server's processes use over `seconds`."""
    start_cpu, start = cpu_seconds(tree(root)), time.monotonic()
    time.sleep(seconds)
    return (cpu_seconds(tree(root)) - start_cpu) / (time.monotonic() - start)


def wanting(root: int) -> tuple[float, float]:
    """(seconds on a CPU, seconds on a CPU or waiting for one) of the server's tree so
    far. Without schedstat both are its CPU time."""
    pids = tree(root)
    busy = busy_seconds(pids)
    if busy is None:
        cpu = cpu_seconds(pids)
        return cpu, cpu
    return busy[0], busy[0] + busy[1]


def busy_rate(root: int, seconds: float) -> tuple[float, float]:
    """(CPU s/s, wanting s/s) over `seconds`: a busy loop wants a CPU all the time
    (1.00 a thread) however small a share a crowded machine gives it (its CPU s/s)."""
    (cpu0, want0), start = wanting(root), time.monotonic()
    time.sleep(seconds)
    (cpu1, want1), took = wanting(root), time.monotonic() - start
    return (cpu1 - cpu0) / took, (want1 - want0) / took


def memory_kib(pids: list[int]) -> int | None:
    """Memory these processes use, in KiB: the sum of their proportional set sizes
    (Pss: a page shared by n processes counts 1/n in each, so forked children that
    share the parent's pages copy-on-write are not counted n times), or of VmRSS
    where smaps_rollup cannot be read; None when neither can."""
    total, found = 0, False
    for pid in pids:
        text = _read(f"/proc/{pid}/smaps_rollup") or ""
        field_ = "Pss:" if "Pss:" in text else "VmRSS:"
        text = text if field_ == "Pss:" else (_read(f"/proc/{pid}/status") or "")
        for line in text.splitlines():
            if line.startswith(field_):
                total, found = total + int(line.split()[1]), True
                break
    return total if found else None


def socket_queues(pid: int, server_port: int, client_port: int) -> tuple[int, int] | None:
    """(tx_queue, rx_queue) of the server's end of one connection, from /proc/PID/net/tcp
    (the server's network namespace): bytes in its send queue, and bytes received that
    its program has not read yet. None when that socket is not visible (closed, no pid,
    a namespace we cannot read). Tens of ms on a host with thousands of sockets."""
    for table in ("tcp", "tcp6"):
        text = _read(f"/proc/{pid}/net/{table}") or ""
        for row in text.splitlines()[1:]:
            cols = row.split()
            if len(cols) < 5 or cols[3] not in ("01", "08"):  # ESTABLISHED, CLOSE_WAIT
                continue
            local, remote = cols[1].rsplit(":", 1)[1], cols[2].rsplit(":", 1)[1]
            if int(local, 16) == server_port and int(remote, 16) == client_port:
                tx, rx = cols[4].split(":")
                return int(tx, 16), int(rx, 16)
    return None


def unread_bytes(pid: int, server_port: int, client_port: int) -> int | None:
    """Bytes the server's end of one connection has received and its program not yet
    read (socket_queues' rx_queue); None when not visible."""
    queues = socket_queues(pid, server_port, client_port)
    return queues[1] if queues else None
