"""One venue stream followed over gRPC into one bus stream: (venue, channel) -> md.{<venue>}.<channel>.

The relay (trademesh.core.platform.bus.relay.MarketRelay) decides what goes to the bus: the venue's
batches as they are, its numbering, the gap markers. This is the gRPC side: Subscribe from the
relay's point, resubscribe after a lost stream with a backoff, stop asking for what is refused.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import grpc

from trademesh.core.domain.model import Channel
from trademesh.core.ingest.dial import VenueDial
from trademesh.core.platform.aio.backoff import Backoff
from trademesh.core.platform.bus.relay import MarketRelay, Publish, StreamPoint
from trademesh.core.platform.logs.setup import bind_log_fields
from trademesh.core.platform.rpc.follow import follow
from trademesh.marketdata.v1 import marketdata_pb2 as md

__all__ = ["MarketFollower", "StreamPoint"]

log = logging.getLogger(__name__)

_SUBSCRIBE = "/trademesh.marketdata.v1.MarketData/Subscribe"


class MarketFollower(MarketRelay):
    def __init__(self, dial: VenueDial, channel: Channel, symbols: list[str], publish: Publish) -> None:
        super().__init__(dial.venue, channel, symbols, publish)
        self.dial = dial

    async def run(self, stop: asyncio.Event) -> None:
        bind_log_fields(venue=self.dial.venue, stream=self.stream)
        await follow(
            self._follow_once,
            stop,
            Backoff(0.2, 5.0),
            self._lost,
            go_on=lambda: bool(self.symbols),
            refused=self._refused,
        )

    def _refused(self, exc: grpc.aio.AioRpcError) -> None:
        log.warning("ingest %s: refused (%s): not asked again", self.stream, exc.details())

    def _lost(self, reason: str, delay: float) -> None:
        self.lost()
        self.reconnects += 1
        log.warning("ingest %s: stream lost (%s); resubscribing in %.1f s", self.stream, reason, delay)

    async def _follow_once(self, backoff: Backoff) -> None:
        async with self.dial.channel() as channel:
            call: Any = channel.unary_stream(
                _SUBSCRIBE, request_serializer=md.SubscribeRequest.SerializeToString
            )
            stream = call(self.request(), metadata=self.dial.metadata)
            first = True
            async for raw in stream:
                assert isinstance(raw, bytes)
                if first:
                    first = False
                    backoff.reset()
                    await self.opened(raw)
                    continue
                await self.take(raw)
