"""Round trips from a run's fills: per symbol, a position opened from flat and closed back to
flat (a flip closes one and opens the next with the rest of the fill).

A fill no strategy asked for (a protective stop or target, a flatten order: its `strategy` is
"") belongs to the strategy whose position it reduces. Entry prices are averaged over the
fills that built the position; exit prices over those that closed it. A trip's fees are every
fee of its fills (a flipping fill's fee is split by size); its PnL is net of them. A position
still open at the end is not a trip.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from decimal import Decimal

from trademesh.core.backtest.results import BacktestRoundTrip, FillRecord

__all__ = ["attributed", "round_trips"]

_ZERO = Decimal(0)


@dataclass
class _Open:
    strategy: str
    opened_ns: int
    long: bool
    size: Decimal = _ZERO  # what is open, unsigned
    entry_size: Decimal = _ZERO
    entry_value: Decimal = _ZERO
    exit_size: Decimal = _ZERO
    exit_value: Decimal = _ZERO
    fees: Decimal = _ZERO

    def add(self, size: Decimal, price: Decimal, fee: Decimal) -> None:
        self.size += size
        self.entry_size += size
        self.entry_value += size * price
        self.fees += fee

    def close(self, size: Decimal, price: Decimal, fee: Decimal) -> None:
        self.size -= size
        self.exit_size += size
        self.exit_value += size * price
        self.fees += fee

    def trip(self, fill: FillRecord) -> BacktestRoundTrip:
        entry = self.entry_value / self.entry_size
        exit_ = self.exit_value / self.exit_size
        gross = (exit_ - entry) * self.exit_size
        return BacktestRoundTrip(
            strategy=self.strategy, venue=fill.venue, symbol=fill.symbol,
            side="long" if self.long else "short", opened_ns=self.opened_ns, closed_ns=fill.ts_ns,
            size=self.exit_size, entry_price=entry, exit_price=exit_,
            fees=self.fees, pnl=(gross if self.long else -gross) - self.fees,
        )  # fmt: skip


def attributed(fills: Iterable[FillRecord]) -> list[FillRecord]:
    """The fills, each of a strategy: "" takes the strategy holding the symbol's position."""
    holder: dict[tuple[str, str], str] = {}
    out = []
    for fill in fills:
        key = (fill.venue, fill.symbol)
        if fill.strategy:
            holder[key] = fill.strategy
        elif key in holder:
            fill = replace(fill, strategy=holder[key])
        out.append(fill)
    return out


def round_trips(fills: Iterable[FillRecord]) -> list[BacktestRoundTrip]:
    trips: list[BacktestRoundTrip] = []
    held: dict[tuple[str, str], _Open] = {}
    for fill in attributed(fills):
        key, buy = (fill.venue, fill.symbol), fill.side == "buy"
        position = held.get(key)
        if position is None:
            held[key] = _opened(fill, fill.size, fill.fee)
            continue
        if position.long == buy:
            position.add(fill.size, fill.price, fill.fee)
            continue
        closing = min(fill.size, position.size)
        fee = fill.fee * closing / fill.size
        position.close(closing, fill.price, fee)
        if position.size == 0:
            trips.append(position.trip(fill))
            del held[key]
            if fill.size > closing:  # a flip: the rest opens the other way
                held[key] = _opened(fill, fill.size - closing, fill.fee - fee)
    return trips


def _opened(fill: FillRecord, size: Decimal, fee: Decimal) -> _Open:
    position = _Open(fill.strategy, fill.ts_ns, fill.side == "buy")
    position.add(size, fill.price, fee)
    return position
