"""What a backtest (trademesh.core.backtest) uses of the detector, in one module: the detector's engine
(catalog, engine, patches, inputs and outputs), the strategy files, the patches' history needs, the
market data's conversion and order, what the strategies hear back, the screens' rosters, and the bus
conversions of a signal and a position request.

The backtest imports the detector only through here (tests/unit/test_backtest_imports.py): what it
reaches of the service, its engine and its shell's modules alike, is named in one place (issue 61)."""

from __future__ import annotations

from trademesh.core.detector.convert import position_to_pb, signal_to_pb
from trademesh.core.detector.engine.catalog import Catalog
from trademesh.core.detector.engine.engine import Engine, EngineConfig
from trademesh.core.detector.engine.io import (
    Event,
    ExternalValue,
    PositionValue,
    RegimeValue,
    Source,
    event_time,
)
from trademesh.core.detector.engine.lifecycle import PatchState
from trademesh.core.detector.engine.outputs import Evaluation
from trademesh.core.detector.engine.patch import Patch
from trademesh.core.detector.engine.values import BarValue
from trademesh.core.detector.feedback import FeedbackTracker
from trademesh.core.detector.market import MarketConverter
from trademesh.core.detector.modules.sources import REGIME_TIMEFRAME
from trademesh.core.detector.needs import bar_needs, patch_history
from trademesh.core.detector.screens import Ranking, RosterChange, ScreenRoster
from trademesh.core.detector.sequence import in_market_order
from trademesh.core.detector.strategy_file import ModuleDecl, Strategy, build_patches, load_strategy, patch_id

__all__ = [
    "REGIME_TIMEFRAME",
    "BarValue",
    "Catalog",
    "Engine",
    "EngineConfig",
    "Evaluation",
    "Event",
    "ExternalValue",
    "FeedbackTracker",
    "MarketConverter",
    "ModuleDecl",
    "Patch",
    "PatchState",
    "PositionValue",
    "Ranking",
    "RegimeValue",
    "RosterChange",
    "ScreenRoster",
    "Source",
    "Strategy",
    "bar_needs",
    "build_patches",
    "event_time",
    "in_market_order",
    "load_strategy",
    "patch_history",
    "patch_id",
    "position_to_pb",
    "signal_to_pb",
]
