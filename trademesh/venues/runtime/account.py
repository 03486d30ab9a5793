"""Stream the account (balances and positions) to every TradeFlow.StreamAccount caller.

A subscriber first gets a snapshot read when it came, then, each time the account changed,
the balances and positions whose value changed (their new values: a later change makes an
earlier one moot, so a subscriber behind gets its queued changes merged into one response).

How the hub learns that the account changed is the venue's `account_feed`:
- PUSH: the venue says so. The runtime touches the hub on every execution (an order's locks
  and a fill's balances and position change only with one), and a venue whose exchange pushes
  account updates (a private balance stream) touches it through VenueContext.on_account.
- POLL: the hub reads the account every `poll_interval_s` while someone listens, and at once
  after each of the venue's fills.

A derivatives position's margin figures (mark price, unrealised PnL, margin ratio) move with the
market, not with executions. A venue whose engine reckons them (Venue.margin_moves_with_market:
the sim and the paper venues) is read again `account_mark_interval_s` after the last read while
someone listens and the last read held an open position with margin figures: the positions whose
figures moved are sent, at most once an interval; a spot-only or flat account costs no read.

Either way, each change is found by reading the account (Venue.balances, Venue.positions) and
comparing it with the last read: what a subscriber gets is what GetBalances and GetPositions
would answer, never a sum kept beside them. Reads happen only while someone listens.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from decimal import Decimal

from trademesh.core.domain.convert import balance_to_pb, position_to_pb
from trademesh.core.domain.model import Balance, Position
from trademesh.core.platform.aio.cancellation import cancel_and_wait
from trademesh.core.platform.errors import ResourceExhausted, TrademeshError
from trademesh.core.platform.rpc.outbox import Outbox
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf
from trademesh.venues.runtime.venue import AccountFeed, Venue

__all__ = ["AccountFeed", "AccountHub", "AccountState", "AccountSubscriber", "changes", "margined"]

log = logging.getLogger(__name__)

_MERGE_MAX = 1000


@dataclass(frozen=True)
class AccountState:
    balances: dict[str, Balance]
    positions: dict[str, Position]
    as_of_ns: int

    def response(self, snapshot: bool) -> tf.StreamAccountResponse:
        return tf.StreamAccountResponse(
            snapshot=snapshot,
            balances=[balance_to_pb(self.balances[a]) for a in sorted(self.balances)],
            positions=[position_to_pb(self.positions[s]) for s in sorted(self.positions)],
            as_of_ns=self.as_of_ns,
        )


def changes(before: AccountState, after: AccountState) -> AccountState | None:
    """What changed from `before` to `after` (a position gone is one of size 0); None: nothing."""
    balances = {a: b for a, b in after.balances.items() if before.balances.get(a) != b}
    for asset in before.balances.keys() - after.balances.keys():
        balances[asset] = Balance(asset=asset, free=Decimal(0), locked=Decimal(0))
    positions = {s: p for s, p in after.positions.items() if before.positions.get(s) != p}
    for symbol in before.positions.keys() - after.positions.keys():
        positions[symbol] = replace(before.positions[symbol], size=Decimal(0), entry_price=None)
    if not balances and not positions:
        return None
    return AccountState(balances, positions, after.as_of_ns)


def margined(state: AccountState) -> bool:
    """Whether the account holds an open position with margin figures (they move with the mark)."""
    return any(p.size and p.margin is not None for p in state.positions.values())


class AccountSubscriber:
    def __init__(self, queue_size: int) -> None:
        self.outbox = Outbox[tf.StreamAccountResponse](queue_size)

    async def responses(self) -> AsyncIterator[tf.StreamAccountResponse]:
        """Queued changes, merged when several wait (the latest value of each wins)."""
        async for batch in self.outbox.batches(_MERGE_MAX):
            yield batch[0] if len(batch) == 1 else _merged(batch)


def _merged(batch: list[tf.StreamAccountResponse]) -> tf.StreamAccountResponse:
    balances: dict[str, tf.Balance] = {}
    positions: dict[str, tf.Position] = {}
    for item in batch:
        balances.update((b.asset, b) for b in item.balances)
        positions.update((p.symbol, p) for p in item.positions)
    return tf.StreamAccountResponse(
        balances=[balances[a] for a in sorted(balances)],
        positions=[positions[s] for s in sorted(positions)],
        as_of_ns=batch[-1].as_of_ns,
    )


class AccountHub:
    def __init__(self, venue: Venue, queue_size: int = 1000) -> None:
        self.venue = venue
        self.queue_size = queue_size
        self.subscribers: set[AccountSubscriber] = set()
        self._changed = asyncio.Event()
        self._last: AccountState | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def feed(self) -> AccountFeed:
        return self.venue.account_feed

    def touch(self) -> None:
        """The account may have changed: read it again (only while someone listens)."""
        if self.subscribers:
            self._changed.set()

    async def read(self) -> AccountState:
        balances = await self.venue.balances()
        positions = await self.venue.positions(None)
        as_of_ns = self.venue.account_as_of_ns()  # no await since the last read: its moment
        return AccountState({b.asset: b for b in balances}, {p.symbol: p for p in positions}, as_of_ns)

    async def subscribe(self) -> tuple[AccountSubscriber, tf.StreamAccountResponse]:
        """A new subscriber and its snapshot; every change after the snapshot reaches it."""
        state = await self.read()
        subscriber = AccountSubscriber(self.queue_size)
        self.subscribers.add(subscriber)  # no await since the read: no change can fall between
        if self._task is None:
            self._last = state
            self._task = asyncio.create_task(self._watch(), name=f"{self.venue.name}-account")
        return subscriber, state.response(snapshot=True)

    def unsubscribe(self, subscriber: AccountSubscriber) -> None:
        self.subscribers.discard(subscriber)
        if not self.subscribers and self._task is not None:
            self._task.cancel()
            self._task, self._last = None, None

    def end_all(self) -> int:
        ended = list(self.subscribers)
        for subscriber in ended:
            subscriber.outbox.end()
        return len(ended)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            await cancel_and_wait(task)

    def _wait_s(self) -> float | None:
        """How long to wait for a touch before reading anyway (None: until touched)."""
        if self.feed is AccountFeed.POLL:
            return self.venue.account_poll_interval_s
        if self.venue.margin_moves_with_market and self._last is not None and margined(self._last):
            return self.venue.account_mark_interval_s
        return None

    async def _watch(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), self._wait_s())
            self._changed.clear()
            try:
                state = await self.read()
            except TrademeshError as exc:
                log.warning("%s: reading the account failed: %s", self.venue.name, exc)
                continue
            self._publish(state)

    def _publish(self, state: AccountState) -> None:
        before, self._last = self._last, state
        changed = None if before is None else changes(before, state)
        if changed is None:
            return
        response = changed.response(snapshot=False)
        for subscriber in list(self.subscribers):
            if not subscriber.outbox.offer(response):
                self.subscribers.discard(subscriber)
                subscriber.outbox.end(
                    ResourceExhausted("account subscriber fell behind; open StreamAccount again")
                )
