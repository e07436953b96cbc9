"""Where the server under test runs: a Compose stack (DockerTarget) or a local
subprocess (LocalTarget). Both implement Target (grader/targets/base.py), so
the runner and every check are shared by the two modes (Contract 5).
"""

from __future__ import annotations

from pathlib import Path

from grader.targets.base import Target
from grader.targets.docker import DockerTarget
from grader.targets.local import LocalTarget

MODES = ("docker", "local")


def make_target(mode: str, *, run_dir: Path, label: str, folder: Path, entry: str,
                os_name: str, limits: dict | None = None, run_id: str = "",
                port: int | None = None) -> Target:
    """The target for `mode`; the one place the mode is decided."""
    common = dict(run_dir=run_dir, label=label, folder=folder, entry=entry, os_name=os_name,
                  limits=limits)
    if mode == "docker":
        return DockerTarget(run_id=run_id, **common)
    return LocalTarget(port=port, **common)


__all__ = ["MODES", "DockerTarget", "LocalTarget", "Target", "make_target"]
