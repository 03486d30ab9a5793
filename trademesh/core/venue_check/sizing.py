"""Prices and sizes of the kit's orders, in Decimal: the smallest order the instrument takes, at a
price far from the market (so it rests) or at the market (so it fills)."""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from trademesh.common.v1 import common_pb2 as common
from trademesh.core.venue_check.market import decimal_of
from trademesh.core.venue_check.results import fail

__all__ = ["Terms"]

# A resting buy is placed at this share of the market's price: far from any fill, inside every
# venue's price band (the sim's and Binance's allow a fifth of the reference).
_RESTING_SHARE = Decimal("0.5")
# An order meant to fill crosses the market by this much: it takes the best level and a little more.
_CROSSING = Decimal("0.05")
# A spot fee the instrument does not state is taken to be at most this (of the notional).
_FEE_CEILING = Decimal("0.005")


class Terms:
    """An instrument's tick, lot and minimums, read once."""

    def __init__(self, instrument: common.Instrument) -> None:
        self.symbol = instrument.symbol
        self.tick = _required(instrument.symbol, "tick_size", instrument.tick_size)
        self.lot = _required(instrument.symbol, "lot_size", instrument.lot_size)
        self.min_size = decimal_of(instrument.min_size) or Decimal(0)
        self.min_notional = decimal_of(instrument.min_notional) or Decimal(0)
        value = decimal_of(instrument.contract_value) or decimal_of(instrument.contract_size)
        self.contract_value = value if value is not None and value > 0 else Decimal(1)
        # An inverse contract's value is counted in the quote asset: its notional ignores the price.
        self.in_quote = instrument.contract_value_asset not in ("", instrument.base_asset)
        self.spot = instrument.kind == common.INSTRUMENT_KIND_SPOT
        fee = decimal_of(instrument.taker_fee_rate)
        self.taker_fee = fee if fee is not None and 0 <= fee < Decimal("0.1") else _FEE_CEILING

    def down(self, price: Decimal) -> Decimal:
        return (price / self.tick).to_integral_value(ROUND_FLOOR) * self.tick

    def up(self, price: Decimal) -> Decimal:
        return (price / self.tick).to_integral_value(ROUND_CEILING) * self.tick

    def resting_buy(self, reference: Decimal) -> Decimal:
        """A buy price far below `reference`, on the tick grid, at least one tick."""
        return max(self.tick, self.down(reference * _RESTING_SHARE))

    def crossing(self, best_bid: Decimal, best_ask: Decimal) -> tuple[Decimal, Decimal]:
        """(buy, sell) limit prices that cross the market: above the best ask, below the best bid."""
        return self.up(best_ask * (1 + _CROSSING)), max(self.tick, self.down(best_bid * (1 - _CROSSING)))

    def round_trip(self, price: Decimal) -> tuple[Decimal, Decimal]:
        """(buy, sell) sizes of a fill each way that leave the account as it was: the same size on a
        contract; on a spot pair a sell no larger than what the buy delivers after its fee (which
        an exchange may take in the base), so the base ends up less than a lot and a fee above."""
        sell = self.smallest(price)
        if not self.spot:
            return sell, sell
        return self._lots(sell / (1 - 2 * self.taker_fee)), sell

    def notional(self, size: Decimal, price: Decimal) -> Decimal:
        return size * self.contract_value if self.in_quote else size * self.contract_value * price

    def smallest(self, price: Decimal) -> Decimal:
        """The smallest size the instrument takes at `price`: a multiple of the lot, at least the
        minimum size, with at least the minimum notional."""
        size = max(self.lot, self._lots(self.min_size))
        if self.min_notional > 0 and self.notional(size, price) < self.min_notional:
            per_unit = self.notional(Decimal(1), price)
            size = max(size, self._lots(self.min_notional / per_unit))
        return size

    def _lots(self, size: Decimal) -> Decimal:
        return (size / self.lot).to_integral_value(ROUND_CEILING) * self.lot


def _required(symbol: str, name: str, text: str) -> Decimal:
    value = decimal_of(text)
    if value is None or value <= 0:
        fail(f"{symbol}'s {name} {text!r} is not a positive decimal: no order can be sized")
    return value
