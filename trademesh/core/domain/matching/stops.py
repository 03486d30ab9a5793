"""Untriggered stop orders of one symbol of the sim venue, waiting for the last trade to cross them.

A stop waits outside the book. A buy stop triggers when a trade prints at or above its trigger
price, a sell stop when one prints at or below it. The exchange reports each operation's trades
as the range of their prices (lowest, highest): every trade of the range counts, so a sweep
through a trigger triggers the stop even when the operation's last trade came back across it.

Integer ticks and engine order ids only, like the engine. One heap per side with lazy deletion
(a cancelled stop stays in its heap until it reaches the top); `due` pops what a range triggers,
in placement order (the engine's order ids grow with time).
"""

from __future__ import annotations

import heapq

from trademesh.core.domain.model import Side

__all__ = ["StopBook"]


class StopBook:
    __slots__ = ("_at", "_buys", "_sells", "live")

    def __init__(self) -> None:
        self._buys: list[tuple[int, int]] = []  # (trigger, id): the lowest trigger first
        self._sells: list[tuple[int, int]] = []  # (-trigger, id): the highest trigger first
        # The waiting stops' sides by order id; read it (the hot path tests it for emptiness), never
        # change it from outside.
        self.live: dict[int, Side] = {}
        # Each waiting stop's trigger: a heap entry of an earlier trigger (the stop was moved,
        # trademesh.core.domain.matching.exchange's amendment) is stale, dropped when it comes up.
        self._at: dict[int, int] = {}

    def __len__(self) -> int:
        return len(self.live)

    def __bool__(self) -> bool:
        return bool(self.live)

    def __contains__(self, order_id: int) -> bool:
        return order_id in self.live

    def add(self, order_id: int, side: Side, trigger: int) -> None:
        if order_id in self.live:
            raise ValueError(f"stop {order_id} is already waiting")
        self.live[order_id] = side
        self._at[order_id] = trigger
        if side is Side.BUY:
            heapq.heappush(self._buys, (trigger, order_id))
        else:
            heapq.heappush(self._sells, (-trigger, order_id))

    def remove(self, order_id: int) -> bool:
        """Stop waiting for this order (cancelled); False when it is not waiting."""
        removed = self.live.pop(order_id, None) is not None
        self._at.pop(order_id, None)
        self._compact()
        return removed

    def due(self, low: int, high: int) -> list[int]:
        """The stops that trades between `low` and `high` (ticks) trigger, removed, oldest first."""
        out: list[int] = []
        buys, sells = self._buys, self._sells
        while buys and buys[0][0] <= high:
            trigger, order_id = heapq.heappop(buys)
            self._pop(order_id, trigger, out)
        while sells and -sells[0][0] >= low:
            trigger, order_id = heapq.heappop(sells)
            self._pop(order_id, -trigger, out)
        self._compact()
        out.sort()
        return out

    def _pop(self, order_id: int, trigger: int, out: list[int]) -> None:
        if self._at.get(order_id) == trigger and self.live.pop(order_id, None) is not None:
            del self._at[order_id]
            out.append(order_id)

    def reached(self, low: int, high: int) -> bool:
        """Whether due(low, high) may trigger a stop, without popping any (a cancelled stop not
        yet dropped from its heap counts: the answer errs towards yes)."""
        buys, sells = self._buys, self._sells
        return bool(buys and buys[0][0] <= high) or bool(sells and -sells[0][0] >= low)

    def _compact(self) -> None:
        """Drop cancelled entries once they outnumber the waiting stops (bounded memory)."""
        if len(self._buys) + len(self._sells) <= 2 * len(self.live) + 32:
            return
        self._buys = [(t, i) for t, i in self._buys if self._at.get(i) == t]
        self._sells = [(t, i) for t, i in self._sells if self._at.get(i) == -t]
        heapq.heapify(self._buys)
        heapq.heapify(self._sells)
