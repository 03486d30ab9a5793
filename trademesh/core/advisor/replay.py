"""What a backtest (trademesh.core.backtest) uses of the advisor, in one module: the advisor's engine
core (its config, context, decisions, model and answers), the model library the live advisor serves
from, its engine config's loading, and the bus conversions of a signal and a decision.

The backtest imports the advisor only through here (tests/unit/test_backtest_imports.py): what it
reaches of the service, its engine and its shell's modules alike, is named in one place (issue 61)."""

from __future__ import annotations

from trademesh.core.advisor.config import (
    MESH_MAX_NOTIONAL_SHARE,
    MESH_TIMEFRAME,
    load_engine_config,
    with_overrides,
)
from trademesh.core.advisor.convert import decision_to_pb, signal_from_pb
from trademesh.core.advisor.engine.answer import FailureReason, LlmAnswer, LlmFailure
from trademesh.core.advisor.engine.config import AdvisorConfig
from trademesh.core.advisor.engine.context import BookTop, Context, OpenOrder
from trademesh.core.advisor.engine.core import AdvisorCore
from trademesh.core.advisor.engine.decision import Pending
from trademesh.core.advisor.engine.model import ModelArtifact
from trademesh.core.advisor.library import SHIPPED_TIMEFRAMES, ModelLibrary, load_calibration, serving_model

__all__ = [
    "MESH_MAX_NOTIONAL_SHARE",
    "MESH_TIMEFRAME",
    "SHIPPED_TIMEFRAMES",
    "AdvisorConfig",
    "AdvisorCore",
    "BookTop",
    "Context",
    "FailureReason",
    "LlmAnswer",
    "LlmFailure",
    "ModelArtifact",
    "ModelLibrary",
    "OpenOrder",
    "Pending",
    "decision_to_pb",
    "load_calibration",
    "load_engine_config",
    "serving_model",
    "signal_from_pb",
    "with_overrides",
]
