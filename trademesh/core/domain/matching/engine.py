"""Price-time-priority order book and matching engine for one symbol of the sim venue.

Prices are integer ticks and sizes integer lots: the engine never sees a Decimal, which keeps
it exact and cheap enough for the synthetic market's event rate. Conversion to and from
Decimal happens in the exchange, with the instrument's tick and lot sizes.

Best prices come from one heap per side with lazy deletion: a price stays in its heap after
its level empties and is dropped when it reaches the top. A heap is rebuilt from the live
levels when stale entries outnumber them, so memory stays bounded under churn.

Cancelled orders are also removed lazily from their level's queue (marked with 0 remaining),
so cancelling is O(1); a queue is compacted when dead entries outnumber live ones.

A submit may carry a maker cap (``MakerCap``): before a USER order in the book fills, the cap
says how many lots it may still fill (None: no limit). An order above its cap is trimmed to it
in place (removed when the cap is 0) and noted in ``MatchResult.trimmed``: the sim's reduce-only
orders never fill past the position they reduce, even within one sweep.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable
from typing import NamedTuple, NoReturn

from trademesh.core.domain.model import Side, TimeInForce
from trademesh.core.platform.errors import AlreadyExists, InvalidArgument

__all__ = [
    "SYNTHETIC",
    "USER",
    "LevelChange",
    "MakerCap",
    "Match",
    "MatchResult",
    "OrderBook",
    "Resting",
]

SYNTHETIC = 0
USER = 1

# (side, price in ticks, new total lots at that price); a total of 0 means the level is gone.
LevelChange = tuple[Side, int, int]

_COMPACT_SLACK = 32

# Enum member lookups cost ~0.1 us each on Python 3.11; the hot path uses these instead.
_BUY = Side.BUY
_GTC = TimeInForce.GTC
_FOK = TimeInForce.FOK


class Resting:
    """An order resting in the book; read it, never mutate it from outside the book."""

    __slots__ = ("order_id", "owner", "price", "remaining", "side")

    def __init__(self, order_id: int, owner: int, side: Side, price: int, remaining: int) -> None:
        self.order_id = order_id
        self.owner = owner
        self.side = side
        self.price = price
        self.remaining = remaining

    def __repr__(self) -> str:
        return (
            f"Resting({self.order_id}, owner={self.owner}, {self.side.value} {self.remaining}@{self.price})"
        )


class Match(NamedTuple):
    maker_id: int
    maker_owner: int
    taker_id: int
    price: int
    lots: int


# (maker order id, the submit's fills so far) -> the lots that maker may still fill (None: any).
MakerCap = Callable[[int, list[Match]], int | None]


class MatchResult:
    """What one submit did: fills in execution order, what rested or expired, level changes,
    and the USER makers its cap trimmed (their ids, in the order it met them)."""

    __slots__ = ("changes", "expired", "fills", "fok_killed", "rejected_post_only", "rested", "trimmed")

    def __init__(self) -> None:
        self.fills: list[Match] = []
        self.changes: list[LevelChange] = []
        self.trimmed: list[int] = []
        self.rested = 0
        self.expired = 0
        self.rejected_post_only = False
        self.fok_killed = False

    @property
    def filled(self) -> int:
        return sum(fill.lots for fill in self.fills)

    def __repr__(self) -> str:
        return (
            f"MatchResult(fills={self.fills}, rested={self.rested}, expired={self.expired}, "
            f"rejected_post_only={self.rejected_post_only}, fok_killed={self.fok_killed}, "
            f"changes={self.changes})"
        )


class _Level:
    __slots__ = ("live", "queue", "total")

    def __init__(self) -> None:
        self.queue: deque[Resting] = deque()
        self.total = 0
        self.live = 0


class _BookSide:
    """One side's levels; heap keys are prices for asks and negated prices for bids."""

    __slots__ = ("heap", "levels", "side", "sign")

    def __init__(self, side: Side) -> None:
        self.side = side
        self.sign = -1 if side is _BUY else 1
        self.levels: dict[int, _Level] = {}
        self.heap: list[int] = []

    def best(self) -> int | None:
        heap, levels, sign = self.heap, self.levels, self.sign
        while heap:
            price = heap[0] * sign
            if price in levels:
                return price
            heapq.heappop(heap)
        return None

    def level_for(self, price: int) -> _Level:
        level = self.levels.get(price)
        if level is None:
            level = self.levels[price] = _Level()
            self._push(price)
        return level

    def _push(self, price: int) -> None:
        heap = self.heap
        if len(heap) > 2 * len(self.levels) + _COMPACT_SLACK:
            heap[:] = [p * self.sign for p in self.levels]
            heapq.heapify(heap)
        else:
            heapq.heappush(heap, price * self.sign)

    def is_better_or_equal(self, price: int, limit: int) -> bool:
        """Whether a resting price on this side is reachable by a taker limited at `limit`."""
        return price * self.sign <= limit * self.sign

    def reaches(self, limit: int | None) -> bool:
        """Whether a taker limited at `limit` (None: market) would trade against this side now."""
        best = self.best()
        return best is not None and (limit is None or best * self.sign <= limit * self.sign)

    def prices_in_order(self, limit: int | None) -> list[int]:
        reachable = [p for p in self.levels if limit is None or self.is_better_or_equal(p, limit)]
        reachable.sort(reverse=self.sign < 0)
        return reachable


