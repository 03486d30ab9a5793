"""Warm-up history for a patch's bar sources: the venue's own closed candles (GetCandles).

A patch whose sources need more history than the venue holds (a sim that just started) is
warmed from live data instead (core.detector.runner); trade sources always are.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import grpc

from core.convert import TIMEFRAME_TO_PB
from core.detector.engine.engine import Engine
from core.detector.engine.io import Event, event_time
from core.detector.engine.values import BarValue
from core.model import Timeframe
from core.rpc.client import Metadata
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.marketdata.v1 import marketdata_pb2_grpc as md_grpc

__all__ = ["bar_history"]

log = logging.getLogger(__name__)

_CALL_TIMEOUT_S = 10.0
_BAR_SOURCES = ("trade_bars", "bars")


async def bar_history(
    engine: Engine, patch_id: str, channel: Callable[[], grpc.aio.Channel], metadata: Metadata, now_ns: int
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
    channel: Callable[[], grpc.aio.Channel],
    metadata: Metadata,
    symbol: str,
    timeframe: Timeframe,
    count: int,
    now_ns: int,
) -> list[BarValue]:
    start = now_ns - (count + 2) * timeframe.ns
    request = md.GetCandlesRequest(symbol=symbol, timeframe=TIMEFRAME_TO_PB[timeframe], start_ns=start)
    try:
        async with channel() as open_channel:
            reply = await md_grpc.MarketDataStub(open_channel).GetCandles(
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
