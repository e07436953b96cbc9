"""The registry of named checks: labs name them in lab.yaml, the engine runs them.

A check is a small function `fn(ctx) -> Outcome`, registered under a dotted
name with the stage it needs and the parameters it takes:

    @check("robust.fd_limit", Stage.NETWORK, "more than 1024 connections at once",
           Param("connections", int, 1100, "connections held open at once"),
           Param("timeout", float, 5.0, "seconds to wait for the last client's reply"))
    def fd_limit(ctx): ... ctx.param("connections") ...

Stages:
- NETWORK: talks to the running server over TCP (runs next to the server:
  inside the stack in docker mode, on loopback in local mode);
- LOAD: judges the statistics of the load phase (runs on the host, after);
- MODULE: no server; tests the submitted Python module (lab-0).

What the engine knows of a check comes from here: its stage, its parameters
(lab.yaml is validated against them, so a misspelt parameter is an error, not
a silent default), and whether a parameter is relative to a calibration
measurement (`relative=True`: the engine then measures one). `python -m grader
checks` lists them all. Adding a kind of check means adding a function in this
package; adding a check to a lab means editing that lab's lab.yaml, nothing else.
"""

from grader.checks import (  # noqa: F401 - they register
    lessons,
    line,
    load,
    model,
    module,
    multiplex,
    pressure,
    processes,
)
from grader.checks.registry import (
    REGISTRY,
    Address,
    CheckContext,
    CheckSpec,
    Param,
    Stage,
    check,
    run_check,
)

__all__ = ["REGISTRY", "Address", "CheckContext", "CheckSpec", "Param", "Stage", "check",
           "run_check", "load_all"]


def load_all() -> dict[str, CheckSpec]:
    """Every registered check (importing this package registered them all)."""
    return REGISTRY
