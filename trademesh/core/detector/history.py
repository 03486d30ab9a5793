"""Warm-up history for a patch's bar sources: the bars the recorder holds first (History.GetBars
through the gateway: recorded, imported or downloaded alike; trademesh.core.platform.warm_history), then
the venue's own closed candles (GetCandles) where none is held (after the last held bar, and in a
hole before it); everything from the venue when the detector has no gateway, or it holds nothing
of the range or cannot answer.

A patch whose sources need more history than the venue holds (a sim that just started) is
warmed from live data instead (trademesh.core.detector.runner); trade sources always are.

The calls go over one channel per venue (VenueChannels), opened when first needed and kept
for the detector's life: warming ten patches at start, or one activated from Studio, opens no
new connection. The shell closes them when it stops.
"""

from __future__ import annotations

import asyncio
import logging

import grpc

from trademesh.core.detector.engine.engine import Engine
from trademesh.core.detector.engine.io import Event, event_time
from trademesh.core.detector.engine.values import BarValue
from trademesh.core.detector.needs import BarNeed, bar_needs, warm_bars
from trademesh.core.domain.convert import TIMEFRAME_TO_PB
from trademesh.core.domain.model import Timeframe
from trademesh.core.platform.errors import Unavailable
from trademesh.core.platform.rpc.client import Metadata
from trademesh.core.platform.warm_history import HeldHistory, warm_candles
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.marketdata.v1 import marketdata_pb2_grpc as md_grpc

__all__ = ["VenueChannels", "bar_history"]

log = logging.getLogger(__name__)

_CALL_TIMEOUT_S = 10.0


class VenueChannels:
    """One gRPC channel per venue address, opened on first use, all closed by `close`."""

    def __init__(self) -> None:
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._closed = False

    def get(self, address: str) -> grpc.aio.Channel:
        """The channel to `address`; Unavailable once closed (the detector is stopping)."""
        if self._closed:
            raise Unavailable("the detector is stopping: no new call to a venue")
        channel = self._channels.get(address)
        if channel is None:
            channel = self._channels[address] = grpc.aio.insecure_channel(address)
        return channel

    async def close(self) -> None:
        self._closed = True
        channels, self._channels = list(self._channels.values()), {}
        await asyncio.gather(*(channel.close() for channel in channels))


async def bar_history(
    engine: Engine,
    patch_id: str,
    channel: grpc.aio.Channel,
    metadata: Metadata,
    now_ns: int,
    held: HeldHistory | None = None,
) -> list[tuple[str, Event]]:
    """The closed bars each bar source of the patch needs, oldest first, as (venue, bar): those
    `held` holds (the recorder's, through the gateway), then the venue's candles after them."""
    history: list[tuple[str, Event]] = []
    for need in bar_needs(engine, patch_id):
        bars = await _candles(channel, metadata, need, now_ns, held)
        history += [(need.venue, bar) for bar in bars]
    history.sort(key=lambda item: event_time(item[1]))
    return history


async def _candles(
    channel: grpc.aio.Channel, metadata: Metadata, need: BarNeed, now_ns: int, held: HeldHistory | None
) -> list[BarValue]:
    symbol, timeframe = need.symbol, need.timeframe
    start = now_ns - (need.bars + 2) * timeframe.ns

    async def from_venue(after_ns: int) -> list[md.Candle]:
        request = md.GetCandlesRequest(symbol=symbol, timeframe=TIMEFRAME_TO_PB[timeframe], start_ns=after_ns)
        try:
            reply = await md_grpc.MarketDataStub(channel).GetCandles(
                request, metadata=metadata, timeout=_CALL_TIMEOUT_S
            )
        except grpc.aio.AioRpcError as exc:
            code = exc.code().name
            log.warning(
                "detector: no candles of %s %s (%s); warming from live data", symbol, timeframe.label, code
            )
            return []
        return list(reply.candles)

    candles = await warm_candles(held, need.venue, symbol, timeframe, start, now_ns, from_venue)
    # Closed by `now_ns`, not by the venue's clock when it answers (a moment later): the warm-up
    # has one cut for every patch, the one a backtest of the session warms to.
    bars = [_bar(symbol, timeframe, c) for c in candles if c.closed]
    return warm_bars(bars, need.bars, timeframe, now_ns)


def _bar(symbol: str, timeframe: Timeframe, candle: md.Candle) -> BarValue:
    return BarValue(
        symbol,
        timeframe.value,
        candle.open_time_ns,
        float(candle.open),
        float(candle.high),
        float(candle.low),
        float(candle.close),
        float(candle.volume or 0),
        float(candle.quote_volume or 0),
        candle.trade_count,
    )
