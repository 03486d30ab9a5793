"""A replayed venue's synthetic levels kept off the engine's book while nothing reads them.

The mirror (trademesh.core.domain.matching.mirror) sets the sim engine's synthetic liquidity to every recorded
snapshot and delta. While none of our orders can meet what a book event or a trade changes, the
engine's work shows nowhere but in its ids: each synthetic order and each trade takes the next
order id or trade id, and our orders' reports carry those. OffBook applies such events to a
plain copy of the levels instead, taking the same ids in the same order, and puts the levels
back into the engine (each synthetic order with its id, its size and its place in the queue)
before anything reads or changes the engine's book: an order or a cancel arriving, a read of
the book, or an event it leaves to the engine. It leaves to the engine (put back first) a trade
without a taker side, a book event that lists a level holding our orders or (a snapshot)
empties one that holds synthetic orders beside ours, or raises a level that could reach our
orders or the other side, and a trade that reaches our orders or meets liquidity at a price
that may trigger our stop. A trade is taken here only once a book event was (the engine is
left as it is until then).

While active, the engine holds only the levels where our orders rest (with the synthetic orders
among them); OffBook holds every other level, price -> [[order id, lots], ...] front first. The
outcome is the engine's: the same executions, fills, ids and queues as applying every event to
it (tests/unit/test_backtest_market.py runs both on random sessions).
"""

from __future__ import annotations

from collections.abc import Callable

from trademesh.core.domain.matching.engine import SYNTHETIC, USER, OrderBook
from trademesh.core.domain.matching.exchange import SimExchange
from trademesh.core.domain.model import Side

__all__ = ["OffBook"]

_BUY, _SELL = Side.BUY, Side.SELL
Queue = list[list[int]]  # [order id, lots], front first


