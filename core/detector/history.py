"""Warm-up history for a patch's bar sources: the bars the recorder holds first (History.GetBars
through the gateway: recorded, imported or downloaded alike; core.foundations.warm_history), then
the venue's own closed candles (GetCandles) where none is held (after the last held bar, and in a
hole before it); everything from the venue when the detector has no gateway, or it holds nothing
of the range or cannot answer.

A patch whose sources need more history than the venue holds (a sim that just started) is
warmed from live data instead (core.detector.runner); trade sources always are.

The calls go over one channel per venue (VenueChannels), opened when first needed and kept
for the detector's life: warming ten patches at start, or one activated from Studio, opens no
new connection. The shell closes them when it stops.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from typing import NamedTuple

import grpc

from core.detector.engine.engine import Engine
from core.detector.engine.io import Event, event_time
from core.detector.engine.values import BarValue
from core.foundations.convert import TIMEFRAME_TO_PB
from core.foundations.errors import Unavailable
from core.foundations.model import Timeframe
from core.foundations.rpc.client import Metadata
from core.foundations.warm_history import HeldHistory, warm_candles
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.marketdata.v1 import marketdata_pb2_grpc as md_grpc

__all__ = ["BarNeed", "VenueChannels", "bar_history", "bar_needs", "patch_history", "warm_bars"]

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


class BarNeed(NamedTuple):
    """How many closed bars of a symbol and timeframe a bar source of a patch needs to start."""

    venue: str
    symbol: str
    timeframe: Timeframe
    bars: int


def bar_needs(engine: Engine, patch_id: str) -> list[BarNeed]:
    """What each bar source of the patch needs (a backtest reads it from recorded bars)."""
    patch = engine.patch(patch_id)
    needs = []
    for module_id, need in engine.history_needed(patch_id).items():
        node = patch.graph.nodes[module_id]
        if node.spec.type not in _BAR_SOURCES or need <= 0:
            continue
        venue = str(node.params.get("venue") or patch.venue)
        symbol = str(node.params.get("symbol") or patch.symbol)
        timeframe = Timeframe.from_label(str(node.params.get("timeframe", "1m")))
        needs.append(BarNeed(venue, symbol, timeframe, need))
    return needs


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


def warm_bars(bars: Sequence[BarValue], count: int, timeframe: Timeframe, now_ns: int) -> list[BarValue]:
    """The bars a source needing `count` warms from: opened in the window of `count` + 2 bars
    before `now_ns` and closed by it, the last `count` of them. Live (the venue's candles) and a
    backtest (the recorded bars) select alike."""
    start = now_ns - (count + 2) * timeframe.ns
    chosen = [b for b in bars if b.open_time_ns >= start and b.open_time_ns + timeframe.ns <= now_ns]
    return chosen[-count:]


def patch_history(
    engine: Engine, patch_id: str, history: Iterable[tuple[str, Event]], now_ns: int
) -> list[tuple[str, Event]]:
    """What the patch warms from among `history` (a backtest's recorded bars, fetched once for
    every patch): for each of its bar sources, the bars `bar_history` would fetch live. Never
    more: a patch warmed with more bars than live (another patch of the symbol needing more)
    starts from other indicator values."""
    history = list(history)
    chosen: list[tuple[str, Event]] = []
    for need in bar_needs(engine, patch_id):
        bars = [
            event
            for venue, event in history
            if venue == need.venue
            and isinstance(event, BarValue)
            and event.symbol == need.symbol
            and event.timeframe_s == need.timeframe.value
        ]
        chosen += [(need.venue, bar) for bar in warm_bars(bars, need.bars, need.timeframe, now_ns)]
    chosen.sort(key=lambda item: event_time(item[1]))
    return chosen


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
