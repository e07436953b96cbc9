"""The registry of named checks: labs name them in lab.yaml, the engine runs them.

A check is a small function `fn(ctx) -> Outcome`, registered under a dotted
name with the stage it needs:

- "network": talks to the running server over TCP (runs next to the server:
  inside the stack in docker mode, on loopback in local mode);
- "load": judges the statistics of the load phase (runs on the host, after).

Adding a kind of check means adding a function here; adding a check to a lab
means editing that lab's lab.yaml, nothing else.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from grader.outcome import Outcome

Address = tuple[str, int]


@dataclass
class CheckContext:
    addr: Address  # where the server under test listens
    params: dict = field(default_factory=dict)  # the check's entry in lab.yaml
    load: object = None  # LoadStats for "load" checks
    reference: object = None  # the reference server's LoadStats, when measured
    submission: object = None  # "module" checks: the Path of the staged submission folder

    def param(self, name: str, default):
        return self.params.get(name, default)


@dataclass(frozen=True)
class CheckSpec:
    name: str
    stage: str  # "network" | "load" | "module" (no server: tests the submission's module)
    title: str
    fn: Callable[[CheckContext], Outcome]


REGISTRY: dict[str, CheckSpec] = {}


def check(name: str, stage: str, title: str):
    """Register `fn` as the check `name` (decorator)."""

    def register(fn: Callable[[CheckContext], Outcome]):
        if name in REGISTRY:
            raise ValueError(f"check {name} registered twice")
        REGISTRY[name] = CheckSpec(name, stage, title, fn)
        return fn

    return register


def run_check(spec: CheckSpec, ctx: CheckContext) -> Outcome:
    """Run one check; a crash of the check itself is an error, never a pass."""
    try:
        outcome = spec.fn(ctx)
    except OSError as exc:  # refused, reset, timed out: the server's doing, not ours
        return Outcome(False, got=f"connection failed: {exc.strerror or exc}",
                       hint="is the server still running? see its log in the results folder")
    except Exception as exc:  # noqa: BLE001 - any crash must become a verdict
        return Outcome.error(f"the check itself crashed: {type(exc).__name__}: {exc}")
    if not isinstance(outcome, Outcome):
        return Outcome.error(f"check {spec.name} returned {type(outcome).__name__}")
    return outcome


def load_all() -> dict[str, CheckSpec]:
    """Import every check module so the registry is complete."""
    from grader.checks import lessons, line, load, model, module  # noqa: F401 - register

    return REGISTRY
