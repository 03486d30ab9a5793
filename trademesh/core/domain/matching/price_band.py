"""The sim's price band: a limit price far from the market is refused, as real venues refuse it.

A limit order's price must lie within [reference / ratio, reference * ratio] (bounds included,
rounded inwards to the tick grid). The reference price is the book's mid when both sides are
quoted, else the last trade's price, else the best price of the one side quoted; a market
with none of them (an empty book that never traded) has no band. The ratio is the config's
`price_band_ratio`, 5 by default: -80 % .. +400 % of the reference, Binance spot's
PERCENT_PRICE filter (multiplierDown 0.2, multiplierUp 5, recorded in the shared BINANCE
capture's exchangeInfo). Without it a sell at 1e38 would rest on the book and every depth
view, chart and notional sum built on it.

A refusal is InvalidArgument with a field violation on `price`, e.g.
    price: 1000000 is outside the price band 13000.01 .. 325000.05 (the reference 65000.01,
    the book's mid, divided or multiplied by 5)
Market orders have no price and no band: they only take what the book holds.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from trademesh.core.domain.decimals import format_decimal
from trademesh.core.domain.matching.engine import OrderBook
from trademesh.core.platform.errors import InvalidArgument

__all__ = ["PriceBand", "reference_ticks"]


def reference_ticks(book: OrderBook, last_trade: int | None) -> tuple[Decimal, str] | None:
    """(reference price in ticks, where it comes from); None when the market has none."""
    bid, ask = book.best_bid(), book.best_ask()
    if bid is not None and ask is not None:
        return Decimal(bid + ask) / 2, "the book's mid"
    if last_trade is not None:
        return Decimal(last_trade), "the last trade"
    if bid is not None or ask is not None:
        return Decimal(bid if bid is not None else ask), "the only quoted side's best price"  # type: ignore[arg-type]
    return None


class PriceBand:
    def __init__(self, ratio: Decimal) -> None:
        if not ratio > 1:
            raise InvalidArgument.field("price_band_ratio", f"must be above 1, got {ratio}")
        self.ratio = ratio

    def bounds(self, reference: Decimal) -> tuple[int, int]:
        """The lowest and highest accepted price, in ticks."""
        low = (reference / self.ratio).to_integral_value(ROUND_CEILING)
        high = (reference * self.ratio).to_integral_value(ROUND_FLOOR)
        return max(int(low), 1), int(high)

    def check(
        self, price: int, reference: tuple[Decimal, str], tick_size: Decimal, field: str = "price"
    ) -> None:
        """InvalidArgument on `field` when the price (in ticks) is outside the band."""
        low, high = self.bounds(reference[0])
        if low <= price <= high:
            return
        price_text, low_text, high_text, ref_text = (
            format_decimal(ticks * tick_size) for ticks in (price, low, high, reference[0])
        )
        raise InvalidArgument.field(
            field,
            f"{price_text} is outside the price band {low_text} .. {high_text} (the reference {ref_text}, "
            f"{reference[1]}, divided or multiplied by {format_decimal(self.ratio)})",
        )
