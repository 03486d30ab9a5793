"""The bar timeframes, finest first, and their wire values."""

from __future__ import annotations

from core.model import Timeframe
from trademesh.common.v1 import common_pb2 as common

__all__ = ["FROM_PB", "HIGHER", "S1_NS", "TIMEFRAMES", "TO_PB"]

# Every bar is built as a 1s bar first; the others are merged from closed 1s bars.
TIMEFRAMES: tuple[Timeframe, ...] = tuple(Timeframe)
HIGHER: tuple[Timeframe, ...] = TIMEFRAMES[1:]
S1_NS = Timeframe.S1.ns

TO_PB: dict[Timeframe, common.Timeframe.ValueType] = {
    Timeframe.S1: common.TIMEFRAME_1_SECOND,
    Timeframe.M1: common.TIMEFRAME_1_MINUTE,
    Timeframe.M5: common.TIMEFRAME_5_MINUTES,
    Timeframe.M15: common.TIMEFRAME_15_MINUTES,
    Timeframe.H1: common.TIMEFRAME_1_HOUR,
    Timeframe.H4: common.TIMEFRAME_4_HOURS,
    Timeframe.D1: common.TIMEFRAME_1_DAY,
}
FROM_PB = {value: timeframe for timeframe, value in TO_PB.items()}
