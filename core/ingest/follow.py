"""One venue stream followed over gRPC into one bus stream: (venue, channel) -> md.{<venue>}.<channel>.

The relay (core.foundations.bus.relay.MarketRelay) decides what goes to the bus: the venue's
batches as they are, its numbering, the gap markers. This is the gRPC side: Subscribe from the
relay's point, resubscribe after a lost stream with a backoff, stop asking for what is refused.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import grpc

from core.foundations.backoff import Backoff
from core.foundations.bus.relay import MarketRelay, Publish, StreamPoint
from core.foundations.logs import bind_log_fields
from core.foundations.mesh_config import VenueLink
from core.foundations.model import Channel
from core.foundations.retry import sleep_unless
from core.foundations.rpc.client import Metadata
from core.foundations.rpc.status import REFUSED_AS_ASKED, call_failure
from trademesh.marketdata.v1 import marketdata_pb2 as md

__all__ = ["MarketFollower", "StreamPoint", "sleep_unless"]

log = logging.getLogger(__name__)

_SUBSCRIBE = "/trademesh.marketdata.v1.MarketData/Subscribe"


class MarketFollower(MarketRelay):
    def __init__(
        self,
        link: VenueLink,
        channel: Channel,
        symbols: list[str],
        channel_factory: Callable[[], grpc.aio.Channel],
        metadata: Metadata,
        publish: Publish,
    ) -> None:
        super().__init__(link.name, channel, symbols, publish)
        self.link = link
        self._channel_factory = channel_factory
        self._metadata = metadata

    async def run(self, stop: asyncio.Event) -> None:
        bind_log_fields(venue=self.link.name, stream=self.stream)
        backoff = Backoff(0.2, 5.0)
        while not stop.is_set():
            try:
                await self._follow_once(backoff)
                reason = "the venue ended the stream"
            except grpc.aio.AioRpcError as exc:
                if exc.code() in REFUSED_AS_ASKED:  # sent again unchanged, it would be refused again
                    log.warning("ingest %s: refused (%s): not asked again", self.stream, exc.details())
                    await stop.wait()
                    return
                reason = call_failure(exc)
            if stop.is_set() or not self.symbols:
                return
            self.lost()
            self.reconnects += 1
            delay = backoff.next()
            log.warning("ingest %s: stream lost (%s); resubscribing in %.1f s", self.stream, reason, delay)
            await sleep_unless(stop, delay)

    async def _follow_once(self, backoff: Backoff) -> None:
        async with self._channel_factory() as channel:
            call: Any = channel.unary_stream(
                _SUBSCRIBE, request_serializer=md.SubscribeRequest.SerializeToString
            )
            stream = call(self.request(), metadata=self._metadata)
            first = True
            async for raw in stream:
                assert isinstance(raw, bytes)
                if first:
                    first = False
                    backoff.reset()
                    await self.opened(raw)
                    continue
                await self.take(raw)
