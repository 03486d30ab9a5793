"""The hot path: a venue's MarketData stream straight into the engine, no bus in between.

One Subscribe per venue (trades and book, the symbols the patches trade and the venue lists),
resubscribed with backoff when lost (never when refused as invalid). Each batch of market
events goes to the runner (trademesh.core.detector.runner) with the time the feed had it, for the
hot-path latency (trademesh.core.detector.metrics); the runner orders them by event time and converts
them with a MarketConverter (trademesh.core.detector.market) one timestamp at a time.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import grpc

from trademesh.core.detector.metrics import MARKET_EVENTS, STREAM
from trademesh.core.domain.instruments import VenueInstruments, unknown_symbol
from trademesh.core.platform.aio.backoff import Backoff
from trademesh.core.platform.config.mesh import VenueLink
from trademesh.core.platform.errors import TrademeshError
from trademesh.core.platform.logs.setup import bind_log_fields
from trademesh.core.platform.rpc.client import Metadata
from trademesh.core.platform.rpc.follow import follow
from trademesh.core.platform.rpc.status import call_failure
from trademesh.marketdata.v1 import marketdata_pb2 as md

__all__ = ["Deliver", "VenueFeed"]

log = logging.getLogger(__name__)

_SUBSCRIBE = "/trademesh.marketdata.v1.MarketData/Subscribe"

# Takes one venue's market events of one batch, in the venue's order, with the time the feed
# had the batch (wall clock, ns): (venue, events, received). The runner converts them
# (MarketConverter) one timestamp at a time.
Deliver = Callable[[str, Sequence[md.MarketEvent], int], None]


class VenueFeed:
    """Follows one venue until stopped; every batch goes to `deliver` as engine events. A symbol
    the venue does not list is dropped (said once): the venue's instruments tell before the
    subscription, its REFUSED notice after; the others are fed. A subscription the venue refuses
    whole is not sent again unchanged (the feed's symbols are the start's: it waits for stop)."""

    def __init__(
        self,
        link: VenueLink,
        symbols: list[str],
        channel_factory: Callable[[], grpc.aio.Channel],
        metadata: Metadata,
        deliver: Deliver,
        instruments: VenueInstruments | None = None,
    ) -> None:
        self.link = link
        self.symbols = symbols
        self._channel_factory = channel_factory
        self._metadata = metadata
        self._deliver = deliver
        self._instruments = instruments
        self.batches = 0
        self.reconnects = 0
        self._said = ""

    async def run(self, stop: asyncio.Event) -> None:
        bind_log_fields(venue=self.link.name)
        await follow(
            self._follow,
            stop,
            Backoff(0.2, 5.0),
            self._lost,
            go_on=lambda: bool(self.symbols),
            refused=lambda exc: self._say(f"refused ({call_failure(exc)})", "not asked again"),
        )

    def _lost(self, reason: str, delay: float) -> None:
        self.reconnects += 1
        self._say(f"lost ({reason})", f"resubscribing after a backoff (now {delay:.1f} s)")

    def _say(self, what: str, then: str) -> None:
        """Logged when it differs from the last said (a venue away is one line, not one a retry)."""
        if what != self._said:
            self._said = what
            log.warning("detector: %s stream %s; %s", self.link.name, what, then)

    async def _follow(self, backoff: Backoff) -> None:
        self.symbols = await self._listed()
        if not self.symbols:
            return
        request = md.SubscribeRequest(symbols=self.symbols, channels=[md.CHANNEL_TRADES, md.CHANNEL_BOOK])
        async with self._channel_factory() as channel:
            call: Any = channel.unary_stream(
                _SUBSCRIBE,
                request_serializer=md.SubscribeRequest.SerializeToString,
                response_deserializer=md.SubscribeResponse.FromString,
            )
            first = True
            async for response in call(request, metadata=self._metadata):
                backoff.reset()
                market = response.events
                if first:
                    first, self._said = False, ""
                    self._refusals(market)  # a refusal comes at the start, if at all
                received = time.time_ns()
                if market:
                    STREAM.observe((received - market[-1].ts_recv_ns) / 1e9)
                    MARKET_EVENTS.inc(len(market))
                if market:
                    self._deliver(self.link.name, market, received)
                self.batches += 1

    async def _listed(self) -> list[str]:
        """The symbols the venue lists; all of them when its list cannot be read now."""
        if self._instruments is None:
            return self.symbols
        try:
            listed, unknown = await self._instruments.split(self.link.name, self.symbols)
        except TrademeshError:
            return self.symbols
        for symbol in unknown:
            self._drop(symbol, unknown_symbol(self.link.name, symbol))
        return listed

    def _refusals(self, events: Sequence[md.MarketEvent]) -> None:
        for event in events:
            if event.HasField("notice") and event.notice.kind == md.NOTICE_KIND_REFUSED:
                if event.notice.channel == md.CHANNEL_UNSPECIFIED:
                    self._drop(event.symbol, event.notice.reason)
                else:  # one channel: the symbol's others come
                    log.warning("detector: %s %s: %s", self.link.name, event.symbol, event.notice.reason)

    def _drop(self, symbol: str, reason: str) -> None:
        if symbol in self.symbols:
            self.symbols = [s for s in self.symbols if s != symbol]
            log.warning("detector: %s %s not fed: %s", self.link.name, symbol, reason)
