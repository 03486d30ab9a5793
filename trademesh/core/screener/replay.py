"""What a backtest (trademesh.core.backtest) uses of the screener, in one module: the Screener's engine
(a screen's definition, its evaluation, its inputs and metrics), the market state its feed keeps,
the screen files and their loading, and its candle conversion.

The backtest imports the screener only through here (tests/unit/test_backtest_imports.py): what it
reaches of the service, its engine and its shell's modules alike, is named in one place (issue 61)."""

from __future__ import annotations

from trademesh.core.screener.convert import candle_of
from trademesh.core.screener.engine.definition import Screen
from trademesh.core.screener.engine.evaluate import evaluate
from trademesh.core.screener.engine.inputs import Ticker
from trademesh.core.screener.engine.metrics import TICKER_METRICS
from trademesh.core.screener.screen_file import SCREENS_DIR
from trademesh.core.screener.screens import load_screens
from trademesh.core.screener.state import MarketState

__all__ = [
    "SCREENS_DIR",
    "TICKER_METRICS",
    "MarketState",
    "Screen",
    "Ticker",
    "candle_of",
    "evaluate",
    "load_screens",
]
