"""Order book: spread and top-of-book imbalance."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["BookImbalance", "Spread"]

Levels = Sequence[tuple[float, float]]


class Spread:
    """Bid-ask spread: (spread, bps, mid) with spread = best ask - best bid,
    mid = (best bid + best ask) / 2 and bps = spread / mid * 10,000.

    Stateless; warm after 1 book with both sides (None while a side is empty or mid <= 0)."""

    __slots__ = ("warmup",)

    def __init__(self) -> None:
        self.warmup = 1

    def update(self, bids: Levels, asks: Levels) -> tuple[float, float, float] | None:
        if not bids or not asks:
            return None
        bid = bids[0][0]
        ask = asks[0][0]
        mid = (bid + ask) / 2.0
        if not mid > 0.0:
            return None
        spread = ask - bid
        return spread, spread / mid * 10_000.0, mid

    def held(self) -> int:
        return 0


class BookImbalance:
    """Order-book imbalance over the top L levels, -1..1:
    (Σ bid sizes - Σ ask sizes) / (Σ bid sizes + Σ ask sizes), each sum over the best L levels
    of its side (fewer if the book is shallower); 0.0 when both sums are 0, None for an empty
    book. O(L) per book, L a parameter (no window in time). Warm after 1 book."""

    __slots__ = ("levels", "warmup")

    def __init__(self, levels: int) -> None:
        self.levels = levels
        self.warmup = 1

    def update(self, bids: Levels, asks: Levels) -> float | None:
        if not bids and not asks:
            return None
        bid_size = _depth(bids, self.levels)
        ask_size = _depth(asks, self.levels)
        total = bid_size + ask_size
        return 0.0 if total <= 0.0 else (bid_size - ask_size) / total

    def held(self) -> int:
        return 0


def _depth(levels: Levels, count: int) -> float:
    total = 0.0
    for index in range(min(count, len(levels))):
        total += levels[index][1]
    return total
