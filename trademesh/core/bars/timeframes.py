"""The bar timeframes, finest first, and their wire values."""

from __future__ import annotations

from trademesh.core.domain.convert import TIMEFRAME_FROM_PB, TIMEFRAME_TO_PB
from trademesh.core.domain.model import Timeframe

__all__ = ["FROM_PB", "HIGHER", "S1_NS", "TIMEFRAMES", "TO_PB"]

# Every bar is built as a 1s bar first; the others are merged from closed 1s bars.
TIMEFRAMES: tuple[Timeframe, ...] = tuple(Timeframe)
HIGHER: tuple[Timeframe, ...] = TIMEFRAMES[1:]
S1_NS = Timeframe.S1.ns

TO_PB = TIMEFRAME_TO_PB
FROM_PB = TIMEFRAME_FROM_PB
