"""Local mode's sandbox on a course platform: the server under test as an
unprivileged, limited user (Gradescope, PrairieLearn; ARCHITECTURE.md Contract 7).

A platform runs the grader as root in a container with no Docker inside. There
IOLAB_SANDBOX=1 (what the platform scripts and `--sandbox` set) makes
LocalTarget start each server
  - as a uid of its own: random, unused here, never 1000, no passwd entry. It
    cannot signal or trace the grader, read what only root may (the platform
    scripts `chmod 700` the grader's folders) or write results. A random uid,
    because RLIMIT_NPROC counts a uid's processes across every container on the
    kernel: a fixed one would let other students' servers starve this one;
  - from a private copy of its folder (its cwd and HOME; links copied as links,
    so a link to the grader's files stays unreadable), with a minimal environment;
  - with rlimits: memory (RLIMIT_DATA, as in local mode), processes (RLIMIT_NPROC,
    which binds now that the uid is not root), CPU time, file size, open files,
    no core files;
  - first in line for the OOM killer (oom_score_adj 1000): the container's memory
    limit takes the server, not the grader.
The network checks read the server's /proc entries as root without
CAP_SYS_PTRACE (Docker's default): grader/evidence.py borrows the server's uid
as the reading thread's file-system uid for that (borrowed_rights). When the
target stops, every process of the uid is killed.
The network namespace the server (and the grader's clients) run in: grader/netns.py.
"""

from __future__ import annotations

import math
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from grader.errors import StackError, UsageError
from grader.paths import REPO

try:
    import resource  # POSIX only
except ImportError:  # Windows: no sandbox
    resource = None

ENV = "IOLAB_SANDBOX"
UID_FLOOR = 100_000  # far above the uids a distribution hands out (1000 and up)
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", ".git", ".venv")


def requested() -> bool:
    return os.environ.get(ENV) == "1"


def active() -> bool:
    """The sandbox applies: asked for, and we are root (so we can switch uid)."""
    return requested() and hasattr(os, "getuid") and os.getuid() == 0


def require() -> None:
    """`--sandbox` or IOLAB_SANDBOX=1 without root is bad input."""
    if requested() and (resource is None or os.getuid() != 0):
        raise UsageError("the sandbox runs the server as another user, which needs root "
                         "(a course platform's container): run as root, or unset "
                         f"{ENV} / leave out --sandbox")


def enter() -> str:
    """Turn the sandbox on for this run (and its children): checks root, then moves
    the run into a network namespace of its own where allowed (grader/netns.py).
    Call it before any thread starts; returns a line for the log."""
    from grader import netns

    os.environ[ENV] = "1"
    require()
    return netns.isolate()


# --- the uid -------------------------------------------------------------------------

def mapped_uids() -> list[tuple[int, int]]:
    """[first, last] ranges of uids that exist here (this user namespace's uid_map)."""
    try:
        lines = Path("/proc/self/uid_map").read_text().split("\n")
    except OSError:
        return [(0, 2 ** 32 - 2)]
    ranges = []
    for line in lines:
        if len(fields := line.split()) == 3:
            first, count = int(fields[0]), int(fields[2])
            ranges.append((first, first + count - 1))
    return ranges


def uids_in_use() -> set[int]:
    """Owners of running processes, and every uid/gid /etc/passwd and /etc/group name."""
    taken = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                taken.add(os.stat(f"/proc/{entry}").st_uid)
            except OSError:
                pass
    for table in ("/etc/passwd", "/etc/group"):
        try:
            for line in Path(table).read_text().splitlines():
                if len(fields := line.split(":")) > 2 and fields[2].isdigit():
                    taken.add(int(fields[2]))
        except OSError:
            pass
    return taken


def pick_uid() -> int:
    """A uid (used as the gid too) nobody here uses, at or above UID_FLOOR when the
    user namespace maps that high."""
    taken = uids_in_use()
    spans = [(max(lo, UID_FLOOR), min(hi, 2 ** 31 - 2)) for lo, hi in mapped_uids()]
    spans = [s for s in spans if s[0] < s[1]] or [
        (max(lo, 2000), hi) for lo, hi in mapped_uids() if hi > max(lo, 2000)]
    if not spans:
        raise StackError("no free uid for the sandbox: this user namespace maps too few")
    rng = random.SystemRandom()
    while True:
        lo, hi = rng.choice(spans)
        uid = rng.randint(lo, hi)
        if uid not in taken and uid != 65534:
            return uid


def others_may_run(path: str) -> bool:
    """Whether a user with no rights of its own may execute `path` (links followed):
    every folder on the way searchable, the file executable, by "others"."""
    real = Path(os.path.realpath(path))
    try:
        if not real.is_file() or not real.stat().st_mode & 0o001:
            return False
        return all(folder.stat().st_mode & 0o001 for folder in real.parents)
    except OSError:
        return False


def drop_to(uid: int) -> None:
    """Become `uid` (and gid), with no supplementary groups; irreversible."""
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)


