"""A venue's funding payments relayed into funding.{<venue>} (bus.v1.FundingPayments), whoever polls
them: ingest over gRPC (trademesh.core.ingest.funding) or the venue itself in process
(trademesh.venues.runtime.direct).

Every poll asks for the payments since the last one published (`since_ns` is inclusive: those at
the last funding time are asked again and left out by their ids) and publishes the new ones as one
entry; a repeat that slips through (a restart between publishing and noting) is recorded once:
the recorder's key is the funding id. It goes on from the stream's last entry after a restart.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from trademesh.bus.v1 import bus_pb2 as bus
from trademesh.core.platform.bus.codec import encode_funding
from trademesh.core.platform.bus.names import funding_stream
from trademesh.core.platform.bus.reads import read_last
from trademesh.core.platform.bus.redis import BusRedis
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

__all__ = ["FundingRelay", "ListPage", "resume_funding"]

log = logging.getLogger(__name__)

PAGE = 1000
_PAGES = 20  # per poll: the rest comes next poll

# One page of the venue's payments: (since_ns inclusive, limit) -> oldest first.
ListPage = Callable[[int, int], Awaitable[list[tf.FundingPayment]]]
# Publishes a whole encoded bus Envelope to a stream.
Publish = Callable[[str, bytes], Awaitable[None]]


class FundingRelay:
    def __init__(self, venue: str, publish: Publish, source: str, every_s: float) -> None:
        self.venue = venue
        self.stream = funding_stream(venue)
        self.every_s = every_s
        # The last funding time published, and the ids of its payments.
        self.since_ns = 0
        self.seen: set[str] = set()
        self.published = 0
        self._publish = publish
        self._source = source

    def note(self, batch: bus.FundingPayments) -> None:
        """Where to go on from: the last payments published (from the bus at start)."""
        self._advance(list(batch.payments))

    def mark_bus_loss(self, since_ns: int) -> None:
        """The bus lost entries: ask again from then (the recorder keeps a payment once)."""
        self.since_ns, self.seen = min(self.since_ns, since_ns), set()

    async def poll_with(self, list_page: ListPage) -> int:
        """The payments since the last published, to the bus; how many were new."""
        new_total = 0
        for _ in range(_PAGES):
            payments = await list_page(self.since_ns, PAGE)
            new = [p for p in payments if p.ts_ns > self.since_ns or p.funding_id not in self.seen]
            if new:
                await self._publish(self.stream, encode_funding(self._source, self.venue, new))
                self._advance(new)
                self.published += len(new)
                new_total += len(new)
            if len(payments) < PAGE or not new:
                break
        return new_total

    def _advance(self, payments: list[tf.FundingPayment]) -> None:
        for payment in payments:
            if payment.ts_ns > self.since_ns:
                self.since_ns, self.seen = payment.ts_ns, set()
            if payment.ts_ns == self.since_ns:
                self.seen.add(payment.funding_id)


async def resume_funding(redis: BusRedis, relay: FundingRelay, who: str = "ingest") -> None:
    """Where the last run stopped: the last entry of funding.{<venue>} holds its last payments."""
    envelope = await read_last(redis, relay.stream, "funding")
    if envelope is not None:
        relay.note(envelope.funding)
        log.info("%s %s: will go on after funding time %d", who, relay.stream, relay.since_ns)
