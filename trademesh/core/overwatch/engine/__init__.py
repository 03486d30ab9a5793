"""Overwatch's engine: a pure core. Closed bars in (with the time given, never read), regime
changes and the board of every market's regime out; a backtest drives it as the shell will."""

from trademesh.core.overwatch.engine.core import (
    BoardEntry,
    MarketKey,
    Overwatch,
    OverwatchConfig,
    RegimeBoard,
    RegimeChange,
)

__all__ = ["BoardEntry", "MarketKey", "Overwatch", "OverwatchConfig", "RegimeBoard", "RegimeChange"]
