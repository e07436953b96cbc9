"""Where things are: the checkout, the labs, the default results folder.

One definition for every module (and the bench and the tests). IOLAB_LABS
points the engine at another labs folder (tests, and a student handout whose
labs live beside its own grader).
"""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LABS = Path(os.environ.get("IOLAB_LABS") or REPO / "labs")
RESULTS = REPO / "results"


def shown(path: Path) -> Path:
    """A path as the user would type it: relative to the checkout when inside it."""
    try:
        return path.resolve().relative_to(REPO)
    except ValueError:
        return path
