"""What a check comes to: pass, fail or skip, with a one-line reason; and the kit's own errors."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import NoReturn

__all__ = [
    "BadTarget",
    "CheckFailed",
    "CheckOutcome",
    "CheckResult",
    "CheckSkipped",
    "fail",
    "one_line",
    "skip",
]

# A reason is one line a person reads in a table: longer ones are cut.
_REASON_CHARS = 300


class CheckOutcome(enum.Enum):
    PASS = "pass"
    FAIL = "fail"
    SKIP = "skip"


@dataclass(frozen=True)
class CheckResult:
    name: str
    outcome: CheckOutcome
    reason: str
    duration_s: float


class CheckFailed(Exception):
    """The venue broke the behaviour a check proves; the message says how, in a line."""


class CheckSkipped(Exception):
    """The venue's Admin GetStatus says it does not offer the behaviour (the only reason to skip)."""


class BadTarget(Exception):
    """The kit cannot check this address at all (nothing answers gRPC, not a venue, a bad option):
    one line, exit code 2."""


def one_line(text: str) -> str:
    """`text` on one line, cut to a readable length."""
    flat = " ".join(text.split())
    return flat if len(flat) <= _REASON_CHARS else flat[: _REASON_CHARS - 3] + "..."


def fail(reason: str) -> NoReturn:
    raise CheckFailed(one_line(reason))


def skip(reason: str) -> NoReturn:
    raise CheckSkipped(one_line(reason))
