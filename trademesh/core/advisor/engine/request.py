"""Stage 6's request: the context and every earlier stage's output as one JSON-serialisable
object, for the LLM transport to send (with INSTRUCTIONS and answer.RESPONSE_FORMAT).

Decimals go as decimal strings, floats as JSON numbers; `to_json` is canonical (sorted keys,
no spaces), so the same decision always sends the same bytes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from trademesh.core.advisor.engine.calibration import CalibrationResult
from trademesh.core.advisor.engine.conviction import Conviction
from trademesh.core.advisor.engine.evaluation import AdvisorEvaluation
from trademesh.core.advisor.engine.quality import QualityGate
from trademesh.core.advisor.engine.regime import AdvisorRegimeView
from trademesh.core.advisor.engine.snapshot import ContextSnapshot
from trademesh.core.domain.contracts.signal import Signal
from trademesh.core.domain.decimals import format_decimal

__all__ = ["INSTRUCTIONS", "StageOutputs", "SynthesisRequest", "build_request"]

_PCT_STEP = Decimal("0.000001")

INSTRUCTIONS = (
    "You are the synthesis stage of a trading decision pipeline. The user message is a JSON "
    "object: a detector's signal, the market context and the outputs of the earlier stages "
    "(market quality, rules, model, conviction, regime, calibration). Judge whether the "
    "signal's direction is supported. Answer with JSON only: bias (long, short or flat), "
    "confidence in [0, 1] that your bias is right, size_multiplier in [0, 2] (1 keeps the "
    "risk-based size), and reasoning. Quote only numbers that appear in the input or in the "
    "results of the tools you call. If your bias contradicts the signal, say why."
)


@dataclass(frozen=True)
class StageOutputs:
    """Stages 1-5's outputs, as the request (and the deterministic synthesis) need them."""

    signal: Signal
    snapshot: ContextSnapshot
    quality: QualityGate
    evaluation: AdvisorEvaluation
    conviction: Conviction
    regime: AdvisorRegimeView
    calibration: CalibrationResult


@dataclass(frozen=True)
class SynthesisRequest:
    decision_id: str
    instructions: str
    payload: dict[str, Any]

    def to_json(self) -> str:
        return json.dumps(self.payload, sort_keys=True, separators=(",", ":"))


def _d(value: Decimal | None) -> str | None:
    return None if value is None else format_decimal(value)


def _signal(s: Signal) -> dict[str, Any]:
    return {
        "signal_id": s.signal_id,
        "venue": s.venue,
        "symbol": s.symbol,
        "direction": s.direction.value,
        "conviction": _d(s.conviction),
        "score": _d(s.score),
        "threshold": _d(s.threshold),
        "strategy_id": s.strategy_id,
        "patch_version": s.patch_version,
        "rules": [
            {"name": r.name, "weight": _d(r.weight), "value": r.value, "fired": r.fired} for r in s.rules
        ],
    }


def _market(snap: ContextSnapshot) -> dict[str, Any]:
    book = snap.context.book
    spread = snap.spread_ratio
    return {
        "last_price": _d(snap.context.price),
        "reference_price": _d(snap.reference_price),
        "bid": None if book is None else _d(book.bid),
        "bid_size": None if book is None else _d(book.bid_size),
        "ask": None if book is None else _d(book.ask),
        "ask_size": None if book is None else _d(book.ask_size),
        "spread_pct": None if spread is None else _d((spread * 100).quantize(_PCT_STEP)),
        "last_event_age_ms": None if snap.last_event_age_ns is None else snap.last_event_age_ns // 1_000_000,
    }


def _bars(snap: ContextSnapshot, count: int) -> list[dict[str, Any]]:
    bars = snap.context.bars[-count:] if count > 0 else ()
    return [
        {"open_time_ns": b.open_time_ns, "open": _d(b.open), "high": _d(b.high), "low": _d(b.low),
         "close": _d(b.close), "volume": _d(b.volume)}
        for b in bars
    ]  # fmt: skip


def _evaluation(e: AdvisorEvaluation) -> dict[str, Any]:
    return {
        "features": None if e.features is None else e.features.named(),
        "rules": None if e.rules is None else [
            {"name": c.name, "weight": c.weight, "value": c.value, "fired": c.fired} for c in e.rules.checks
        ],
        "rule_score": None if e.rules is None else e.rules.score,
        "model_version": e.model_version,
        "p_up": None if e.model is None else e.model.p_up,
        "p_direction": e.p_direction,
        "attribution": None if e.model is None else {name: c for name, _, c in e.model.contributions},
        "note": e.note,
    }  # fmt: skip


def _regime(r: AdvisorRegimeView) -> dict[str, Any]:
    """The market's regime as Overwatch's classifier reads it from the bars: its label
    (trend_up, trend_down, range, high_volatility, thin_liquidity; unknown while warming up), since
    when, and what it was read from: ADX and the directional indicators, and the realised
    volatility and the mean volume each over its own long-run level."""
    return {
        "label": r.label, "since_ns": r.since_ns, "bars": r.bars, "adx": r.adx, "di_plus": r.di_plus,
        "di_minus": r.di_minus, "vol_ratio": r.vol_ratio, "volume_ratio": r.volume_ratio,
    }  # fmt: skip


def build_request(decision_id: str, stages: StageOutputs, bars: int) -> SynthesisRequest:
    snap = stages.snapshot
    payload = {
        "decision_id": decision_id,
        "signal": _signal(stages.signal),
        "market": _market(snap),
        "bars": _bars(snap, bars),
        "account": {
            "position": _d(snap.position),
            "equity": _d(snap.equity),
            "open_orders": len(snap.context.open_orders),
            "recent_signals": len(snap.context.recent_signals),
        },
        "quality": {
            "score": stages.quality.score,
            "threshold": stages.quality.threshold,
            "reasons": list(stages.quality.reasons),
        },
        "evaluation": _evaluation(stages.evaluation),
        "conviction": {
            "detector": stages.conviction.detector,
            "model": stages.conviction.model,
            "rules": stages.conviction.rules,
            "raw": stages.conviction.raw,
        },
        "regime": _regime(stages.regime),
        "calibration": {
            "method": stages.calibration.method.value,
            "raw": stages.calibration.raw,
            "calibrated": stages.calibration.calibrated,
        },
    }
    return SynthesisRequest(decision_id, INSTRUCTIONS, payload)
