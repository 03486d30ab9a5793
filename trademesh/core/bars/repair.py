"""Repairs: the venue's historical candles replace the bars of gaps, seams and late trades.

Each due repair asks the venue (MarketData.GetCandles) for the candles of the repair's
timeframe over its bars, and publishes them as bars flagged `repaired`: the whole bar comes
from the venue, also where it was partly built from live trades (a seam). A venue that does
not serve a timeframe (most live venues have no 1s history) leaves those bars as they were.
A venue that cannot answer is retried with backoff, per venue; live aggregation never waits
for it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import grpc
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from trademesh.bus.v1 import bus_pb2 as bus
from trademesh.core.bars import metrics
from trademesh.core.bars.aggregator import Aggregator, venue_of
from trademesh.core.bars.spans import RepairTask
from trademesh.core.bars.timeframes import TO_PB
from trademesh.core.domain.bar import vwap_text
from trademesh.core.domain.decimals import format_decimal, parse_decimal
from trademesh.core.domain.model import Timeframe
from trademesh.core.platform.aio.backoff import Backoff
from trademesh.core.platform.aio.retry import wait_any
from trademesh.core.platform.errors import InvalidArgument, Unavailable
from trademesh.core.platform.rpc.client import auth_metadata
from trademesh.core.platform.rpc.status import unavailable
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.marketdata.v1 import marketdata_pb2_grpc as md_grpc

__all__ = ["Repairer", "VenueCandleReader", "candle_bar"]

log = logging.getLogger(__name__)

_PAGE = 1000
_CALL_TIMEOUT_S = 10.0
# Answers that say the venue will never serve this request (e.g. no 1s history).
_UNSERVED = (
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.FAILED_PRECONDITION,  # live venues: "no 1s candles over REST"
    grpc.StatusCode.UNIMPLEMENTED,
    grpc.StatusCode.NOT_FOUND,
)
_REDIS_ERRORS = (RedisConnectionError, RedisTimeoutError)


def candle_bar(venue: str, symbol: str, timeframe: Timeframe, candle: md.Candle) -> bus.Bar | None:
    """The venue's candle as a repaired bar; None for an interval without trades."""
    volume = _number("volume", candle.volume)
    if volume == 0:
        return None
    quote = parse_decimal("quote_volume", candle.quote_volume, required=False)
    return bus.Bar(
        venue=venue,
        symbol=symbol,
        timeframe=TO_PB[timeframe],
        open_time_ns=candle.open_time_ns,
        open=format_decimal(_number("open", candle.open)),
        high=format_decimal(_number("high", candle.high)),
        low=format_decimal(_number("low", candle.low)),
        close=format_decimal(_number("close", candle.close)),
        volume=format_decimal(volume),
        # Venues without quote volume in their candles (ccxt OHLCV) leave it, and the VWAP, empty.
        quote_volume="" if quote is None else format_decimal(quote),
        trade_count=candle.trade_count,
        vwap="" if quote is None else vwap_text(quote, volume),
        repaired=True,
    )


def _number(name: str, text: str) -> Decimal:
    value = parse_decimal(name, text)
    assert value is not None  # required: parse_decimal raised otherwise
    return value


