"""What a check returns, and what the grader makes of it.

A check is judged by an Outcome: passed or not, the figure it measured, and on
failure what was expected, what happened and a hint (CS144 style: "expected X,
got Y"). The engine turns outcomes into CheckResults with points and
visibility; result writers read only CheckResults (grader/report.py sums them).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import Enum


class Status(str, Enum):
    """A check's verdict. An error is never a pass; unavailable is neither."""

    PASSED = "passed"
    FAILED = "failed"
    ERROR = "error"  # the grader could not reach a verdict
    UNAVAILABLE = "unavailable"  # not run: the OS profile lacks the exercise's model

    def __str__(self) -> str:  # f"{status}" is the value on every Python version
        return self.value


@dataclass
class Outcome:
    passed: bool
    figure: str = ""  # what was measured, e.g. "200/200 replies" or "3 412 replies/s"
    expected: str = ""
    got: str = ""
    hint: str = ""
    status: Status | str = ""  # derived from `passed` when empty
    # Not run: something before it decided (the server crashed or never listened, the
    # file is missing). Such checks share one reason, shown once for all of them.
    skipped: bool = False

    def __post_init__(self) -> None:
        self.status = Status(self.status) if self.status else (
            Status.PASSED if self.passed else Status.FAILED)

    @classmethod
    def error(cls, why: str, hint: str = "") -> Outcome:
        """The check could not reach a verdict: never a pass."""
        return cls(False, got=why, hint=hint, status=Status.ERROR)

    @classmethod
    def unavailable(cls, why: str) -> Outcome:
        return cls(False, got=why, status=Status.UNAVAILABLE, skipped=True)

    @classmethod
    def not_run(cls, why: str, hint: str = "", status: Status = Status.FAILED) -> Outcome:
        """The check did not run because of `why` (shared with the others it stopped):
        a failure when the server is to blame, an error when the grader is."""
        return cls(False, got=f"not run: {why}", hint=hint, status=status, skipped=True)

    def explain(self) -> str:
        """One paragraph for a student: why it failed and what to try."""
        if self.status == Status.PASSED:
            return self.figure
        parts = []
        if self.expected:
            parts.append(f"expected {self.expected}, got {self.got}")
        elif self.got:
            parts.append(self.got)
        if self.hint:
            parts.append(f"hint: {self.hint}")
        return "; ".join(parts)

    def to_dict(self) -> dict:
        return {**asdict(self), "status": self.status.value}


@dataclass
class CheckResult:
    exercise: str
    check: str  # registry name, e.g. "line.basic"
    title: str
    max_score: float
    outcome: Outcome
    required: bool = True
    visibility: str = "visible"
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)

    @property
    def status(self) -> Status:
        return self.outcome.status

    @property
    def score(self) -> float:
        return self.max_score if self.outcome.passed else 0.0

    @property
    def counted_max(self) -> float:
        """What the check is worth in the total: an exercise not run counts for nothing."""
        return 0.0 if self.status == Status.UNAVAILABLE else self.max_score

    @property
    def name(self) -> str:
        return f"{self.exercise}: {self.title}"

    def to_dict(self) -> dict:
        data = asdict(self)
        data["outcome"] = self.outcome.to_dict()
        data["score"] = self.score
        return data

    @classmethod
    def from_dict(cls, data: dict) -> CheckResult:
        data = dict(data)
        data.pop("score", None)
        data["outcome"] = Outcome(**data["outcome"])
        return cls(**data)
