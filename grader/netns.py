"""A network namespace with only loopback, for a sandboxed grading run.

On a course platform (grader/sandbox.py) the server under test should reach no
network. A process may get a network namespace of its own only with a user
namespace (root in Docker lacks CAP_SYS_ADMIN), and Docker's default seccomp
profile refuses that too; where it is allowed (seccomp=unconfined, or a
platform that permits user namespaces) `isolate()` moves the whole grading run
into a fresh user + network namespace with loopback up. The whole run, not the
server alone: joining another process's network namespace (setns) needs
CAP_SYS_ADMIN, so the grader's clients (the network checks, Locust) could not
reach a server alone in its namespace; sharing one, they meet on its loopback,
and nothing in it has a route anywhere else.

How: fork; the child unshares CLONE_NEWUSER | CLONE_NEWNET; the parent (still
in the old namespace, with CAP_SETUID/SETGID there) writes an identity
uid_map/gid_map, so every uid means the same inside (the sandbox's uid too)
and the child, root inside, keeps what root could do to files; the child brings
`lo` up (ioctl SIOCSIFFLAGS: no `ip` tool needed) and carries on grading; the
parent only waits for it, passes signals on and exits with its status. Any step
refused: the child ends, and the run goes on in the container's namespace.
"""

from __future__ import annotations

import ctypes
import fcntl
import os
import signal
import socket
import struct
import sys

CLONE_NEWUSER, CLONE_NEWNET = 0x10000000, 0x40000000
SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1
ISOLATED = "network: the server has a network namespace of its own, loopback only"


def unshare(flags: int) -> int:
    """0, or the errno of unshare(2) (os.unshare is Python 3.12+)."""
    libc = ctypes.CDLL(None, use_errno=True)
    return 0 if libc.unshare(flags) == 0 else ctypes.get_errno()


def loopback_up() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        ifreq = fcntl.ioctl(sock, SIOCGIFFLAGS, struct.pack("16sH22x", b"lo", 0))
        flags = struct.unpack("16sH22x", ifreq)[1]
        fcntl.ioctl(sock, SIOCSIFFLAGS, struct.pack("16sH22x", b"lo", flags | IFF_UP))


def identity_map(kind: str) -> str:
    """Every id of this namespace mapped to itself ("uid" or "gid")."""
    lines = []
    with open(f"/proc/self/{kind}_map") as fh:
        for line in fh:
            first, _, count = line.split()
            lines.append(f"{first} {first} {count}")
    return "\n".join(lines) + "\n"


def isolate() -> str:
    """Continue this process inside a new network namespace (loopback only), or stay
    where it is; returns a line saying which (and why). Call it before any thread."""
    sys.stdout.flush()
    sys.stderr.flush()
    up_r, up_w = os.pipe()  # child -> parent
    down_r, down_w = os.pipe()  # parent -> child
    pid = os.fork()
    if pid == 0:
        os.close(up_r)
        os.close(down_w)
        err = unshare(CLONE_NEWUSER | CLONE_NEWNET)
        os.write(up_w, b"ok" if err == 0 else os.strerror(err).encode())
        if err or os.read(down_r, 64) != b"mapped":
            os._exit(0)
        try:
            loopback_up()
        except OSError as exc:
            os.write(up_w, f"lo: {exc.strerror}".encode())
            os._exit(0)
        os.write(up_w, b"running")
        os.close(up_w)
        os.close(down_r)
        return ISOLATED + " (the grader's clients share it)"
    os.close(up_w)
    os.close(down_r)
    why = os.read(up_r, 200).decode(errors="replace") or "the child ended"
    if why == "ok":
        try:
            for kind in ("uid", "gid"):
                with open(f"/proc/{pid}/{kind}_map", "w") as fh:
                    fh.write(identity_map(kind))
            os.write(down_w, b"mapped")
            why = os.read(up_r, 200).decode(errors="replace") or "the child ended"
        except OSError as exc:
            why = f"{exc.filename}: {exc.strerror}"
            os.write(down_w, b"no")
    os.close(down_w)
    os.close(up_r)
    if why != "running":
        os.waitpid(pid, 0)
        return f"network: no namespace of its own for the server (unshare refused: {why})"
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda signum, _frame: os.kill(pid, signum))
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            break
        except InterruptedError:
            continue
    code = os.waitstatus_to_exitcode(status)
    os._exit(code if code >= 0 else 128 - code)
