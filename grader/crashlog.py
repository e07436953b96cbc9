"""What a crashed server's log says: the exception's last line, where it was
raised, and, when the OS profile hid what the server reached for, what to use.

A student reads "AttributeError: module 'select' has no attribute 'epoll'
(server.py line 12, in main); select.epoll does not exist on windows: use
selectors.DefaultSelector" instead of "exited with code 1: see its log".
The log may come from `compose logs` (each line prefixed "server-1  | ") or
straight from the process; both are read the same way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from servers.platforms import HIDDEN, INSTEAD, WINDOWS_SELECT_ERROR

# "server-1  | " (compose v2), "server_1  | " (docker-compose 1.29)
PREFIX = re.compile(r"^[\w.-]+[-_]\d+\s+\| ?")
FRAME = re.compile(r'^\s*File "(?P<path>[^"]+)", line (?P<line>\d+)(?:, in (?P<func>\S+))?')
EXCEPTION = re.compile(r"^(?P<name>[A-Za-z_][\w.]*)(?::\s?(?P<message>.*))?$")
EXCEPTION_NAME = re.compile(r"(Error|Exception|Exit|Interrupt|Warning|Failure|Fault)$")
MISSING_ATTRIBUTE = (
    re.compile(r"module '(?P<module>[\w.]+)' has no attribute '(?P<attr>\w+)'"),
    re.compile(r"cannot import name '(?P<attr>\w+)' from '(?P<module>[\w.]+)'"),
)
NOT_THEIRS = re.compile(r"/lib/python[\d.]*/|/platforms\.py$|/sitecustomize\.py$|^<frozen ")
LONGEST = 200  # characters of an exception's message worth a student's screen


@dataclass
class Crash:
    exception: str  # "SyntaxError: invalid syntax"
    where: str = ""  # "server.py line 27" or "server.py line 40, in main"

    def __str__(self) -> str:
        return f"{self.exception} ({self.where})" if self.where else self.exception


def lines_of(log: str) -> list[str]:
    """The log's lines without compose's service prefix."""
    return [PREFIX.sub("", line.rstrip()) for line in log.splitlines()]


def last_exception(log: str) -> Crash | None:
    """The last traceback's exception line and where in the server it was raised;
    without a traceback, the last line that names an exception (e.g. "MemoryError")."""
    lines = lines_of(log)
    frames = [i for i, line in enumerate(lines) if FRAME.match(line)]
    if frames:
        # the first unindented line after the last frame (source lines, carets are indented)
        line = next((x for x in lines[frames[-1] + 1:] if x.strip() and not x[:1].isspace()), "")
        if EXCEPTION.match(line):
            start = max((i for i, x in enumerate(lines[:frames[-1]]) if x.startswith("Traceback")),
                        default=0)
            return Crash(_short(line), _where([FRAME.match(lines[i]) for i in frames
                                                if i >= start]))
    for line in reversed(lines):
        match = EXCEPTION.match(line)
        if match and EXCEPTION_NAME.search(match["name"].rsplit(".", 1)[-1]):
            return Crash(_short(line))
    return None


def _short(text: str) -> str:
    return text if len(text) <= LONGEST else text[:LONGEST] + "…"


def _where(frames: list[re.Match]) -> str:
    """The innermost frame in the server's own code: not the standard library, not
    the OS profile's emulation (a student cannot act on a line of selectors.py)."""
    own = [f for f in frames if not NOT_THEIRS.search(f["path"])] or frames
    frame = own[-1]
    where = f"{frame['path'].rsplit('/', 1)[-1]} line {frame['line']}"
    if frame["func"] and frame["func"] != "<module>":
        where += f", in {frame['func']}"
    return where


def hidden_by_profile(crash: Crash | None, os_name: str) -> str:
    """When the exception is the OS profile hiding something, say so and what to use."""
    if crash is None:
        return ""
    if WINDOWS_SELECT_ERROR in crash.exception and os_name == "windows":
        return INSTEAD[("select", "select")]
    for pattern in MISSING_ATTRIBUTE:
        if match := pattern.search(crash.exception):
            key = (match["module"], match["attr"])
            if key in HIDDEN.get(os_name, ()):
                return f"{key[0]}.{key[1]} does not exist on {os_name}: use {INSTEAD[key]}"
    return ""


def tail(log: str, lines: int = 10) -> list[str]:
    """The last `lines` lines the server printed (not compose's prefix nor its
    "Attaching to ..." header)."""
    return [line for line in lines_of(log)
            if line.strip() and not line.startswith("Attaching to ")][-lines:]
