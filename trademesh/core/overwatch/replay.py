"""What a backtest (trademesh.core.backtest) uses of the overwatch, in one module: Overwatch's engine
(the markets' regimes) and its candle conversions.

The backtest imports the overwatch only through here (tests/unit/test_backtest_imports.py): what it
reaches of the service, its engine and its shell's modules alike, is named in one place (issue 61)."""

from __future__ import annotations

from trademesh.core.overwatch.convert import candle_of, close_time_ns
from trademesh.core.overwatch.engine import Overwatch, OverwatchConfig

__all__ = [
    "Overwatch",
    "OverwatchConfig",
    "candle_of",
    "close_time_ns",
]
