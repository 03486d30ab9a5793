"""The indicator library: pure, incremental math (no I/O, no clock), one family per module.

Every indicator takes one new value (or bar, trade, book) per `update` and answers its output,
or None until it is warm; `warmup` is how many updates that takes. Work per update is O(1)
(amortised for the few that recompute their sums exactly once per window, see _window.py),
never a pass over the window. Inputs are finite floats; the modules (trademesh.core.detector.modules.
indicators) drop anything else before it gets here. docs/detector.md lists the formulas.
"""

from __future__ import annotations

from trademesh.core.detector.indicators.averages import Ema, Sma, Wma
from trademesh.core.detector.indicators.book import BookImbalance, Spread
from trademesh.core.detector.indicators.channels import Donchian
from trademesh.core.detector.indicators.flow import TradeFlowImbalance, VolumeSpike, Vwap
from trademesh.core.detector.indicators.oscillators import Macd, Rsi
from trademesh.core.detector.indicators.stats import Returns, ZScore
from trademesh.core.detector.indicators.volatility import Atr, Bollinger, RealisedVol

__all__ = [
    "Atr",
    "Bollinger",
    "BookImbalance",
    "Donchian",
    "Ema",
    "Macd",
    "RealisedVol",
    "Returns",
    "Rsi",
    "Sma",
    "Spread",
    "TradeFlowImbalance",
    "VolumeSpike",
    "Vwap",
    "Wma",
    "ZScore",
]
