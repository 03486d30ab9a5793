"""The policies of leveraged derivatives (docs/inspector-orders.md, "Leverage, margin and liquidation"):
the leverage a position may be held at, how near its liquidation price an entry may open and a
position may stay, and how much of the account's equity its margin may hold. Checked when made
(InvalidArgument naming the key, e.g. "liquidation.open_action"); a limit left as None is not
enforced. Ratios are fractions (0.05 is 5%); leverage is a multiple (10 is 10x)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from types import MappingProxyType

from trademesh.core.domain.contracts.intent import MAX_LEVERAGE as INTENT_MAX_LEVERAGE
from trademesh.core.platform.config.schema.words import out_of_range
from trademesh.core.platform.errors import FieldViolation, InvalidArgument, shown

__all__ = [
    "OPEN_ACTIONS",
    "LeverageLimit",
    "LeveragePolicy",
    "LiquidationPolicy",
    "MarginPolicy",
]

# A leverage above any venue's: an intent's own is refused past it too.
MAX_LEVERAGE = INTENT_MAX_LEVERAGE
# What liquidation.open_action may say: reduce the position by reduce_fraction, or close it.
OPEN_ACTIONS = ("reduce", "close")


def _leverage(where: str, value: Decimal | None) -> list[FieldViolation]:
    if value is None or Decimal(0) < value <= MAX_LEVERAGE:
        return []
    return [FieldViolation(where, out_of_range(value, 0, MAX_LEVERAGE, above=True))]


def _fraction(where: str, value: Decimal | None) -> list[FieldViolation]:
    if value is None or Decimal(0) < value <= 1:
        return []
    return [FieldViolation(where, out_of_range(value, 0, 1, above=True))]


def _raise(bad: list[FieldViolation]) -> None:
    if bad:
        raise InvalidArgument(bad)


@dataclass(frozen=True)
class LeverageLimit:
    """One symbol's own maximum leverage (on every venue)."""

    max: Decimal | None = None


@dataclass(frozen=True)
class LeveragePolicy:
    """`max`: the leverage any derivatives position may be held at (the intent's, else the
    venue's setting in force); `symbols`: one symbol's own; `max_overall`: the account's
    leverage, every derivatives position's worst-case notional (the order's included) over the
    equity."""

    max: Decimal | None = None
    max_overall: Decimal | None = None
    symbols: Mapping[str, LeverageLimit] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "symbols", MappingProxyType(dict(self.symbols)))
        bad = _leverage("leverage.max", self.max) + _leverage("leverage.max_overall", self.max_overall)
        for symbol, limit in self.symbols.items():
            bad += _leverage(f"leverage.symbols.{symbol}.max", limit.max)
        _raise(bad)

    def limit_for(self, symbol: str) -> Decimal | None:
        own = self.symbols.get(symbol)
        return own.max if own is not None and own.max is not None else self.max


@dataclass(frozen=True)
class LiquidationPolicy:
    """How near the liquidation price a position may be, as a fraction of the price:
    `min_distance_entry` blocks an entry whose estimated liquidation price is nearer (estimated
    from its leverage and the venue's maintenance rate, else `maintenance_rate`);
    `min_distance_open` acts on a held position the venue says is nearer: `open_action`
    "reduce" (by `reduce_fraction`) or "close", with a REDUCE risk event. A liquidation seen at
    a venue is a risk event, and with `stand_down` a stand-down."""

    min_distance_entry: Decimal | None = None
    min_distance_open: Decimal | None = None
    open_action: str = "reduce"
    reduce_fraction: Decimal = Decimal("0.5")
    maintenance_rate: Decimal = Decimal("0.005")
    stand_down: bool = True

    def __post_init__(self) -> None:
        bad = (
            _fraction("liquidation.min_distance_entry", self.min_distance_entry)
            + _fraction("liquidation.min_distance_open", self.min_distance_open)
            + _fraction("liquidation.reduce_fraction", self.reduce_fraction)
            + _fraction("liquidation.maintenance_rate", self.maintenance_rate)
        )
        if self.open_action not in OPEN_ACTIONS:
            known = " or ".join(OPEN_ACTIONS)
            bad.append(FieldViolation("liquidation.open_action", f"{shown(self.open_action)} is not {known}"))
        _raise(bad)


@dataclass(frozen=True)
class MarginPolicy:
    """`max_use`: the initial margin held (the order's included) over the equity, in the
    position's settle asset, at its venue."""

    max_use: Decimal | None = None

    def __post_init__(self) -> None:
        _raise(_fraction("margin.max_use", self.max_use))
