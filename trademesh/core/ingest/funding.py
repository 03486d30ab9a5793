"""One venue's funding payments polled into one bus stream: TradeFlow.ListFundingPayments ->
funding.{<venue>} (bus.v1.FundingPayments), which the recorder keeps in `funding`.

A venue's MarketData carries no funding (no channel in the contract), but its funding history
does, with the rate applied where the venue says it (the sim and Deribit in the payment; the
Binance USD-M and OKX connectors from the venue's rate history, as their income and bills carry
none: trademesh/venues/live/funding_rates.py). So ingest asks, every `every_s`, for the
payments since the last one it published, under the venue's lease like its other streams, and
publishes the new ones as one entry. It resumes from the bus's last entry after a restart. The
request's since_ns is inclusive: the payments at the last funding time it has are asked again
and left out by their ids here (and a repeat that slips through, a restart between publishing
and noting, is recorded once: the recorder's key is the funding id). A spot venue answers none,
and a venue that cannot list them (FAILED_PRECONDITION, UNIMPLEMENTED) is asked no more until
it is followed again.

The rates are the venue's account's payments: a market gets a rate row only for the funding
times at which the account held a position there (docs/recorder.md, "Funding").
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import grpc

from trademesh.core.ingest.dial import VenueDial
from trademesh.core.platform.aio.retry import sleep_unless
from trademesh.core.platform.bus.funding import FundingRelay, Publish
from trademesh.core.platform.logs.setup import bind_log_fields
from trademesh.core.platform.rpc.status import call_failure
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

__all__ = ["FundingPaymentsPoller"]

log = logging.getLogger(__name__)

_LIST_FUNDING = "/trademesh.tradeflow.v1.TradeFlow/ListFundingPayments"
_TIMEOUT_S = 10.0
_UNABLE = (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.UNIMPLEMENTED)


class FundingPaymentsPoller(FundingRelay):
    """The gRPC side of the relay (trademesh.core.platform.bus.funding): ListFundingPayments every
    `every_s`."""

    def __init__(self, dial: VenueDial, publish: Publish, source: str, every_s: float) -> None:
        super().__init__(dial.venue, publish, source, every_s)
        self.dial = dial

    async def run(self, stop: asyncio.Event) -> None:
        bind_log_fields(venue=self.dial.venue, stream=self.stream)
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
        async with self.dial.channel() as channel:
            call: Any = channel.unary_unary(
                _LIST_FUNDING,
                request_serializer=tf.ListFundingPaymentsRequest.SerializeToString,
                response_deserializer=tf.ListFundingPaymentsResponse.FromString,
            )

            async def page(since_ns: int, limit: int) -> list[tf.FundingPayment]:
                request = tf.ListFundingPaymentsRequest(since_ns=since_ns, limit=limit)
                answer = await call(request, metadata=self.dial.metadata, timeout=_TIMEOUT_S)
                return list(answer.payments)

            return await self.poll_with(page)
