"""The core's own positions, built from fills: size, average entry price, realized PnL, and
each strategy's share of the net position (for its capital use)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from trademesh.core.domain.decimals import WIDE

__all__ = ["PNL_QUANTUM", "Key", "PositionBook", "PositionState", "TradeResult", "average_entry", "money"]

Key = tuple[str, str]  # (venue, symbol)
ZERO = Decimal(0)
ONE = Decimal(1)
# PnL is money of the quote asset, kept to this. The average entry is a quotient (28 digits), so
# a position closed at what it cost left a residue (-1E-26 where the PnL is 0: a losing trade for
# the loss streak, "-0.00000000000000000000000001" in the answers); no venue counts money finer.
PNL_QUANTUM = Decimal("1e-12")


def money(value: Decimal) -> Decimal:
    """`value` to PNL_QUANTUM (0 itself, never -0E-12); shown through format_decimal, as every
    decimal the core answers or publishes."""
    kept = value.quantize(PNL_QUANTUM, context=WIDE)
    return ZERO if kept == 0 else kept


def _sign(value: Decimal) -> int:
    return (value > 0) - (value < 0)


def _flat(size: Decimal, lot: Decimal) -> bool:
    """No open trade: nothing held, or less than one `lot` (dust)."""
    return size == 0 or abs(size) < lot


@dataclass
class PositionState:
    size: Decimal = ZERO  # signed: long above 0
    avg_price: Decimal = ZERO
    realized: Decimal = ZERO  # realized PnL, fees apart
    trade_pnl: Decimal = ZERO  # the open trade's realized PnL less its fees, so far

    def unrealized(self, mark: Decimal, inverse: Decimal | None = None, multiplier: Decimal = ONE) -> Decimal:
        """At `mark`, in the quote asset; `inverse`: an inverse contract's face value a unit;
        `multiplier`: a linear contract's base units a unit of size (OKX's 0.01 BTC)."""
        return money(_pnl(self.size, self.avg_price, mark, inverse, multiplier))


def _pnl(
    size: Decimal, entry: Decimal, price: Decimal, inverse: Decimal | None, multiplier: Decimal = ONE
) -> Decimal:
    """What `size` (signed) held from `entry` gains at `price`, in the quote asset: a linear
    market size x multiplier x (price - entry). An inverse contract (face value `inverse` a unit)
    gains size x value x (1/entry - 1/price) of the coin, valued here at `price`:
    size x value x (price - entry) / entry."""
    if inverse is None:
        return size * multiplier * (price - entry)
    if entry <= 0:
        return ZERO
    return size * inverse * (price - entry) / entry


def average_entry(
    held: Decimal, avg: Decimal, more: Decimal, price: Decimal, inverse: Decimal | None
) -> Decimal:
    """The average entry of `held` at `avg` and `more` at `price` (sizes unsigned): weighted by
    size, or for an inverse contract the harmonic mean (the face over the coin it cost)."""
    total = held + more
    if inverse is None or (held and avg <= 0):
        return (held * avg + more * price) / total
    coin = (held / avg if held else ZERO) + more / price
    return total / coin


@dataclass(frozen=True)
class TradeResult:
    """A trade closed (the position went back to flat or flipped) with this PnL, fees included."""

    pnl: Decimal


class PositionBook:
    def __init__(self) -> None:
        self.positions: dict[Key, PositionState] = {}
        self.by_strategy: dict[tuple[str, str, str], Decimal] = {}  # (strategy, venue, symbol)

    def size(self, key: Key) -> Decimal:
        state = self.positions.get(key)
        return ZERO if state is None else state.size

    def apply(
        self,
        key: Key,
        signed: Decimal,
        price: Decimal,
        fee: Decimal,
        inverse: Decimal | None = None,
        multiplier: Decimal = ONE,
        lot: Decimal = ZERO,
    ) -> TradeResult | None:
        """A fill of `signed` size at `price`; the closed trade when it closed one. `inverse`: an
        inverse contract's face value a unit (PnL and `fee` in the quote asset, valued at `price`);
        `multiplier`: a linear contract's base units a unit of size; `lot`: the market's lot
        size, under which what is left is dust, not an open trade (0: none known)."""
        state = self.positions.setdefault(key, PositionState())
        before = state.size
        if before == 0 or _sign(before) == _sign(signed):
            state.avg_price = average_entry(abs(before), state.avg_price, abs(signed), price, inverse)
        else:
            closing = min(abs(signed), abs(before))
            pnl = money(_pnl(closing * _sign(before), state.avg_price, price, inverse, multiplier))
            state.realized += pnl
            state.trade_pnl += pnl
            if abs(signed) > abs(before):  # flipped: the new side opens at this price
                state.avg_price = price
        state.size = before + signed
        state.trade_pnl -= fee
        return self._closed(state, before, lot)

    def _closed(self, state: PositionState, before: Decimal, lot: Decimal) -> TradeResult | None:
        """The trade's result when the fill took the position flat, to dust, or past flat: a
        remainder under a lot (a spot fee paid in the base) can never be sold, so the trade it is
        left of is over (its PnL counts for the loss streak)."""
        if _flat(before, lot) or (not _flat(state.size, lot) and _sign(state.size) == _sign(before)):
            return None
        result = TradeResult(state.trade_pnl)
        state.trade_pnl = ZERO
        if state.size == 0:
            state.avg_price = ZERO
        return result

    def attribute(self, strategy: str, key: Key, signed: Decimal) -> None:
        """A strategy's own fill: its share of the position moves with it."""
        slot = (strategy, *key)
        self.by_strategy[slot] = self.by_strategy.get(slot, ZERO) + signed

    def attribute_pro_rata(self, key: Key, signed: Decimal) -> None:
        """A fill of no strategy's (a protective or flattening order) reduces every strategy
        holding the other side in proportion to its share."""
        holders = {s: v for s, v in self.by_strategy.items() if s[1:] == key and _sign(v) == -_sign(signed)}
        total = sum((abs(v) for v in holders.values()), ZERO)
        if total == 0:
            return
        take = min(abs(signed), total)
        for slot, held in holders.items():
            self.by_strategy[slot] = held - _sign(held) * take * abs(held) / total

    def shares(self, key: Key) -> dict[str, Decimal]:
        """Each strategy's part of a position."""
        return {s[0]: v for s, v in self.by_strategy.items() if s[1:] == key and v != 0}

    def strategy_positions(self, strategy: str) -> dict[Key, Decimal]:
        return {s[1:]: v for s, v in self.by_strategy.items() if s[0] == strategy and v != 0}
