"""What a backtest (trademesh.core.backtest) uses of the bars, in one module: the bar service's engine
(closed bars built from trades) and its watermark rules.

The backtest imports the bars only through here (tests/unit/test_backtest_imports.py): what it
reaches of the service, its engine and its shell's modules alike, is named in one place (issue 61)."""

from __future__ import annotations

from trademesh.core.bars.engine import VenueBars
from trademesh.core.bars.watermark import WatermarkRules

__all__ = [
    "VenueBars",
    "WatermarkRules",
]
