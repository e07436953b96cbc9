"""Is io_uring (Linux's asynchronous IO interface) usable here?

    python labs/lab-4/io_uring_check.py          # on the host
    docker run --rm -v "$PWD/labs/lab-4:/lab:ro" iolab-runtime:latest python /lab/io_uring_check.py

It calls io_uring_setup(2) directly through ctypes (Python's standard library
has no io_uring binding) and says what happened: available, disabled by the
kernel (sysctl kernel.io_uring_disabled), blocked by a seccomp profile (the
default profiles of Docker >= 25 and containerd >= 2.0 answer EPERM), or not
in this kernel. Exit 0 when available,
1 otherwise. Linux only.
"""

import ctypes
import errno
import os
import platform
import sys

SYS_IO_URING_SETUP = 425  # the same number on x86_64 and aarch64 (since Linux 5.1)


def sysctl_disabled() -> str:
    try:
        with open("/proc/sys/kernel/io_uring_disabled") as f:
            return f.read().strip()
    except OSError:
        return ""


def check() -> tuple[bool, str]:
    if sys.platform != "linux":
        return False, f"io_uring is Linux-only; this is {sys.platform}"
    if platform.machine() not in ("x86_64", "aarch64"):
        return False, f"unsure of the syscall number on {platform.machine()}"
    libc = ctypes.CDLL(None, use_errno=True)
    params = ctypes.create_string_buffer(120)  # struct io_uring_params, zeroed
    fd = libc.syscall(SYS_IO_URING_SETUP, 1, params)
    if fd >= 0:
        os.close(fd)
        return True, "available: io_uring_setup(1 entry) returned a ring fd"
    err = ctypes.get_errno()
    name = errno.errorcode.get(err, str(err))
    disabled = sysctl_disabled()
    if err == errno.EPERM:
        if disabled in ("1", "2"):
            return False, f"EPERM: disabled by the kernel (kernel.io_uring_disabled={disabled})"
        return False, ("EPERM: blocked, most likely by a seccomp profile (containers: "
                       "Docker >= 25 and containerd >= 2.0 block io_uring by default)")
    if err == errno.ENOSYS:
        return False, ("ENOSYS: not in this kernel (< 5.1, or built without it), or a "
                       "sandbox or seccomp profile that answers ENOSYS for syscalls it "
                       "does not allow")
    return False, f"{name}: {os.strerror(err)}"


if __name__ == "__main__":
    ok, why = check()
    print(f"io_uring on {platform.system()} {platform.release()} ({platform.machine()}): {why}")
    sys.exit(0 if ok else 1)
