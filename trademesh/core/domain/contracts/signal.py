"""The signal: what a detector emits and the advisor decides on (trademesh.signal.v1.Signal as
the cores see it), and its direction.

Conviction, score, threshold and rule weights are decimal strings on the wire and Decimal here
(exact, so a decision never depends on a float's last bit); the shell converts at the edge.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from decimal import Decimal

from trademesh.core.platform.errors import FieldViolation, InvalidArgument

__all__ = ["Direction", "RuleAttribution", "Signal", "direction_sign"]


class Direction(enum.Enum):
    LONG = "long"
    SHORT = "short"
    FLAT = "flat"


def direction_sign(direction: Direction) -> int:
    """+1 long, -1 short, 0 flat."""
    return {Direction.LONG: 1, Direction.SHORT: -1, Direction.FLAT: 0}[direction]


@dataclass(frozen=True, slots=True)
class RuleAttribution:
    """One weighted rule of the detector's score."""

    name: str
    weight: Decimal
    value: str  # the value the rule saw, as text; "" when it had none
    fired: bool


@dataclass(frozen=True, slots=True)
class Signal:
    signal_id: str
    venue: str
    symbol: str
    direction: Direction
    conviction: Decimal  # [0, 1]
    score: Decimal
    threshold: Decimal
    strategy_id: str
    patch_version: int
    rules: tuple[RuleAttribution, ...]
    ts_event_ns: int  # the event that triggered the detector's evaluation
    ts_ns: int  # when the detector emitted it

    def __post_init__(self) -> None:
        bad = [
            FieldViolation(name, "is required")
            for name in ("signal_id", "venue", "symbol", "strategy_id")
            if getattr(self, name) == ""
        ]
        if not Decimal(0) <= self.conviction <= Decimal(1):
            bad.append(FieldViolation("conviction", f"{self.conviction} is not in [0, 1]"))
        if self.patch_version < 0:
            bad.append(FieldViolation("patch_version", "must not be negative"))
        if bad:
            raise InvalidArgument(bad)
