"""When to arm the exchange's own dead-man switch: only while it would take no protection.

An exchange's cancel-all-after cancels every order when it trips, reduce-only ones too
(Kraken's CancelAllOrdersAfter "all client orders", OKX's cancel-all-after every order-book
order, Bybit's DCP every order of the product). Armed while a position's stop-loss rests, it
would strip what the runtime's own switch keeps. So the runtime arms it (on a heartbeat) only
while no reduce-only order rests at the venue, disarms it before a reduce-only order is placed,
and never arms one that cannot be switched off again. It stays the backstop for entries should
the venue process die while the account holds no protection.

Which reduce-only orders rest is followed from the venue's executions (every order placed,
changed or closed), learned from its open orders when first needed, and checked again against
them every RECHECK_S while some are believed to rest (an execution missed or out of order can
only make it believe one rests: the switch then stays off, the safe side).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from trademesh.core.domain.model import Order
from trademesh.core.platform.errors import TrademeshError
from trademesh.venues.runtime.venue import Venue

__all__ = ["RECHECK_S", "NativeState", "NativeSwitchPolicy"]

log = logging.getLogger(__name__)

# While reduce-only orders are believed to rest, the venue's open orders are read again this often.
RECHECK_S = 60.0


@dataclass(frozen=True)
class NativeState:
    available: bool
    armed: bool
    detail: str


class NativeSwitchPolicy:
    def __init__(self, venue: Venue) -> None:
        self.venue = venue
        self.armed = False
        self.detail = "none: the exchange has no cancel-all-after (or the venue no credentials)"
        self._resting: dict[str, str] = {}  # reduce-only orders open: order id -> symbol
        self._learned_at: float | None = None  # monotonic time of the last open-orders read
        self._learning: list[Order] | None = None  # executions seen while a read is on its way
        self._placing = 0  # reduce-only placements on their way
        self._arming = False  # an arm call on its way to the exchange
        self._lock = asyncio.Lock()  # one call to the exchange's switch at a time
        self._tasks: set[asyncio.Task[None]] = set()  # heartbeats' calls, held until done

    def state(self) -> NativeState:
        return NativeState(self.venue.native_switch() is not None, self.armed, self.detail)

    def observe(self, order: Order) -> None:
        """Every execution's order: follow the reduce-only orders resting."""
        if self._learning is not None:
            self._learning.append(order)
        _apply(self._resting, order)

    async def before_reduce_only(self) -> None:
        """A reduce-only order is about to be placed: the switch goes off first. A heartbeat
        from now on leaves it off; one reading the open orders does not hold the placement up."""
        self._placing += 1
        if not (self.armed or self._arming):
            return
        async with self._lock:
            if self.armed:
                await self._set(0, "not armed: a reduce-only order is being placed")

    def after_reduce_only(self) -> None:
        self._placing -= 1

    async def heartbeat(self, ttl_ms: int) -> None:
        """Arm it for ttl_ms, or leave it off (0: off) while arming it would risk protection.

        Carried out to the end even when the heartbeat's caller gives up (its deadline): an arm
        cut off mid-call would leave the exchange armed and this policy believing it is not."""
        task = asyncio.create_task(self._heartbeat(ttl_ms), name="exchange dead-man switch")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        await asyncio.shield(task)

    async def _heartbeat(self, ttl_ms: int) -> None:
        switch = self.venue.native_switch()
        if switch is None:
            return
        async with self._lock:
            if ttl_ms == 0:
                if self.armed:
                    await self._set(0, "off: the heartbeat disarmed the dead-man switch")
                return
            if not switch.disarms:
                self.detail = (
                    "never armed: the exchange's switch cancels every order, reduce-only ones too, "
                    "and cannot be switched off again"
                )
                return
            why_not = await self._why_not_arm()
            if why_not is None and not self._placing:  # no await between this check and _arming
                await self._set(ttl_ms, f"armed: no reduce-only order rests (ttl {ttl_ms} ms)")
            elif self.armed:
                await self._set(0, why_not or "not armed: a reduce-only order is being placed")
            else:
                self.detail = why_not or "not armed: a reduce-only order is being placed"

    async def _why_not_arm(self) -> str | None:
        if self._placing:
            return "not armed: a reduce-only order is being placed"
        if self._learned_at is None or (self._resting and time.monotonic() - self._learned_at > RECHECK_S):
            try:
                await self._learn()
            except TrademeshError as exc:
                return f"not armed: the venue's open orders are unknown ({exc})"
        if self._resting:
            return (
                f"not armed while {len(self._resting)} reduce-only order(s) rest: the exchange's "
                "switch would cancel the protection too"
            )
        return None

    async def _learn(self) -> None:
        """The reduce-only orders resting, from the venue's open orders and the executions seen
        while they were being read."""
        self._learning = []
        try:
            orders = await self.venue.open_orders(None)
            resting: dict[str, str] = {}
            for order in [*orders, *self._learning]:
                _apply(resting, order)
        finally:
            self._learning = None
        self._resting = resting
        self._learned_at = time.monotonic()

    async def _set(self, ttl_ms: int, detail: str) -> None:
        self._arming = ttl_ms > 0
        try:
            done = await self.venue.cancel_all_after(ttl_ms)
        finally:
            self._arming = False
        if ttl_ms == 0:
            # A disarm that failed may have left it armed: say so, and try again next time.
            self.armed = not done
            self.detail = detail if done else f"{detail}; disarming failed: it may still be armed"
            if not done:
                log.warning("%s: could not disarm the exchange's dead-man switch", self.venue.name)
        else:
            self.armed = done
            self.detail = detail if done else "not armed: the exchange refused or did not answer"


def _apply(resting: dict[str, str], order: Order) -> None:
    if order.reduce_only and order.status.is_open and order.order_id:
        resting[order.order_id] = order.symbol
    else:
        resting.pop(order.order_id, None)
