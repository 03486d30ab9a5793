"""One venue's funding payments polled into one bus stream: TradeFlow.ListFundingPayments ->
funding.{<venue>} (bus.v1.FundingPayments), which the recorder keeps in `funding`.

A venue's MarketData carries no funding (no channel in the contract), but its funding history
does, with the rate applied where the venue says it (the sim and Deribit in the payment; the
Binance USD-M and OKX connectors from the venue's rate history, as their income and bills carry
none: venues/live/funding_rates.py). So ingest asks, every `every_s`, for the payments since the last
one it published, under the venue's lease like its other streams, and publishes the new ones
as one entry. It resumes from the bus's last entry after a restart. The request's since_ns is
inclusive: the payments at the last funding time it has are asked again and left out by their
ids here (and a repeat that slips through, a restart between publishing and noting, is recorded
once: the recorder's key is the funding id). A spot venue answers none, and a venue that cannot
list them (FAILED_PRECONDITION, UNIMPLEMENTED) is asked no more until it is followed again.

The rates are the venue's account's payments: a market gets a rate row only for the funding
times at which the account held a position there (docs/recorder.md, "Funding").
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from core.foundations.bus.codec import encode_funding
from core.foundations.bus.names import funding_stream
from core.foundations.logs import bind_log_fields
from core.foundations.mesh_config import VenueLink
from core.foundations.retry import sleep_unless
from core.foundations.rpc.client import Metadata
from core.foundations.rpc.status import call_failure
from trademesh.bus.v1 import bus_pb2 as bus
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

__all__ = ["FundingFollower"]

log = logging.getLogger(__name__)

_LIST_FUNDING = "/trademesh.tradeflow.v1.TradeFlow/ListFundingPayments"
_PAGE = 1000
_PAGES = 20  # per poll: the rest comes next poll
_TIMEOUT_S = 10.0
_UNABLE = (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.UNIMPLEMENTED)

# Publishes a whole encoded bus Envelope to a stream.
Publish = Callable[[str, bytes], Awaitable[None]]


class FundingFollower:
    def __init__(
        self,
        link: VenueLink,
        channel_factory: Callable[[], grpc.aio.Channel],
        metadata: Metadata,
        publish: Publish,
        source: str,
        every_s: float,
    ) -> None:
        self.link = link
        self.stream = funding_stream(link.name)
        self.every_s = every_s
        # The last funding time published, and the ids of its payments.
        self.since_ns = 0
        self.seen: set[str] = set()
        self.published = 0
        self._channel_factory = channel_factory
        self._metadata = metadata
        self._publish = publish
        self._source = source

    def note(self, batch: bus.FundingPayments) -> None:
        """Where to go on from: the last payments published (from the bus at start)."""
        self._advance(list(batch.payments))

    def mark_bus_loss(self, since_ns: int) -> None:
        """The bus lost entries: ask again from then (the recorder keeps a payment once)."""
        self.since_ns, self.seen = min(self.since_ns, since_ns), set()

    async def run(self, stop: asyncio.Event) -> None:
        bind_log_fields(venue=self.link.name, stream=self.stream)
        while not stop.is_set():
            try:
                await self.poll()
            except grpc.aio.AioRpcError as exc:
                if exc.code() in _UNABLE:
                    log.info(
                        "ingest %s: the venue keeps no funding history (%s)", self.stream, call_failure(exc)
                    )
                    return
                log.warning(
                    "ingest %s: funding not read (%s); again in %.0f s",
                    self.stream,
                    call_failure(exc),
                    self.every_s,
                )
            if await sleep_unless(stop, self.every_s):
                return

    async def poll(self) -> int:
        """The payments since the last published, to the bus; how many were new."""
        new_total = 0
        async with self._channel_factory() as channel:
            call: Any = channel.unary_unary(
                _LIST_FUNDING,
                request_serializer=tf.ListFundingPaymentsRequest.SerializeToString,
                response_deserializer=tf.ListFundingPaymentsResponse.FromString,
            )
            for _ in range(_PAGES):
                request = tf.ListFundingPaymentsRequest(since_ns=self.since_ns, limit=_PAGE)
                answer = await call(request, metadata=self._metadata, timeout=_TIMEOUT_S)
                new = [p for p in answer.payments if p.ts_ns > self.since_ns or p.funding_id not in self.seen]
                if new:
                    await self._publish(self.stream, encode_funding(self._source, self.link.name, new))
                    self._advance(new)
                    self.published += len(new)
                    new_total += len(new)
                if len(answer.payments) < _PAGE or not new:
                    break
        return new_total

    def _advance(self, payments: list[tf.FundingPayment]) -> None:
        for payment in payments:
            if payment.ts_ns > self.since_ns:
                self.since_ns, self.seen = payment.ts_ns, set()
            if payment.ts_ns == self.since_ns:
                self.seen.add(payment.funding_id)
