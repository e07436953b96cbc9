"""The registry of named checks and what a check declares (see grader/checks/__init__.py)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

from grader.lineclient import why_failed
from grader.outcome import Outcome

Address = tuple[str, int]


class Stage(str, Enum):
    NETWORK = "network"
    LOAD = "load"
    MODULE = "module"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Param:
    """A parameter a check takes from its lab.yaml entry."""

    name: str
    type: type  # int, float, str or bool; a float parameter also takes an int
    default: object = None  # None: optional with no value, unless `required`
    help: str = ""
    required: bool = False
    relative: bool = False  # judged against a calibration measured in the same place

    def accepts(self, value: object) -> bool:
        if value is None:
            return not self.required
        if self.type is float:
            return isinstance(value, (int, float)) and not isinstance(value, bool)
        if self.type is int:
            return isinstance(value, int) and not isinstance(value, bool)
        return isinstance(value, self.type)

    def describe(self) -> str:
        kind = f"{self.type.__name__}, required" if self.required else (
            f"{self.type.__name__}, default {self.default!r}")
        return f"{self.name} ({kind}){': ' + self.help if self.help else ''}"


@dataclass
class CheckContext:
    """What a check gets: where the server is, its parameters (lab.yaml over the
    declared defaults) and what the engine knows of the exercise."""

    addr: Address = ("", 0)  # where the server under test listens
    params: dict = field(default_factory=dict)
    model: str = ""  # the exercise's IO model (servers/platforms.py)
    os_name: str = "linux"  # the OS profile graded under
    server_pid: int | None = None  # local mode: the server's pid (evidence from /proc)
    load: object = None  # LOAD: the submission's LoadStats
    reference: object = None  # LOAD: the calibration's LoadStats, when measured
    scale: object = None  # LOAD: checks.load.Scale of that calibration (None: the reference)
    submission: object = None  # MODULE: the Path of the staged submission folder

    def param(self, name: str):
        """A declared parameter's value (KeyError for one the check did not declare)."""
        return self.params[name]


@dataclass(frozen=True)
class CheckSpec:
    name: str
    stage: Stage
    title: str
    fn: Callable[[CheckContext], Outcome]
    params: dict[str, Param] = field(default_factory=dict)

    @property
    def relative_params(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params.values() if p.relative)

    def resolve(self, given: dict) -> dict:
        """The declared defaults, overridden by what lab.yaml gave."""
        return {name: given.get(name, p.default) for name, p in self.params.items()}

    def unknown(self, given: dict) -> list[str]:
        return [name for name in given if name not in self.params]


REGISTRY: dict[str, CheckSpec] = {}


def check(name: str, stage: Stage, title: str, *params: Param):
    """Register `fn` as the check `name` (decorator)."""

    def register(fn: Callable[[CheckContext], Outcome]):
        if name in REGISTRY:
            raise ValueError(f"check {name} registered twice")
        REGISTRY[name] = CheckSpec(name, Stage(stage), title, fn, {p.name: p for p in params})
        return fn

    return register


def run_check(spec: CheckSpec, ctx: CheckContext) -> Outcome:
    """Run one check; a crash of the check itself is an error, never a pass."""
    try:
        outcome = spec.fn(ctx)
    except OSError as exc:  # refused, reset, timed out: the server's doing, not ours
        return Outcome(False, got=f"connection failed: {why_failed(exc)}",
                       hint="is the server still running? its log is server.log in the results "
                       "folder")
    except Exception as exc:  # noqa: BLE001 - any crash must become a verdict
        return Outcome.error(f"the check itself crashed: {type(exc).__name__}: {exc}")
    if not isinstance(outcome, Outcome):
        return Outcome.error(f"check {spec.name} returned {type(outcome).__name__}")
    return outcome


