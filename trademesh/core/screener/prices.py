"""Every price at once for the screens' ticker metrics: a screen venue that has no fresh ticker on
the bus (at the start, before its ticker stream warms up, or while it is quiet) is asked for all
its instruments' latest tickers in one MarketData.GetTickers call, and the answer is taken into
the MarketState as if it had come from the bus (a ticker kept only over an older one of its
symbol: a newer one from the bus wins). Ticker metrics (spread, depth, 24h volume) are then there
at the first evaluation, not after the stream's first ticker of each symbol.

The venue is found as the tools find it (trademesh.core.tools.resolver): given on the command line
(`--venue NAME=HOST:PORT`) or registered with the gateway (TRADEMESH_GATEWAY). A venue is asked at
most once per `every_s` while it stays without a fresh ticker; one that cannot answer (not
running, UNIMPLEMENTED: no `all_tickers` capability) is said once in the log and asked again
later. The engine stays pure: tickers_of() turns the answer into the engine's Tickers, the shell
(ScreenerApp) calls seed() before it evaluates.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import grpc

from trademesh.core.platform.errors import InvalidArgument, TrademeshError
from trademesh.core.screener import metrics
from trademesh.core.screener.convert import ticker_of
from trademesh.core.screener.engine.definition import Screen
from trademesh.core.screener.engine.inputs import Ticker
from trademesh.core.screener.engine.metrics import TICKER_METRICS
from trademesh.core.screener.state import MarketState
from trademesh.core.tools.resolver import VENUE_SERVICES, Instance, MeshResolver
from trademesh.core.tools.upstream import Upstream
from trademesh.marketdata.v1 import marketdata_pb2 as md

__all__ = ["MARKETDATA", "TickerSeed", "fresh_ages", "tickers_of"]

log = logging.getLogger(__name__)

MARKETDATA = "trademesh.marketdata.v1.MarketData"
# A venue without a fresh ticker is asked again after this long at the soonest.
SEED_EVERY_S = 10.0
# Deadline of one GetTickers call: the evaluation it comes before waits for it.
SEED_TIMEOUT_S = 3.0


def tickers_of(answer: md.GetTickersResponse, received_ns: int) -> list[tuple[str, Ticker]]:
    """(symbol, the engine's Ticker) of each ticker of a GetTickers answer; a ticker the venue did
    not time is as of `received_ns` (when the answer came). One with a value that is no number
    is left out (counted as undecodable), the others kept."""
    out = []
    for item in answer.tickers:
        event = md.MarketEvent(
            symbol=item.symbol, ts_event_ns=item.ts_event_ns or received_ns, ticker=item.ticker
        )
        try:
            out.append((item.symbol, ticker_of(event)))
        except InvalidArgument:
            metrics.UNDECODABLE.inc()
    return out


def fresh_ages(screens: Iterable[Screen]) -> dict[str, int]:
    """Per venue whose screens read a ticker metric, how old (ns) its freshest ticker may be and
    still count as fresh: the shortest `max_age_s` of those screens (older, a metric is stale)."""
    ages: dict[str, int] = {}
    for screen in screens:
        if any(name in TICKER_METRICS for name in screen.measured):
            age = screen.max_age_s * 1_000_000_000
            ages[screen.venue] = min(ages.get(screen.venue, age), age)
    return ages


def _freshest(state: MarketState, venue: str) -> int:
    """The newest ticker time held of the venue (0: none)."""
    return max((ticker.ts_ns for ticker in state.tickers.get(venue, {}).values()), default=0)


@dataclass
class TickerSeed:
    """Seeds the screens' tickers of each venue without a fresh one from one GetTickers call."""

    ages: dict[str, int]  # venue -> the age a fresh ticker is under (fresh_ages)
    resolver: MeshResolver
    every_s: float = SEED_EVERY_S
    timeout_s: float = SEED_TIMEOUT_S
    monotonic: Callable[[], float] = time.monotonic
    _asked: dict[str, float] = field(default_factory=dict)  # venue -> when it was last asked
    _failing: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.upstream = Upstream(self.resolver, self.timeout_s)

    @classmethod
    def of(
        cls, screens: Iterable[Screen], gateway: str | None, venues: Sequence[tuple[str, str]]
    ) -> TickerSeed:
        """The seed of `screens`' ticker venues, found through the gateway's registry (`gateway`,
        its gRPC address, or None) and the venues given (name, "host:port")."""
        given = [Instance(name, address, VENUE_SERVICES) for name, address in venues]
        return cls(fresh_ages(screens), MeshResolver(gateway, given))

    def due(self, state: MarketState, now_ns: int) -> list[str]:
        """The venues to ask now: no ticker within their fresh age, and not asked within every_s."""
        now = self.monotonic()
        return [
            venue
            for venue, age in sorted(self.ages.items())
            if now_ns - _freshest(state, venue) > age
            and now - self._asked.get(venue, -self.every_s) >= self.every_s
        ]

    async def seed(self, state: MarketState, now_ns: int) -> int:
        """Each due venue asked at once (GetTickers, every instrument), its tickers taken into
        `state`; the number of tickers taken."""
        venues = self.due(state, now_ns)
        if not venues:
            return 0
        for venue in venues:
            self._asked[venue] = self.monotonic()
        answers = await asyncio.gather(*(self._ask(venue, now_ns) for venue in venues))
        taken = 0
        for venue, found in zip(venues, answers, strict=True):
            delisted = state.delisted.get(venue, frozenset())
            listed = [(symbol, ticker) for symbol, ticker in found if symbol not in delisted]
            for symbol, ticker in listed:
                state.add_ticker(venue, symbol, ticker)
            metrics.SEEDED_TICKERS.labels(venue).inc(len(listed))
            taken += len(listed)
        return taken

    async def _ask(self, venue: str, now_ns: int) -> list[tuple[str, Ticker]]:
        try:
            answer = await self.upstream.unary(
                MARKETDATA, venue, "GetTickers", md.GetTickersRequest(), md.GetTickersResponse
            )
        except TrademeshError as exc:
            metrics.SEED_FAILURES.labels(venue).inc()
            if venue not in self._failing:
                log.warning("screener: %s's tickers at once (GetTickers): %s; asked again later", venue, exc)
            self._failing.add(venue)
            return []
        if venue in self._failing:
            log.info("screener: %s answers GetTickers again", venue)
        self._failing.discard(venue)
        return tickers_of(answer, now_ns)

    async def look(self) -> None:
        """One look at the gateway's registry now (the start: before the first seed), if it answers."""
        with contextlib.suppress(grpc.aio.AioRpcError):
            await self.resolver.refresh()

    async def follow(self, stop: asyncio.Event) -> None:
        """The gateway's registry followed until `stop` (where the venues are)."""
        await self.resolver.follow(stop)

    async def close(self) -> None:
        await self.upstream.close()
        await self.resolver.close()