class VenueCandleReader:
    """GetCandles on the venues of the mesh (given, or registered with the gateway: `address_of`
    tells where one serves now, None when unknown), one channel per venue address."""

    def __init__(self, address_of: Callable[[str], str | None], timeout_s: float = _CALL_TIMEOUT_S) -> None:
        self.address_of = address_of
        self.timeout_s = timeout_s
        self._channels: dict[tuple[str, str], grpc.aio.Channel] = {}

    def knows(self, venue: str) -> bool:
        return self.address_of(venue) is not None

    async def bars(self, venue: str, task: RepairTask) -> list[bus.Bar]:
        """The venue's bars for the task (paged); [] when it does not serve them."""
        stub = md_grpc.MarketDataStub(self._channel(venue))
        found: list[bus.Bar] = []
        start = task.first_open_ns
        while start < task.end_ns:
            candles = await self._page(stub, venue, task, start)
            if candles is None:
                return []
            found += _bars(venue, task, [c for c in candles if start <= c.open_time_ns < task.end_ns])
            if len(candles) < _PAGE:
                break
            start = candles[-1].open_time_ns + task.timeframe.ns
        return found

    async def _page(self, stub: Any, venue: str, task: RepairTask, start: int) -> list[md.Candle] | None:
        request = md.GetCandlesRequest(
            symbol=task.symbol,
            timeframe=TO_PB[task.timeframe],
            start_ns=start,
            end_ns=task.end_ns,
            limit=_PAGE,
        )
        try:
            reply = await stub.GetCandles(request, metadata=auth_metadata(), timeout=self.timeout_s)
        except grpc.aio.AioRpcError as exc:
            if exc.code() in _UNSERVED:
                log.info("bars: %s does not serve %s candles of %s: %s", venue, task.timeframe.name,
                         task.symbol, exc.details())  # fmt: skip
                return None
            raise unavailable(exc, f"{venue} GetCandles") from exc
        candles: list[md.Candle] = list(reply.candles)
        return candles

    def _channel(self, venue: str) -> grpc.aio.Channel:
        address = self.address_of(venue)
        if address is None:
            raise Unavailable(f"venue {venue} left the mesh")
        channel = self._channels.get((venue, address))
        if channel is None:
            channel = self._channels[(venue, address)] = grpc.aio.insecure_channel(address)
        return channel

    async def close(self) -> None:
        channels, self._channels = self._channels, {}
        for channel in channels.values():
            await channel.close()


def _bars(venue: str, task: RepairTask, candles: list[md.Candle]) -> list[bus.Bar]:
    if any(not c.closed for c in candles):
        raise Unavailable(f"{venue} has not closed its {task.timeframe.name} candle of {task.symbol} yet")
    found = []
    for candle in candles:
        try:
            bar = candle_bar(venue, task.symbol, task.timeframe, candle)
        except InvalidArgument as exc:
            log.warning("bars: %s sent a candle of %s that is not one: %s", venue, task.symbol, exc)
            continue
        if bar is not None:
            found.append(bar)
    return found


class Repairer:
    """Runs due repairs in the background; a venue that fails waits out its own backoff."""

    def __init__(self, aggregator: Aggregator, history: VenueCandleReader, poll_s: float = 1.0) -> None:
        self.aggregator = aggregator
        self.history = history
        self.poll_s = poll_s
        self._backoff: dict[str, Backoff] = {}
        self._retry_at: dict[str, float] = {}
        self._unknown: set[str] = set()

    async def run(self, stop: asyncio.Event) -> None:
        redis_backoff = Backoff(0.5, 10.0)
        while not stop.is_set():
            await wait_any(self.aggregator.closed_bars, stop, timeout_s=self.poll_s)
            self.aggregator.closed_bars.clear()
            try:
                for stream, tasks in (await self.aggregator.repairs_due()).items():
                    await self._repair(stream, tasks, stop)
                redis_backoff.reset()
            except _REDIS_ERRORS as exc:
                log.warning("bars: repair commit failed, Redis unreachable (%s)", exc)
                await asyncio.sleep(redis_backoff.next())

    async def _repair(self, stream: str, tasks: list[RepairTask], stop: asyncio.Event) -> None:
        venue = venue_of(stream)
        if not self.history.knows(venue):
            if venue not in self._unknown:
                self._unknown.add(venue)
                log.warning("bars: no address for venue %s (--venue, mesh config, registry): gaps wait",
                            venue)  # fmt: skip
            return
        if time.monotonic() < self._retry_at.get(venue, 0.0):
            return
        backoff = self._backoff.setdefault(venue, Backoff(1.0, 60.0))
        for task in tasks:
            if stop.is_set():
                return
            try:
                bars = await self.history.bars(venue, task)
            except Unavailable as exc:
                delay = backoff.next()
                self._retry_at[venue] = time.monotonic() + delay
                metrics.REPAIR_FAILURES.labels(venue).inc()
                log.warning(
                    "bars: repair of %s %s failed (%s); retrying in %.1f s", venue, task.symbol, exc, delay
                )
                return
            await self.aggregator.repaired(stream, task, bars)
        backoff.reset()
