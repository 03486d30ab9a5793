"""An L2 book kept from the deltas that follow a snapshot (the venue runtime's and the bridge's).

New subscribers get their snapshot from here, so a snapshot plus the deltas that
follow it always reproduce the venue's book. Levels are keyed by the exact
decimal strings the venue sent; ordering converts to Decimal only for snapshots.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Protocol

__all__ = ["L2Book", "Level", "WireLevel", "is_zero"]

Level = tuple[str, str]


class WireLevel(Protocol):
    """A level as the wire gives it (marketdata.v1.BookLevel): its price and size strings."""

    @property
    def price(self) -> str: ...

    @property
    def size(self) -> str: ...


def is_zero(size: str) -> bool:
    # "0", "0.000", "-0": no digit but zeros. Cheaper than Decimal on the hot path.
    return size.lstrip("-").strip("0.") == ""


class L2Book:
    def __init__(self) -> None:
        self.sequence = 0
        self.bids: dict[str, str] = {}
        self.asks: dict[str, str] = {}

    def replace(self, sequence: int, bids: Iterable[Level], asks: Iterable[Level]) -> None:
        self.sequence = sequence
        self.bids = {price: size for price, size in bids if not is_zero(size)}
        self.asks = {price: size for price, size in asks if not is_zero(size)}

    def apply(self, sequence: int, bids: Iterable[Level], asks: Iterable[Level]) -> None:
        self.sequence = sequence
        _apply_side(self.bids, bids)
        _apply_side(self.asks, asks)

    def apply_wire(self, sequence: int, bids: Iterable[WireLevel], asks: Iterable[WireLevel]) -> None:
        """apply() for the wire's levels, each read where it is (no tuples made: the bridge
        applies every book delta on the bus)."""
        self.sequence = sequence
        if bids:  # a delta mostly changes one side: an empty wire list is not iterated (it costs)
            _apply_wire_side(self.bids, bids)
        if asks:
            _apply_wire_side(self.asks, asks)

    def snapshot(self, depth: int | None = None) -> tuple[list[Level], list[Level]]:
        """Bids and asks, best first."""
        bids = sorted(self.bids.items(), key=lambda lv: Decimal(lv[0]), reverse=True)
        asks = sorted(self.asks.items(), key=lambda lv: Decimal(lv[0]))
        return bids[:depth], asks[:depth]


def _apply_side(side: dict[str, str], levels: Iterable[Level]) -> None:
    for price, size in levels:
        if is_zero(size):
            side.pop(price, None)
        else:
            side[price] = size


def _apply_wire_side(side: dict[str, str], levels: Iterable[WireLevel]) -> None:
    for level in levels:
        price, size = level.price, level.size
        if is_zero(size):
            side.pop(price, None)
        else:
            side[price] = size