class OffBook:
    __slots__ = ("active", "asks", "bids", "book", "exchange", "front", "symbol")

    def __init__(self, exchange: SimExchange, symbol: str, *, front: bool = False) -> None:
        """`front`: a decrease comes off the front of a level's queue (the mirror's FRONT queue
        rule), else off its back."""
        self.exchange = exchange
        self.symbol = symbol
        self.front = front
        self.book = exchange.book(symbol)
        self.bids: dict[int, Queue] = {}
        self.asks: dict[int, Queue] = {}
        self.active = False

    # ---- in and out of the engine

    def put_back(self) -> None:
        """Every level held here back into the engine, as it would hold it."""
        rest = self.exchange.rest_synthetic
        for side, levels in ((_BUY, self.bids), (_SELL, self.asks)):
            for price, queue in levels.items():
                for order_id, lots in queue:
                    rest(self.symbol, order_id, side, price, lots)
            levels.clear()
        self.active = False

    def _take_out(self) -> None:
        """Every level without our orders out of the engine (their orders keep their ids)."""
        book, cancel = self.book, self.exchange.cancel_synthetic
        for side, levels in ((_BUY, self.bids), (_SELL, self.asks)):
            for price in book.prices(side):
                orders = book.orders_at(side, price)
                if all(o.owner == SYNTHETIC for o in orders):
                    levels[price] = [[o.order_id, o.remaining] for o in orders]
                    for order in orders:
                        cancel(self.symbol, order.order_id)
        self.active = True

    # ---- events

    def snapshot(self, bids: dict[int, int], asks: dict[int, int]) -> bool:
        """Apply a snapshot here (True), or leave it to the engine (False: nothing changed)."""
        if self.active and self.book.empty():  # none of our orders rests: only a crossed snapshot
            top_bid, low_ask = _listed_best(bids, max), _listed_best(asks, min)  # goes to the engine
            if top_bid is not None and low_ask is not None and top_bid >= low_ask:
                return False
            self._apply(bids, asks, True)
            return True
        return self._book_event(bids, asks, whole=True)

    def delta(self, bids: dict[int, int], asks: dict[int, int]) -> bool:
        """Apply a delta here (True), or leave it to the engine (False: nothing changed)."""
        return self._book_event(bids, asks, whole=False)

    def _book_event(self, bids: dict[int, int], asks: dict[int, int], *, whole: bool) -> bool:
        """The mirror's way (decreases on both sides, then increases, each side's levels in the
        event's order), on the levels held here. `whole`: a snapshot (it empties the levels it
        does not list)."""
        if not self._apart_from_ours(bids, asks, whole=whole):
            return False
        if not self.active:
            self._take_out()
        self._apply(bids, asks, whole)
        return True

    def _apply(self, bids: dict[int, int], asks: dict[int, int], whole: bool) -> None:
        """A book event on the levels held here (it meets none of our orders)."""
        front = self.front
        held = (_decrease(self.bids, bids, whole, front), _decrease(self.asks, asks, whole, front))
        apart = front and not whole  # a delta's increase by the FRONT rule: an order of its own
        for levels, listed, reduced in ((self.bids, bids, held[0]), (self.asks, asks, held[1])):
            for price, lots in listed.items():
                if lots:
                    self._increase(levels, price, lots, reduced, apart)

    def trade(self, taker: Side, price: int, lots: int) -> bool:
        """Replay a trade here (True), or leave it to the engine (False: nothing changed)."""
        if not self.active or self.book.would_cross(taker, price):  # it reaches our orders
            return False
        levels = self.asks if taker is _BUY else self.bids
        queue = levels.get(price)
        if queue and self.exchange.stops_reached(self.symbol, price, price):
            return False
        # Stale liquidity better than the trade's price goes first, as the engine's mirror does.
        better = [p for p in levels if (p < price if taker is _BUY else p > price)]
        for stale in better:
            del levels[stale]
        self.exchange.take_order_id()  # the immediate-or-cancel order the engine would submit
        if queue:
            self._consume(levels, price, queue, lots)
        return True

    def walk(self, prices: list[int], depth: int, lots: int) -> bool:
        """A bar's walk through `prices` (ticks) applied at once (True), or left to its visits
        (False: nothing changed). A visit at a price (trademesh.core.backtest.market's
        `_visit`) is the price's level alone on the side a move there meets (a snapshot), a
        taker's trade of `lots` through it, then a bid of `depth` lots a tick below it and an
        ask of `depth` at it (a snapshot). Taken at once only where each visit is the one
        shape here: the levels held are a bid of one order of `depth` a tick below an ask of
        one order of `depth`, every price is above a tick, `lots` exceed `depth`, and our
        orders on the engine's book (no synthetic order among them) and our stops are out of
        every visit's reach. Then each visit takes an order id for the level it moves to (none
        when a level is there), one for the taker, one trade id, and two ids for the bid and
        ask after it: the same ids, levels and last trade as the visits one by one."""
        bids, asks = self.bids, self.asks
        if not self.active or len(bids) != 1 or len(asks) != 1 or lots <= depth:
            return False
        ((bid, bid_queue),) = bids.items()
        ((ask, ask_queue),) = asks.items()
        if ask != bid + 1 or not (_one_order(bid_queue, depth) and _one_order(ask_queue, depth)):
            return False
        low, high = min(ask, *prices), max(ask, *prices)
        if low < 2 or not self._out_of_reach(low, high):
            return False
        taken = 0
        for price in prices:
            taken += 3 if price in (bid, ask) else 4
            bid, ask = price - 1, price
        last = self.exchange.take_order_ids(taken)
        self.exchange.note_trades(self.symbol, len(prices), ask)
        bids.clear()
        asks.clear()
        bids[bid] = [[last - 1, depth]]
        asks[ask] = [[last, depth]]
        return True

    def _out_of_reach(self, low: int, high: int) -> bool:
        """Whether the engine's levels (ours) hold no synthetic order, its bids are below
        `low` - 1 and its asks above `high`, and no stop of ours may trigger between the two."""
        book = self.book
        best_bid, best_ask = book.best_bid(), book.best_ask()
        if (best_bid is not None and best_bid >= low - 1) or (best_ask is not None and best_ask <= high):
            return False
        for side in (_BUY, _SELL):
            for price in book.prices(side):
                if book.owned_at(side, price, SYNTHETIC):
                    return False
        return not self.exchange.stops_reached(self.symbol, low, high)

    def best(self) -> tuple[int | None, int | None]:
        """The best bid and ask, the engine's levels and these together."""
        bid, ask = self.book.best_bid(), self.book.best_ask()
        if self.bids:
            top = max(self.bids)
            bid = top if bid is None else max(bid, top)
        if self.asks:
            top = min(self.asks)
            ask = top if ask is None else min(ask, top)
        return bid, ask

    def top(self) -> tuple[tuple[int, int] | None, tuple[int, int] | None]:
        """The best bid and ask, each (price, lots there, ours included), of the engine's levels
        and these together: what the engine's book shows once they are put back."""
        book = self.book
        return _top(book, _BUY, self.bids, book.best_bid()), _top(book, _SELL, self.asks, book.best_ask())

    # ---- internals

    def _apart_from_ours(self, bids: dict[int, int], asks: dict[int, int], *, whole: bool) -> bool:
        """Whether a book event leaves the levels holding our orders as they are: it lists none
        of them, empties none that holds synthetic orders too (a snapshot, `whole`), and no level
        it raises can reach the other side (our levels, the levels it leaves there, its own)."""
        book = self.book
        others: tuple[list[int], list[int]] = ([], [])  # what each side keeps that is not listed
        for side, listed, kept, mine in (
            (_BUY, bids, others[0], self.bids),
            (_SELL, asks, others[1], self.asks),
        ):
            for price in book.prices(side):  # while active, the levels of our orders only
                if self.active or book.owned_at(side, price, USER):
                    if price in listed or (whole and book.owned_at(side, price, SYNTHETIC)):
                        return False
                    kept.append(price)
                elif not whole and listed.get(price) != 0:
                    kept.append(price)  # synthetic only, taken out with the rest and kept
            if self.active and not whole:
                kept.extend(price for price in mine if listed.get(price) != 0)
        top_bid, low_ask = _listed_best(bids, max), _listed_best(asks, min)
        if top_bid is not None and low_ask is not None and top_bid >= low_ask:
            return False
        if top_bid is not None and others[1] and min(others[1]) <= top_bid:
            return False
        return low_ask is None or not others[0] or max(others[0]) < low_ask

    def _increase(
        self, levels: dict[int, Queue], price: int, lots: int, reduced: set[int], apart: bool
    ) -> None:
        """A level brought up to `lots`: the missing lots join its last synthetic order, which
        goes to the back under a new id (the mirror's join at the back), or make a new one (and
        always when `apart`: a delta's increase by the FRONT rule, one order per increase)."""
        queue = levels.get(price) if price in reduced else None
        present = sum(q[1] for q in queue) if queue else 0
        if lots <= present:
            return
        order_id = self.exchange.take_order_id()
        if not queue:
            levels[price] = [[order_id, lots - present]]
        elif apart:
            queue.append([order_id, lots - present])
        else:
            queue.append([order_id, lots - present + queue.pop()[1]])

    def _consume(self, levels: dict[int, Queue], price: int, queue: Queue, lots: int) -> None:
        """A trade's lots taken from the front of a level, one trade per order it meets."""
        count = 0
        while lots and queue:
            head = queue[0]
            take = min(lots, head[1])
            count += 1
            lots -= take
            head[1] -= take
            if head[1] == 0:
                queue.pop(0)
        if not queue:
            del levels[price]
        self.exchange.note_trades(self.symbol, count, price)


