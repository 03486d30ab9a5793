"""Telemetry: a typed event for every stage and every notable thing the pipeline saw, written
by the shell to the bus stream `advisor.telemetry` (and from there to the audit table).

Every kind declares its fields (`KIND_FIELDS`); an event with a field missing or extra is a bug
and refused where it is made. docs/advisor.md lists every kind with its fields; a unit test
checks the list against `KIND_FIELDS`.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple, TypeAlias

from trademesh.core.advisor.engine.ids import telemetry_id
from trademesh.core.domain.contracts.signal import Signal

__all__ = [
    "KIND_FIELDS",
    "STAGE_KINDS",
    "JsonValue",
    "Stage",
    "Subject",
    "TelemetryEvent",
    "TelemetryKind",
    "TelemetryLog",
]

JsonValue: TypeAlias = "str | int | float | bool | list[JsonValue] | dict[str, JsonValue] | None"


class Stage(enum.Enum):
    # Members are singletons, equal only to themselves: hashed by identity, in C (Enum's own
    # hash is a Python call on the name; a decision looks stages and kinds up a few hundred times).
    __hash__ = object.__hash__

    CONTEXT = 1
    QUALITY = 2
    EVALUATION = 3
    CONVICTION = 4
    CALIBRATION = 5
    SYNTHESIS = 6
    VALIDATION = 7
    INTENT = 8

    @property
    def label(self) -> str:
        return self.name.lower()


class TelemetryKind(enum.Enum):
    __hash__ = object.__hash__  # as Stage's

    CONTEXT_STARTED = "context_started"
    CONTEXT_FINISHED = "context_finished"
    QUALITY_STARTED = "quality_started"
    QUALITY_FINISHED = "quality_finished"
    EVALUATION_STARTED = "evaluation_started"
    EVALUATION_FINISHED = "evaluation_finished"
    CONVICTION_STARTED = "conviction_started"
    CONVICTION_FINISHED = "conviction_finished"
    CALIBRATION_STARTED = "calibration_started"
    CALIBRATION_FINISHED = "calibration_finished"
    SYNTHESIS_STARTED = "synthesis_started"
    SYNTHESIS_FINISHED = "synthesis_finished"
    VALIDATION_STARTED = "validation_started"
    VALIDATION_FINISHED = "validation_finished"
    INTENT_STARTED = "intent_started"
    INTENT_FINISHED = "intent_finished"
    CONTEXT_SNAPSHOT = "context_snapshot"
    QUALITY_SCORE = "quality_score"
    MODEL_SCORE = "model_score"
    ATTRIBUTION = "attribution"
    CONVICTION_SNAPSHOT = "conviction_snapshot"
    REGIME_DETECTED = "regime_detected"
    REGIME_ROTATION = "regime_rotation"
    CALIBRATION_APPLIED = "calibration_applied"
    LLM_REQUEST = "llm_request"
    LLM_RESPONSE = "llm_response"
    LLM_TIMEOUT = "llm_timeout"
    LLM_ERROR = "llm_error"
    LLM_FALLBACK = "llm_fallback"
    HALLUCINATION_FLAG = "hallucination_flag"
    MODEL_SWITCH = "model_switch"
    VALIDATION_PASSED = "validation_passed"
    VALIDATION_FAILED = "validation_failed"
    INTENT_EMITTED = "intent_emitted"
    DECISION_BLOCKED = "decision_blocked"
    PORTFOLIO_ALLOCATION = "portfolio_allocation"
    FEATURE_DRIFT = "feature_drift"
    # Stage 8's size cut to what an inspector limit leaves (trademesh.core.advisor.engine.limits).
    POSITION_SIZED = "position_sized"


K = TelemetryKind
STAGE_KINDS: dict[Stage, tuple[TelemetryKind, TelemetryKind]] = {
    Stage.CONTEXT: (K.CONTEXT_STARTED, K.CONTEXT_FINISHED),
    Stage.QUALITY: (K.QUALITY_STARTED, K.QUALITY_FINISHED),
    Stage.EVALUATION: (K.EVALUATION_STARTED, K.EVALUATION_FINISHED),
    Stage.CONVICTION: (K.CONVICTION_STARTED, K.CONVICTION_FINISHED),
    Stage.CALIBRATION: (K.CALIBRATION_STARTED, K.CALIBRATION_FINISHED),
    Stage.SYNTHESIS: (K.SYNTHESIS_STARTED, K.SYNTHESIS_FINISHED),
    Stage.VALIDATION: (K.VALIDATION_STARTED, K.VALIDATION_FINISHED),
    Stage.INTENT: (K.INTENT_STARTED, K.INTENT_FINISHED),
}

_STARTED: tuple[str, ...] = ()
# outcome: ok, blocked, skipped or pending (waiting for the LLM); elapsed_ns from the injected
# timer (0 without one, as in a backtest).
_FINISHED = ("outcome", "elapsed_ns")

KIND_FIELDS: dict[TelemetryKind, tuple[str, ...]] = {
    **{started: _STARTED for started, _ in STAGE_KINDS.values()},
    **{finished: _FINISHED for _, finished in STAGE_KINDS.values()},
    K.CONTEXT_SNAPSHOT: (
        "price", "bid", "ask", "spread_ratio", "last_event_age_ms", "bars", "position",
        "equity", "open_orders", "recent_signals",
    ),
    K.QUALITY_SCORE: ("score", "threshold", "passed", "penalties", "reasons"),
    K.MODEL_SCORE: ("model_version", "available", "p_up", "p_direction", "rule_score", "rules_fired"),
    K.ATTRIBUTION: ("model_version", "feature", "value", "contribution"),
    K.CONVICTION_SNAPSHOT: ("detector", "model", "rules", "weights", "raw"),
    K.REGIME_DETECTED: (
        "regime", "since_ns", "bars", "adx", "di_plus", "di_minus", "vol_ratio", "volume_ratio",
    ),
    K.REGIME_ROTATION: ("from_regime", "to_regime"),
    K.CALIBRATION_APPLIED: ("calibration_version", "regime", "key", "method", "raw", "calibrated"),
    K.LLM_REQUEST: ("request_chars", "deadline_ns"),
    K.LLM_RESPONSE: ("model", "latency_ms", "chars"),
    K.LLM_TIMEOUT: ("model", "detail"),
    K.LLM_ERROR: ("model", "detail"),
    K.LLM_FALLBACK: ("reason",),
    K.HALLUCINATION_FLAG: ("check", "field", "detail", "action"),
    K.MODEL_SWITCH: ("from_model", "to_model", "reason"),
    K.VALIDATION_PASSED: ("spread_ratio", "risk_reward", "conviction"),
    K.VALIDATION_FAILED: ("spread_ratio", "risk_reward", "conviction", "reasons"),
    K.INTENT_EMITTED: (
        "intent_id", "side", "size", "entry_type", "entry_price", "stop_loss", "take_profit",
        "conviction",
    ),
    K.DECISION_BLOCKED: ("blocked_stage", "reasons"),
    K.PORTFOLIO_ALLOCATION: ("weights", "decisions", "basis"),
    K.FEATURE_DRIFT: (
        "model_version", "feature", "live_mean", "reference_mean", "reference_std", "shift", "limit",
    ),
    K.POSITION_SIZED: ("policy", "limit", "held_notional", "wanted", "size"),
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Subject:
    """What an event is about: a decision (and its signal), or the core as a whole ("")."""

    decision_id: str = ""
    signal_id: str = ""
    venue: str = ""
    symbol: str = ""
    strategy_id: str = ""

    @classmethod
    def of(cls, decision_id: str, signal: Signal) -> Subject:
        return cls(decision_id, signal.signal_id, signal.venue, signal.symbol, signal.strategy_id)


class TelemetryEvent(NamedTuple):
    """Immutable, as a frozen dataclass, and made at a tuple's cost: a decision makes ~35."""

    event_id: str
    sequence: int  # the core's running count: the order the events were made in
    kind: TelemetryKind
    at_ns: int
    stage: Stage | None
    subject: Subject
    fields: Mapping[str, JsonValue]