def live_pids(uid: int) -> list[int]:
    """Processes of `uid` that are not zombies."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.stat(f"/proc/{entry}").st_uid != uid:
                continue
            text = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        if text[text.rindex(")") + 2:].split()[0] not in ("Z", "X"):
            found.append(int(entry))
    return found


def kill_all(uid: int, rounds: int = 20) -> list[int]:
    """SIGKILL every process of `uid`, a fork bomb's escapees too: kill(-1) as that
    uid reaches all of them at once. Returns what still lives (should be [])."""
    def as_uid() -> None:
        drop_to(uid)
        try:
            os.kill(-1, signal.SIGKILL)  # every process this uid may signal, not itself
        except OSError:
            pass

    for _ in range(rounds):
        if not live_pids(uid):
            return []
        subprocess.run(["true"], preexec_fn=as_uid, env={"PATH": "/usr/bin:/bin"},
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, check=False)
        time.sleep(0.05)  # SIGKILLed processes take a moment to become zombies
    return live_pids(uid)


# --- memory: what the container's cgroup says ----------------------------------------

CGROUP_FILES = (("/sys/fs/cgroup/memory.events", "/sys/fs/cgroup/memory.max"),  # v2
                ("/sys/fs/cgroup/memory/memory.oom_control",  # v1
                 "/sys/fs/cgroup/memory/memory.limit_in_bytes"))


def oom_kills() -> tuple[int, int | None] | None:
    """(OOM kills so far, memory limit in bytes or None) of this container's cgroup."""
    for events, limit in CGROUP_FILES:
        try:
            lines = Path(events).read_text().splitlines()
        except OSError:
            continue
        kills = next((int(x.split()[1]) for x in lines if x.startswith("oom_kill ")), 0)
        try:
            value = Path(limit).read_text().strip()
            cap = int(value) if value.isdigit() and int(value) < 2 ** 60 else None
        except OSError:
            cap = None
        return kills, cap
    return None


# --- one server's sandbox ------------------------------------------------------------

class Sandbox:
    """One server's uid, private folder and limits. close() undoes it all."""

    def __init__(self, folder: Path, limits: dict):
        self.limits = limits
        self.uid = pick_uid()
        self.root = Path(tempfile.mkdtemp(prefix="iolab-sandbox-"))
        os.chmod(self.root, 0o711)  # the uid may pass through, not list it
        self.work = self.root / "work"
        shutil.copytree(folder, self.work, symlinks=True, ignore=IGNORE)
        for path in [self.work, *self.work.rglob("*")]:
            os.lchown(path, self.uid, self.uid)
        os.chmod(self.work, 0o700)
        # the OS profile (servers/osprofile + platforms.py): readable, not writable
        self.profile = self.root / "profile"
        shutil.copytree(REPO / "servers" / "osprofile", self.profile / "osprofile",
                        ignore=IGNORE)
        shutil.copy2(REPO / "servers" / "platforms.py", self.profile / "platforms.py")
        for path in [self.profile, *self.profile.rglob("*")]:
            os.chmod(path, 0o755 if path.is_dir() else 0o644)
        self.oom_before = oom_kills()

    def env(self, port: int, os_profile: str) -> dict[str, str]:
        """All the server sees of the environment: nothing of the grader's."""
        return {"HOST": "127.0.0.1", "PORT": str(port), "IOLAB_OS": os_profile,
                "PYTHONPATH": str(self.profile / "osprofile"), "HOME": str(self.work),
                "TMPDIR": str(self.work), "PATH": "/usr/local/bin:/usr/bin:/bin",
                "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1"}

    @staticmethod
    def python() -> str:
        """The interpreter for the server: ours, or else the system's, whichever the
        uid may run (a venv or pyenv under /root is out of its reach; a server needs
        the standard library only)."""
        for candidate in (sys.executable, "/usr/bin/python3", "/usr/local/bin/python3"):
            if others_may_run(candidate):
                return os.path.realpath(candidate)
        raise StackError(f"no Python the sandbox's uid may run: {sys.executable} is out "
                         "of its reach (install python3 under /usr)")

    def preexec(self, rlimits):
        """The server's preexec_fn: local mode's rlimits, then ours, then the uid."""
        cpu = max(1, math.ceil(float(self.limits["timeout"]) * float(self.limits["cpus"])))
        nofile = int(self.limits["nofile"])
        ours = [(resource.RLIMIT_NPROC, int(self.limits["pids"]), int(self.limits["pids"])),
                (resource.RLIMIT_NOFILE, nofile, nofile),  # no raising the soft limit
                (resource.RLIMIT_CPU, cpu, cpu + 5),  # SIGXCPU, then SIGKILL 5 s later
                (resource.RLIMIT_CORE, 0, 0)]

        def apply() -> None:
            with open("/proc/self/oom_score_adj", "w") as fh:
                fh.write("1000")
            if rlimits is not None:
                rlimits()
            for kind, soft, hard in ours:
                resource.setrlimit(kind, (soft, hard))
            drop_to(self.uid)

        return apply

    # --- how it ended, and the teardown ---------------------------------------------------

    def oom_reason(self, returncode: int | None) -> str:
        """Why a SIGKILLed server died, when the container's OOM killer did it."""
        after = oom_kills()
        if returncode != -signal.SIGKILL or not after or not self.oom_before:
            return ""
        if after[0] <= self.oom_before[0]:
            return ""
        cap = f", limit {after[1] // 1024 ** 2} MiB" if after[1] else ""
        return f"your server was killed: out of memory (the container's memory{cap})"

    def close(self) -> None:
        """Every process of the uid killed, the folder removed."""
        kill_all(self.uid)
        shutil.rmtree(self.root, ignore_errors=True)