def _top(book: OrderBook, side: Side, levels: dict[int, Queue], best: int | None) -> tuple[int, int] | None:
    """One side's best price and its lots: the better of the engine's best (`best`) and the best
    held here; both (not while active: a level is in one place) add up, as put back."""
    held = (max(levels) if side is _BUY else min(levels)) if levels else None
    if held is None or (best is not None and (best > held if side is _BUY else best < held)):
        return None if best is None else (best, book.level_total(side, best))
    lots = sum(q[1] for q in levels[held])
    if best == held:
        lots += book.level_total(side, held)
    return held, lots


def _one_order(queue: Queue, lots: int) -> bool:
    """Whether a level holds one order, of `lots`."""
    return len(queue) == 1 and queue[0][1] == lots


def _listed_best(levels: dict[int, int], best: Callable[..., int]) -> int | None:
    """The best price an event lists with a size (`best`: max for bids, min for asks)."""
    if not levels:
        return None
    if all(levels.values()):  # none removed: a snapshot's, mostly
        return best(levels)
    return best((p for p, n in levels.items() if n), default=None)


def _decrease(levels: dict[int, Queue], listed: dict[int, int], whole: bool, front: bool) -> set[int]:
    """A book event's decreases: the levels it lists cut down to their listed size (from the
    back, the newest synthetic orders first; from the front, the oldest first, when `front`),
    and a snapshot's (`whole`) others emptied. The prices that held orders before, whose
    increase reads them again."""
    if whole:
        for price in [p for p in levels if p not in listed]:
            del levels[price]
    reduced: set[int] = set()
    for price, lots in listed.items():
        queue = levels.get(price)
        if queue:
            reduced.add(price)
            (_cut_front if front else _cut)(queue, lots)
            if not queue:
                del levels[price]
    return reduced


def _cut(queue: Queue, keep: int) -> None:
    excess = sum(q[1] for q in queue) - keep
    while excess > 0:
        last = queue[-1]
        if last[1] > excess:
            last[1] -= excess
            return
        excess -= last[1]
        queue.pop()


def _cut_front(queue: Queue, keep: int) -> None:
    excess = sum(q[1] for q in queue) - keep
    while excess > 0:
        first = queue[0]
        if first[1] > excess:
            first[1] -= excess
            return
        excess -= first[1]
        queue.pop(0)
