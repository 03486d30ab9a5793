"""Overwatch's tests' bars: a Candle as the bars service publishes it on the bus (a bus.Bar of
1m), for the shell's unit tests and the service's integration test alike."""

from __future__ import annotations

from trademesh.bus.v1 import bus_pb2 as bus
from trademesh.common.v1 import common_pb2 as common
from trademesh.core.domain.model import Candle

__all__ = ["bus_bar"]


def bus_bar(
    candle: Candle,
    venue: str = "sim",
    symbol: str = "BTC/USDT",
    timeframe: common.Timeframe.ValueType = common.TIMEFRAME_1_MINUTE,
) -> bus.Bar:
    return bus.Bar(
        venue=venue,
        symbol=symbol,
        timeframe=timeframe,
        open_time_ns=candle.open_time_ns,
        open=str(candle.open),
        high=str(candle.high),
        low=str(candle.low),
        close=str(candle.close),
        volume=str(candle.volume),
        quote_volume=str(candle.quote_volume),
        trade_count=candle.trade_count,
    )