class OrderBook:
    """Price-time-priority book for one symbol. Self-matching is allowed."""

    __slots__ = ("_asks", "_bids", "_index", "symbol")

    def __init__(self, symbol: str = "") -> None:
        self.symbol = symbol
        self._bids = _BookSide(_BUY)
        self._asks = _BookSide(Side.SELL)
        self._index: dict[int, Resting] = {}

    # ---- reads

    def best_bid(self) -> int | None:
        return self._bids.best()

    def best_ask(self) -> int | None:
        return self._asks.best()

    def depth(self, side: Side, n: int | None = None) -> list[tuple[int, int]]:
        """Aggregated levels best first: (price ticks, total lots)."""
        book_side = self._side(side)
        levels = book_side.levels
        if n is None:
            prices = sorted(levels, reverse=book_side.sign < 0)
        elif book_side.sign < 0:
            prices = heapq.nlargest(n, levels)
        else:
            prices = heapq.nsmallest(n, levels)
        return [(p, levels[p].total) for p in prices]

    def level_total(self, side: Side, price: int) -> int:
        level = self._side(side).levels.get(price)
        return 0 if level is None else level.total

    def orders_at(self, side: Side, price: int) -> list[Resting]:
        level = self._side(side).levels.get(price)
        return [] if level is None else [o for o in level.queue if o.remaining]

    def owned_at(self, side: Side, price: int, owner: int) -> list[Resting]:
        """One owner's orders resting at a price, in queue order: what a replayed book reads
        of its synthetic liquidity at each level of each snapshot, without copying the rest."""
        level = (self._bids if side is _BUY else self._asks).levels.get(price)
        if level is None:
            return []
        return [o for o in level.queue if o.owner == owner and o.remaining]

    def last_at(self, side: Side, price: int) -> Resting | None:
        """The last order in a level's queue (None when nothing rests there)."""
        level = (self._bids if side is _BUY else self._asks).levels.get(price)
        if level is None:
            return None
        for order in reversed(level.queue):
            if order.remaining:
                return order
        return None

    def empty(self) -> bool:
        """Whether no order rests on either side."""
        return not (self._bids.levels or self._asks.levels)

    def prices(self, side: Side) -> list[int]:
        """The prices where orders rest on a side, in no particular order (depth() sorts)."""
        return list(self._side(side).levels)

    def resting(self, order_id: int) -> Resting | None:
        return self._index.get(order_id)

    def __len__(self) -> int:
        return len(self._index)

    def would_cross(self, side: Side, price: int) -> bool:
        return self._opposite(side).reaches(price)

    def fillable(self, side: Side, price: int | None, lots: int) -> int:
        """Lots a taker could fill right now, counted up to `lots` (stops early once reached)."""
        return self._fillable(self._opposite(side), price, lots)

    @staticmethod
    def _fillable(opp: _BookSide, price: int | None, lots: int) -> int:
        total = 0
        for level_price, level in opp.levels.items():
            if price is None or opp.is_better_or_equal(level_price, price):
                total += level.total
                if total >= lots:
                    return lots
        return total

    def preview(self, side: Side, price: int | None, lots: int) -> list[tuple[int, int]]:
        """The (price, lots) a taker would fill now, in order, without touching the book."""
        opp = self._opposite(side)
        out: list[tuple[int, int]] = []
        for level_price in opp.prices_in_order(price):
            if lots == 0:
                break
            take = min(lots, opp.levels[level_price].total)
            out.append((level_price, take))
            lots -= take
        return out

    # ---- writes

    def submit(
        self,
        order_id: int,
        owner: int,
        side: Side,
        price: int | None,
        lots: int,
        tif: TimeInForce,
        post_only: bool = False,
        cap: MakerCap | None = None,
    ) -> MatchResult:
        """Limit order when `price` is given, market order (never rests) when it is None.
        `cap` limits what USER makers may fill (the module's docstring)."""
        if lots <= 0 or (price is not None and price <= 0) or order_id in self._index:
            self._refuse(order_id, price, lots)
        own, opp = (self._bids, self._asks) if side is _BUY else (self._asks, self._bids)
        result = MatchResult()
        if post_only and (price is None or opp.reaches(price)):
            result.rejected_post_only = True
            return result
        if tif is _FOK and self._fillable(opp, price, lots) < lots:
            result.fok_killed = True
            result.expired = lots
            return result
        remaining = self._take(order_id, opp, price, lots, result, cap) if opp.reaches(price) else lots
        if remaining == 0:
            return result
        if price is None or tif is not _GTC:
            result.expired = remaining
        else:
            result.rested = remaining
            result.changes.append(self._rest(own, Resting(order_id, owner, side, price, remaining)))
        return result

    def cancel(self, order_id: int) -> tuple[int, LevelChange | None]:
        """Remove a resting order: (lots removed, level change); (0, None) if it is not resting."""
        order = self._index.pop(order_id, None)
        if order is None:
            return 0, None
        book_side = self._bids if order.side is _BUY else self._asks
        level = book_side.levels[order.price]
        lots, order.remaining = order.remaining, 0
        level.total -= lots
        level.live -= 1
        if level.live == 0:
            del book_side.levels[order.price]
        elif len(level.queue) > 2 * level.live + _COMPACT_SLACK:
            level.queue = deque(o for o in level.queue if o.remaining)
        return lots, (order.side, order.price, level.total)

    def reduce(self, order_id: int, lots: int) -> tuple[int, LevelChange | None]:
        """Take up to `lots` off a resting order in place: it keeps its queue position (what is
        left of it still fills before the orders behind it). Taking all of it is a cancel.
        (lots removed, level change); (0, None) if it is not resting."""
        if lots <= 0:
            raise InvalidArgument.field("lots", f"must be at least one lot, got {lots} lots")
        order = self._index.get(order_id)
        if order is None:
            return 0, None
        if lots >= order.remaining:
            return self.cancel(order_id)
        level = self._side(order.side).levels[order.price]
        order.remaining -= lots
        level.total -= lots
        return lots, (order.side, order.price, level.total)

    # ---- internals

    def _side(self, side: Side) -> _BookSide:
        return self._bids if side is _BUY else self._asks

    def _opposite(self, side: Side) -> _BookSide:
        return self._asks if side is _BUY else self._bids

    def _refuse(self, order_id: int, price: int | None, lots: int) -> NoReturn:
        if lots <= 0:
            raise InvalidArgument.field("size", f"must be at least one lot, got {lots} lots")
        if price is not None and price <= 0:
            raise InvalidArgument.field("price", f"must be positive, got {price} ticks")
        raise AlreadyExists(f"order {order_id} is already resting in {self.symbol}")

    def _rest(self, own: _BookSide, order: Resting) -> LevelChange:
        level = own.level_for(order.price)
        level.queue.append(order)
        level.total += order.remaining
        level.live += 1
        self._index[order.order_id] = order
        return own.side, order.price, level.total

    def _take(
        self,
        taker_id: int,
        opp: _BookSide,
        limit: int | None,
        lots: int,
        result: MatchResult,
        cap: MakerCap | None,
    ) -> int:
        while lots:
            best = opp.best()
            if best is None or (limit is not None and not opp.is_better_or_equal(best, limit)):
                break
            level = opp.levels[best]
            lots = self._take_level(level, best, taker_id, lots, result, cap)
            result.changes.append((opp.side, best, level.total))
            if level.live == 0:
                del opp.levels[best]
        return lots

    def _take_level(
        self, level: _Level, price: int, taker_id: int, lots: int, result: MatchResult, cap: MakerCap | None
    ) -> int:
        queue, fills = level.queue, result.fills
        while lots and queue:
            maker = queue[0]
            if maker.remaining == 0:  # cancelled earlier, removed lazily
                queue.popleft()
                continue
            if cap is not None and maker.owner == USER and not self._within_cap(level, maker, cap, result):
                continue  # trimmed to nothing: gone from the level
            take = min(lots, maker.remaining)
            fills.append(Match(maker.order_id, maker.owner, taker_id, price, take))
            maker.remaining -= take
            level.total -= take
            lots -= take
            if maker.remaining == 0:
                queue.popleft()
                level.live -= 1
                del self._index[maker.order_id]
        return lots

    def _within_cap(self, level: _Level, maker: Resting, cap: MakerCap, result: MatchResult) -> bool:
        """Trim a USER maker to what its cap lets it fill now; False when that is nothing (it is
        then out of the level, as a cancel would leave it)."""
        room = cap(maker.order_id, result.fills)
        if room is None or room >= maker.remaining:
            return True
        result.trimmed.append(maker.order_id)
        level.total -= maker.remaining - max(room, 0)
        maker.remaining = max(room, 0)
        if maker.remaining:
            return True
        level.queue.popleft()
        level.live -= 1
        del self._index[maker.order_id]
        return False
