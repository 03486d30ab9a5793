"""The market an intent is checked against: the best prices when the intent came in."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from trademesh.core.domain.model import Side

__all__ = ["MarketView"]


@dataclass(frozen=True)
class MarketView:
    bid: Decimal | None = None
    ask: Decimal | None = None
    last: Decimal | None = None

    @property
    def mid(self) -> Decimal | None:
        if self.bid is None or self.ask is None:
            return None
        return (self.bid + self.ask) / 2

    def taker_price(self, side: Side) -> Decimal | None:
        """What a market order of `side` is valued at: the far touch, else the last trade."""
        touch = self.ask if side is Side.BUY else self.bid
        return touch if touch is not None else self.last
