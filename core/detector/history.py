"""Warm-up history for a patch's bar sources: the venue's own closed candles (GetCandles).

A patch whose sources need more history than the venue holds (a sim that just started) is
warmed from live data instead (core.detector.runner); trade sources always are.

The calls go over one channel per venue (VenueChannels), opened when first needed and kept
for the detector's life: warming ten patches at start, or one activated from Studio, opens no
new connection. The shell closes them when it stops.
"""

from __future__ import annotations

import asyncio
import logging

import grpc

from core.convert import TIMEFRAME_TO_PB
from core.detector.engine.engine import Engine
from core.detector.engine.io import Event, event_time
from core.detector.engine.values import BarValue
from core.errors import Unavailable
from core.model import Timeframe
from core.rpc.client import Metadata
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.marketdata.v1 import marketdata_pb2_grpc as md_grpc

__all__ = ["VenueChannels", "bar_history"]

log = logging.getLogger(__name__)

_CALL_TIMEOUT_S = 10.0
_BAR_SOURCES = ("trade_bars", "bars")


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
    engine: Engine, patch_id: str, channel: grpc.aio.Channel, metadata: Metadata, now_ns: int
) -> list[tuple[str, Event]]:
    """The closed candles each bar source of the patch needs, oldest first, as (venue, bar)."""
    patch = engine.patch(patch_id)
    history: list[tuple[str, Event]] = []
    for module_id, need in engine.history_needed(patch_id).items():
        node = patch.graph.nodes[module_id]
        if node.spec.type not in _BAR_SOURCES or need <= 0:
            continue
        venue = str(node.params.get("venue") or patch.venue)
        symbol = str(node.params.get("symbol") or patch.symbol)
        timeframe = Timeframe.from_label(str(node.params.get("timeframe", "1m")))
        bars = await _candles(channel, metadata, symbol, timeframe, need, now_ns)
        history += [(venue, bar) for bar in bars]
    history.sort(key=lambda item: event_time(item[1]))
    return history


async def _candles(
    channel: grpc.aio.Channel,
    metadata: Metadata,
    symbol: str,
    timeframe: Timeframe,
    count: int,
    now_ns: int,
) -> list[BarValue]:
    start = now_ns - (count + 2) * timeframe.ns
    request = md.GetCandlesRequest(symbol=symbol, timeframe=TIMEFRAME_TO_PB[timeframe], start_ns=start)
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
    closed = [c for c in reply.candles if c.closed]
    return [_bar(symbol, timeframe, c) for c in closed[-count:]]


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
