"""Funding payments from the perpetual venues (TradeFlow.ListFundingPayments), posted as
FundingEvents ("funding/<venue>/<funding id>": a payment asked for twice posts once).

Every `every_s` each venue is asked for the payments since its cursor: the newest payment
posted, else the books' opening of that venue (what came before is in its opening balances),
else the ledger's start. Spot venues answer none; a venue that cannot list them (FAILED_
PRECONDITION: its exchange has no funding history) is said once and asked no more. The
posting core shares a payment among the strategies holding the position (docs/ledger.md).

The payments come straight from the venue, the fills that made the position through ingest and
the bus: on a loaded machine a payment can come first. A recent payment (younger than HOLD_S)
paid on a position (`position_size`) the books do not hold yet waits for the next round, and
those after it too, rather than going to the unattributed book; an older one posts as it is.
"""

from __future__ import annotations

import asyncio
import logging
import time
from decimal import Decimal, InvalidOperation

import grpc

from trademesh.core.ledger.convert import funding_event
from trademesh.core.ledger.engine.books import Books
from trademesh.core.ledger.engine.chart import AccountCode
from trademesh.core.ledger.engine.events import Event
from trademesh.core.ledger.posting import Poster
from trademesh.core.ledger.venues import LedgerVenues
from trademesh.core.platform.aio.retry import sleep_unless
from trademesh.core.platform.errors import TrademeshError
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

__all__ = ["HOLD_S", "FundingFollower", "books_hold", "funding_event"]

log = logging.getLogger(__name__)

_PAGE = 1000
_PAGES = 20  # per venue and round: the rest comes next round
# How long after its time a payment waits for the books to hold the position it was paid on.
HOLD_S = 30.0


class FundingFollower:
    def __init__(self, venues: LedgerVenues, poster: Poster, every_s: float) -> None:
        self.venues = venues
        self.poster = poster
        self.every_s = every_s
        self.started_ns = time.time_ns()
        self._cursors: dict[str, int] = {}
        self._unable: set[str] = set()

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            for venue in self.venues.names():
                if venue not in self._unable:
                    await self._round(venue)
            if await sleep_unless(stop, self.every_s):
                return

    async def _round(self, venue: str) -> None:
        try:
            since = self._cursors.get(venue)
            if since is None:
                since = await self._start(venue)
            for _ in range(_PAGES):
                payments = await self.venues.funding(venue, since, _PAGE)
                ready = await self._ready(venue, payments)
                await self._post(venue, ready)
                if ready:
                    since = self._cursors[venue] = max(since, ready[-1].ts_ns)
                if len(ready) < len(payments) or len(payments) < _PAGE:
                    return
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.FAILED_PRECONDITION:
                self._unable.add(venue)
                log.warning("ledger: %s lists no funding payments: %s", venue, exc.details())
            else:
                log.info("ledger: funding payments of %s: %s", venue, exc.details())
        except TrademeshError as exc:
            log.info("ledger: funding payments of %s: %s", venue, exc)

    async def _ready(self, venue: str, payments: list[tf.FundingPayment]) -> list[tf.FundingPayment]:
        """The payments up to the first recent one whose position the books do not hold yet."""
        books = (await self.poster.view()).books
        recent_ns = time.time_ns() - int(HOLD_S * 1e9)
        for index, payment in enumerate(payments):
            if payment.ts_ns > recent_ns and not books_hold(books, venue, payment):
                log.debug("ledger: funding %s of %s waits for its position", payment.funding_id, venue)
                return payments[:index]
        return payments

    async def _start(self, venue: str) -> int:
        store = self.poster.store
        row = await store.pool.fetchval(
            "SELECT max(ts_ns) FROM ledger_events WHERE event_id LIKE $1 OR event_id LIKE $2",
            f"funding/{venue}/%", f"opening/{venue}/%",
        )  # fmt: skip
        since = int(row) if row is not None else self.started_ns
        self._cursors[venue] = since
        return since

    async def _post(self, venue: str, payments: list[tf.FundingPayment]) -> None:
        events: list[Event] = []
        for payment in payments:
            try:
                events.append(funding_event(venue, payment))
            except TrademeshError as exc:
                log.warning("ledger: funding payment %s of %s not booked: %s", payment.funding_id, venue, exc)
        await self.poster.post(events)


def books_hold(books: Books, venue: str, payment: tf.FundingPayment) -> bool:
    """Whether the books hold a position in the perpetual when the venue says the payment was
    paid on one (its `position_size` not zero; True when the venue does not say). Whether held at
    all, not how much: a venue may count the position in contracts, the books in the base asset."""
    try:
        size = Decimal(payment.position_size)
    except InvalidOperation:
        return True
    if not size.is_finite() or size == 0:
        return True
    accounts = books.indexed(AccountCode.PERP_QUANTITY, venue, payment.symbol)
    return sum((books.balance(account.key).net_debit for account in accounts.values()), Decimal(0)) != 0
