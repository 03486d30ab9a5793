"""Warm-up bars from history first: what the recorder's `bars` table holds (History.GetBars and
GetCoverage, served by the gateway from PostgreSQL: recorded live, imported with `trademesh data
import` or downloaded with `trademesh data download`, read alike), then the venue for the rest
after the last held bar (docs/history.md, "What reads history").

The detector's warm-up (trademesh.core.detector.history), the Screener's
(trademesh.core.screener.history_seed) and Overwatch's (trademesh.core.overwatch.history_seed)
read it through `HeldHistory`: one channel to the gateway at $TRADEMESH_GATEWAY (the address
every mesh service registers at), the mesh token as its credential (the `read` scope). No
gateway configured: nothing is asked, the service warms from the venue (or the bus) as before.
The gateway or History away (UNAVAILABLE, a deadline, no tables yet): one log line, and the
warm-up takes everything from the venue.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import grpc

from trademesh.bus.v1 import bus_pb2 as bus
from trademesh.core.domain.model import Timeframe
from trademesh.core.platform.rpc.client import Metadata, auth_metadata
from trademesh.history.v1 import history_pb2 as hpb
from trademesh.history.v1 import history_pb2_grpc as hpb_grpc
from trademesh.marketdata.v1 import marketdata_pb2 as md

__all__ = [
    "AWAY_S",
    "PAGE",
    "HeldHistory",
    "HeldSeries",
    "bus_bar",
    "first_missing",
    "gathered",
    "merged",
    "warm_candles",
]

log = logging.getLogger(__name__)
T = TypeVar("T")

# A page of GetBars (its maximum): a 500-bar warm-up is one call.
PAGE = 5000
# One page read from PostgreSQL (an index range scan); coverage reads the series' keys.
_BARS_TIMEOUT_S = 10.0
_COVERAGE_TIMEOUT_S = 30.0
# The gateway unreachable: how long it is not asked again.
AWAY_S = 30.0

VenueCandles = Callable[[int], Awaitable[Sequence[md.Candle]]]


@dataclass(frozen=True, slots=True)
class HeldSeries:
    """A series the recorder holds: its venue, symbol and held range [start_ns, end_ns)."""

    venue: str
    symbol: str
    start_ns: int
    end_ns: int


class HeldHistory:
    """History.GetBars and GetCoverage through the gateway at `gateway` (None: none configured,
    every answer None). `who` names the service in its log lines."""

    def __init__(self, gateway: str | None, who: str, metadata: Metadata | None = None) -> None:
        self.gateway = gateway
        self.who = who
        self._metadata = auth_metadata() if metadata is None else metadata
        self._channel: grpc.aio.Channel | None = None
        self._away_said = False  # the gateway away is said once, until it answers again
        # Unreachable (or too slow) once: not asked again for AWAY_S, so a warm-up of a thousand
        # series does not wait out a deadline each.
        self._away_until = 0.0

    def _stub(self) -> hpb_grpc.HistoryAsyncStub:
        if self._channel is None:
            assert self.gateway is not None
            self._channel = grpc.aio.insecure_channel(self.gateway)
        return hpb_grpc.HistoryStub(self._channel)

    async def bars(
        self, venue: str, symbol: str, timeframe: Timeframe, start_ns: int, end_ns: int
    ) -> list[md.Candle] | None:
        """The held bars opened in [start_ns, end_ns), oldest first, every page read; None when
        there is no gateway or it cannot answer (said once in the log)."""
        if self.gateway is None or time.monotonic() < self._away_until:
            return None
        out: list[md.Candle] = []
        start = start_ns
        try:
            while True:
                request = hpb.GetBarsRequest(
                    venue=venue, symbol=symbol, timeframe=timeframe.label, start_ns=start, end_ns=end_ns,
                    limit=PAGE,
                )  # fmt: skip
                reply = await self._stub().GetBars(request, metadata=self._metadata, timeout=_BARS_TIMEOUT_S)
                out += reply.bars
                if not reply.next_start_ns:
                    break
                start = reply.next_start_ns
        except grpc.aio.AioRpcError as exc:
            self._away(exc)
            return None
        self._away_said = False
        return out

    async def series(self, timeframe: Timeframe, venue: str | None = None) -> list[HeldSeries] | None:
        """The series of `timeframe` held (of `venue` when given); None when there is no gateway
        or it cannot answer."""
        if self.gateway is None or time.monotonic() < self._away_until:
            return None
        request = hpb.GetCoverageRequest(venue=venue or "", timeframe=timeframe.label, max_holes=1)
        try:
            reply = await self._stub().GetCoverage(
                request, metadata=self._metadata, timeout=_COVERAGE_TIMEOUT_S
            )
        except grpc.aio.AioRpcError as exc:
            self._away(exc)
            return None
        self._away_said = False
        return [HeldSeries(s.venue, s.symbol, s.start_ns, s.end_ns) for s in reply.series]

    def _away(self, exc: grpc.aio.AioRpcError) -> None:
        if exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
            self._away_until = time.monotonic() + AWAY_S
        if not self._away_said:
            self._away_said = True
            log.warning(
                "%s: history at the gateway %s: %s (%s); warming from the venue",
                self.who, self.gateway, exc.code().name, (exc.details() or "")[:200],
            )  # fmt: skip

    async def close(self) -> None:
        channel, self._channel = self._channel, None
        if channel is not None:
            await channel.close()


async def warm_candles(
    history: HeldHistory | None,
    venue: str,
    symbol: str,
    timeframe: Timeframe,
    start_ns: int,
    end_ns: int,
    from_venue: VenueCandles,
) -> list[md.Candle]:
    """The closed bars opened in [start_ns, end_ns), oldest first: the held ones, and the
    venue's (`from_venue(from_ns)`: its candles from `from_ns` on) where none is held: after the
    last held bar, and in a hole before it (asked from the first missing bar); everything from
    the venue when nothing is held or the history cannot be read (a line said)."""
    held = None if history is None else await history.bars(venue, symbol, timeframe, start_ns, end_ns)
    if held is not None and not held and history is not None:
        log.info(
            "%s: history holds no %s bars of %s %s in the warm-up's range; warming from the venue",
            history.who, timeframe.label, venue, symbol,
        )  # fmt: skip
    held = held or []
    from_ns = first_missing(held, timeframe, start_ns, end_ns)
    rest = await from_venue(from_ns) if from_ns < end_ns else []
    return merged(held, rest, from_ns, end_ns)


def first_missing(held: Sequence[md.Candle], timeframe: Timeframe, start_ns: int, end_ns: int) -> int:
    """The open time of the first bar of [start_ns, end_ns) on the timeframe's grid not in
    `held` (oldest first); end_ns when none is missing."""
    at = timeframe.open_time_ns(start_ns)
    if at < start_ns:
        at += timeframe.ns
    for candle in held:
        if candle.open_time_ns > at:
            return at
        if candle.open_time_ns == at:
            at += timeframe.ns
    return min(at, end_ns)


def merged(
    held: Sequence[md.Candle], rest: Sequence[md.Candle], from_ns: int, end_ns: int
) -> list[md.Candle]:
    """`held` with the venue's closed bars of [from_ns, end_ns) it does not hold, oldest first
    (a bar held is the one kept: the history is what a backtest of the session reads)."""
    opens = {c.open_time_ns for c in held}
    extra = [
        c for c in rest if c.closed and from_ns <= c.open_time_ns < end_ns and c.open_time_ns not in opens
    ]
    if not extra:
        return list(held)
    return sorted([*held, *extra], key=lambda c: c.open_time_ns)


def bus_bar(venue: str, symbol: str, candle: md.Candle) -> bus.Bar:
    """A held bar as the bar service publishes one on the bus (bars.{<venue>}.<timeframe>): what
    the Screener's and Overwatch's feeds read, so a seeded bar goes the way of a streamed one."""
    return bus.Bar(
        venue=venue,
        symbol=symbol,
        timeframe=candle.timeframe,
        open_time_ns=candle.open_time_ns,
        open=candle.open,
        high=candle.high,
        low=candle.low,
        close=candle.close,
        volume=candle.volume,
        quote_volume=candle.quote_volume,
        trade_count=candle.trade_count,
    )


async def gathered(calls: Sequence[Callable[[], Awaitable[T]]], at_once: int = 8) -> list[T]:
    """The results of `calls`, in their order, at most `at_once` in flight (many series'
    warm-ups through one gateway)."""
    gate = asyncio.Semaphore(at_once)

    async def one(call: Callable[[], Awaitable[T]]) -> T:
        async with gate:
            return await call()

    return list(await asyncio.gather(*(one(call) for call in calls)))