_new_tuple = tuple.__new__


class TelemetryLog:
    """Collects events as the stages make them; the shell drains it with `take`."""

    def __init__(self) -> None:
        self._events: list[TelemetryEvent] = []
        self._sequence = 0

    def emit(
        self,
        kind: TelemetryKind,
        at_ns: int,
        subject: Subject,
        stage: Stage | None = None,
        event_id: str = "",
        **fields: JsonValue,
    ) -> None:
        """Record an event; `event_id` "" makes one from the sequence, the time and the subject."""
        self.record(kind, at_ns, subject, stage, event_id, fields)

    def record(
        self,
        kind: TelemetryKind,
        at_ns: int,
        subject: Subject,
        stage: Stage | None,
        event_id: str,
        fields: dict[str, JsonValue],
    ) -> None:
        """`emit` with the fields as a dict of the caller's (kept when in the kind's order)."""
        expected = KIND_FIELDS[kind]
        if tuple(fields) != expected:  # not in the declared order, or a field missing or extra
            if set(fields) != set(expected):
                raise ValueError(f"{kind.value} takes fields {expected}, not {tuple(sorted(fields))}")
            fields = {name: fields[name] for name in expected}
        self._sequence += 1
        event_id = event_id or telemetry_id(self._sequence, at_ns, subject.decision_id)
        # TelemetryEvent(...) without its generated __new__ (a Python call; ~35 events a decision)
        self._events.append(
            _new_tuple(TelemetryEvent, (event_id, self._sequence, kind, at_ns, stage, subject, fields))
        )

    def take(self) -> list[TelemetryEvent]:
        events, self._events = self._events, []
        return events
