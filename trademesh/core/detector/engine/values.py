"""What flows on a patch's cables, by port type.

Indicator math is in floats (signals are not money: nothing here is summed into a balance or
sent to a venue); a value is None until its module has one (not warmed up, no data yet).
Market values keep the event's own time, so a signal can name the event that triggered it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from trademesh.core.domain.contracts.signal import Direction

__all__ = [
    "BarValue",
    "BookValue",
    "PortType",
    "RuleValue",
    "SignalValue",
    "TradeValue",
    "Value",
]


class PortType(enum.Enum):
    NUMBER = "number"
    BOOLEAN = "boolean"
    TRADE = "trade"
    BOOK = "book"
    BAR = "bar"
    SIGNAL = "signal"


@dataclass(frozen=True, slots=True)
class TradeValue:
    symbol: str
    ts_event_ns: int
    price: float
    size: float
    # True when the taker bought (the aggressor was a buyer); None when the venue does not say.
    taker_buy: bool | None
    # The venue's trade id: orders trades of the same event time inside a bar (trademesh.core.bars' rule)
    # and tells a duplicate from a new trade. "" when the venue gives none.
    trade_id: str = ""


@dataclass(frozen=True, slots=True)
class BookValue:
    """The top levels of an L2 book, best first: (price, size) pairs."""

    symbol: str
    ts_event_ns: int
    bids: tuple[tuple[float, float], ...]
    asks: tuple[tuple[float, float], ...]


@dataclass(frozen=True, slots=True)
class BarValue:
    """A closed OHLCV bar (trademesh.core.bars' rules: open/close by event time and trade id)."""

    symbol: str
    timeframe_s: int
    open_time_ns: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    quote_volume: float
    trade_count: int

    @property
    def close_time_ns(self) -> int:
        return self.open_time_ns + self.timeframe_s * 1_000_000_000


@dataclass(frozen=True, slots=True)
class RuleValue:
    """One weighted rule of a score: its name, weight, the value it saw and whether it fired."""

    name: str
    weight: float
    value: float | bool | None
    fired: bool


@dataclass(frozen=True, slots=True)
class SignalValue:
    direction: Direction
    conviction: float  # the score normalised to [0, 1]
    score: float
    threshold: float
    rules: tuple[RuleValue, ...]


Value = float | bool | TradeValue | BookValue | BarValue | SignalValue | None
