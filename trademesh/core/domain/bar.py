"""One OHLCV bar being built, its wire form, and the VWAP rounding rule.

Open and close are the first and last trades by (event time, trade id), not by arrival, so a
bar does not depend on the order its trades came in. Ids compare as (length, text): numeric
ids (every venue we know) then order as numbers, others in a fixed order.

Arithmetic is exact: callers run it under trademesh.core.domain.decimals.WIDE (see engine.py), whose precision
holds any sum of wire decimals a day can produce.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import MAX_PREC, ROUND_HALF_EVEN, Context, Decimal

from trademesh.bus.v1 import bus_pb2 as bus
from trademesh.core.domain.convert import TIMEFRAME_TO_PB as TO_PB
from trademesh.core.domain.decimals import MAX_DIGITS, WIDE, format_decimal
from trademesh.core.domain.model import Timeframe

__all__ = ["VWAP_PLACES", "Bar", "SecondBar", "TradeKey", "trade_key", "vwap_text"]

# (event time ns, len(trade id), trade id): the order of trades inside a bar.
TradeKey = tuple[int, int, str]

# A VWAP whose exact quotient does not terminate within MAX_DIGITS digits is rounded
# half-even to this many decimal places.
VWAP_PLACES = 16
# The quotient to MAX_DIGITS (no traps: its flags are never read), and a product never rounded.
_DIGITS = Context(prec=MAX_DIGITS, rounding=ROUND_HALF_EVEN, traps=[])
_PRODUCT = Context(prec=MAX_PREC, traps=[])
_QUANTUM = Decimal(1).scaleb(-VWAP_PLACES)


def trade_key(ts_ns: int, trade_id: str) -> TradeKey:
    return (ts_ns, len(trade_id), trade_id)


@dataclass(slots=True)
class Bar:
    open_time_ns: int
    first: TradeKey
    last: TradeKey
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    quote_volume: Decimal
    trade_count: int

    def add(self, key: TradeKey, price: Decimal, size: Decimal) -> None:
        if price > self.high:
            self.high = price
        elif price < self.low:
            self.low = price
        if key < self.first:
            self.first, self.open = key, price
        elif key > self.last:
            self.last, self.close = key, price
        self.volume += size
        self.quote_volume += price * size
        self.trade_count += 1

    def merge(self, other: Bar) -> None:
        """Add another bar's trades (of the same interval of a larger timeframe)."""
        self.high = max(self.high, other.high)
        self.low = min(self.low, other.low)
        if other.first < self.first:
            self.first, self.open = other.first, other.open
        if other.last > self.last:
            self.last, self.close = other.last, other.close
        self.volume += other.volume
        self.quote_volume += other.quote_volume
        self.trade_count += other.trade_count

    def regrouped(self, open_time_ns: int) -> Bar:
        """A copy that starts the bar of a larger timeframe at open_time_ns."""
        return Bar(open_time_ns, self.first, self.last, self.open, self.high, self.low, self.close,
                   self.volume, self.quote_volume, self.trade_count)  # fmt: skip

    def to_wire(self, venue: str, symbol: str, timeframe: Timeframe) -> bus.Bar:
        return bus.Bar(
            venue=venue,
            symbol=symbol,
            timeframe=TO_PB[timeframe],
            open_time_ns=self.open_time_ns,
            open=format_decimal(self.open),
            high=format_decimal(self.high),
            low=format_decimal(self.low),
            close=format_decimal(self.close),
            volume=format_decimal(self.volume),
            quote_volume=format_decimal(self.quote_volume),
            trade_count=self.trade_count,
            vwap=vwap_text(self.quote_volume, self.volume),
        )


@dataclass(slots=True)
class SecondBar(Bar):
    """A 1s bar still open: it also remembers its trade ids, to drop duplicates."""

    ids: set[str] = field(default_factory=set)

    @classmethod
    def of_trade(cls, open_time_ns: int, key: TradeKey, price: Decimal, size: Decimal) -> SecondBar:
        return cls(open_time_ns, key, key, price, price, price, price, size, price * size, 1, {key[2]})


def vwap_text(quote_volume: Decimal, volume: Decimal) -> str:
    """quote_volume / volume: exact when the quotient terminates within MAX_DIGITS significant
    digits, else rounded half-even to VWAP_PLACES decimal places; "" for no volume. (The quotient
    to MAX_DIGITS is exact when it times the volume is the quote volume: no trap, no flag read.)"""
    if volume == 0:
        return ""
    quotient = _DIGITS.divide(quote_volume, volume)
    if _PRODUCT.multiply(quotient, volume) == quote_volume:
        return format_decimal(quotient)
    return format_decimal(WIDE.divide(quote_volume, volume).quantize(_QUANTUM, ROUND_HALF_EVEN, WIDE))
