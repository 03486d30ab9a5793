"""The core's values as the contracts' messages (trademesh.advisor.v1), and back for signals.

- `signal_from_pb`: a Signal off the bus (or a Decide request) as the core's Signal; a bad
  field is InvalidArgument naming it under `prefix` ("signal.conviction").
- `decision_to_pb`: a Decision with its telemetry and the LLM's trace: every stage's
  StageResult (status, timing from the stage's start and finish events, a summary line, the
  stage's output as JSON), the conviction before and after calibration, the synthesis, the
  hallucination flags and the intent. `stage_outputs=False` (the backtest's) leaves out each
  stage's summary and output JSON.
- `intent_to_pb`, `event_to_pb`: an intent; a telemetry event (the core's 38 kinds onto the
  contract's TelemetryEventKind, the core's kind name kept in `fields["name"]`).

Probabilities and scores go as decimal strings (the contract's rule), prices and sizes as the
core's Decimals formatted plainly.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from google.protobuf.internal.containers import RepeatedCompositeFieldContainer

from trademesh.advisor.v1 import messages_pb2 as am
from trademesh.core.advisor.engine.calibration import CalibrationMethod
from trademesh.core.advisor.engine.decision import Decision, Outcome
from trademesh.core.advisor.engine.synthesis import Synthesis, SynthesisSource
from trademesh.core.advisor.engine.telemetry import STAGE_KINDS, Stage, TelemetryEvent, TelemetryKind
from trademesh.core.advisor.outputs import KeptParts, plain, stage_texts, summaries
from trademesh.core.domain.contracts.intent import ExecutionIntent
from trademesh.core.domain.contracts.signal import Direction, RuleAttribution, Signal
from trademesh.core.domain.convert import ORDER_TYPE_TO_PB, SIDE_TO_PB, TIF_TO_PB
from trademesh.core.domain.decimals import format_decimal
from trademesh.core.platform.errors import FieldViolation, InvalidArgument, shown
from trademesh.signal.v1 import signal_pb2 as sig

__all__ = [
    "DIRECTION_TO_PB",
    "STAGE_TO_PB",
    "decision_to_pb",
    "event_to_pb",
    "intent_to_pb",
    "plain",
    "ratio",
    "signal_from_pb",
    "signal_to_pb",
]

K = TelemetryKind
DIRECTION_TO_PB = {Direction.LONG: sig.DIRECTION_LONG, Direction.SHORT: sig.DIRECTION_SHORT,
                   Direction.FLAT: sig.DIRECTION_FLAT}  # fmt: skip
_DIRECTION_FROM_PB = {v: k for k, v in DIRECTION_TO_PB.items()}
STAGE_TO_PB = {
    Stage.CONTEXT: am.STAGE_CONTEXT,
    Stage.QUALITY: am.STAGE_MARKET_QUALITY,
    Stage.EVALUATION: am.STAGE_EVALUATION,
    Stage.CONVICTION: am.STAGE_CONVICTION,
    Stage.CALIBRATION: am.STAGE_CALIBRATION,
    Stage.SYNTHESIS: am.STAGE_SYNTHESIS,
    Stage.VALIDATION: am.STAGE_VALIDATION,
    Stage.INTENT: am.STAGE_INTENT,
}
_METHODS = {
    CalibrationMethod.IDENTITY: am.CALIBRATION_METHOD_IDENTITY,
    CalibrationMethod.PLATT: am.CALIBRATION_METHOD_PLATT,
    CalibrationMethod.ISOTONIC: am.CALIBRATION_METHOD_ISOTONIC,
}
_FLAGS = {
    "invented_number": am.HALLUCINATION_KIND_INVENTED_NUMBER,
    "contradicting_direction": am.HALLUCINATION_KIND_CONTRADICTING_DIRECTION,
    "missing_field": am.HALLUCINATION_KIND_MISSING_FIELD,
    "out_of_range": am.HALLUCINATION_KIND_OUT_OF_RANGE,
    "invalid_json": am.HALLUCINATION_KIND_INVALID_JSON,
    "unexpected_field": am.HALLUCINATION_KIND_UNEXPECTED_FIELD,
}
_STARTED = {started for started, _ in STAGE_KINDS.values()}
_FINISHED = {finished for _, finished in STAGE_KINDS.values()}
_KINDS = {
    K.CONTEXT_SNAPSHOT: am.TELEMETRY_EVENT_KIND_CONTEXT_SNAPSHOT,
    K.QUALITY_SCORE: am.TELEMETRY_EVENT_KIND_QUALITY_SCORE,
    K.MODEL_SCORE: am.TELEMETRY_EVENT_KIND_MODEL_SCORE,
    K.ATTRIBUTION: am.TELEMETRY_EVENT_KIND_ATTRIBUTION,
    K.CONVICTION_SNAPSHOT: am.TELEMETRY_EVENT_KIND_CONVICTION_SNAPSHOT,
    K.REGIME_DETECTED: am.TELEMETRY_EVENT_KIND_REGIME_DETECTED,
    K.REGIME_ROTATION: am.TELEMETRY_EVENT_KIND_REGIME_ROTATION,
    K.CALIBRATION_APPLIED: am.TELEMETRY_EVENT_KIND_CALIBRATION_APPLIED,
    K.LLM_REQUEST: am.TELEMETRY_EVENT_KIND_LLM_REQUEST,
    K.LLM_RESPONSE: am.TELEMETRY_EVENT_KIND_LLM_RESPONSE,
    K.LLM_TIMEOUT: am.TELEMETRY_EVENT_KIND_LLM_TIMEOUT,
    K.LLM_ERROR: am.TELEMETRY_EVENT_KIND_LLM_ERROR,
    K.LLM_FALLBACK: am.TELEMETRY_EVENT_KIND_LLM_FALLBACK,
    K.HALLUCINATION_FLAG: am.TELEMETRY_EVENT_KIND_HALLUCINATION_FLAG,
    K.MODEL_SWITCH: am.TELEMETRY_EVENT_KIND_MODEL_SWITCH,
    K.VALIDATION_PASSED: am.TELEMETRY_EVENT_KIND_VALIDATION_PASSED,
    K.VALIDATION_FAILED: am.TELEMETRY_EVENT_KIND_VALIDATION_FAILED,
    K.INTENT_EMITTED: am.TELEMETRY_EVENT_KIND_INTENT_EMITTED,
    K.DECISION_BLOCKED: am.TELEMETRY_EVENT_KIND_DECISION_BLOCKED,
    K.PORTFOLIO_ALLOCATION: am.TELEMETRY_EVENT_KIND_PORTFOLIO_ALLOCATION,
    K.FEATURE_DRIFT: am.TELEMETRY_EVENT_KIND_FEATURE_DRIFT_ALERT,
    K.POSITION_SIZED: am.TELEMETRY_EVENT_KIND_POSITION_SIZED,
}
# The field that is an event's main value (TelemetryEvent.value), per kind.
_VALUE = {
    K.QUALITY_SCORE: "score",
    K.MODEL_SCORE: "p_direction",
    K.ATTRIBUTION: "contribution",
    K.CONVICTION_SNAPSHOT: "raw",
    K.REGIME_DETECTED: "volatility",
    K.CALIBRATION_APPLIED: "calibrated",
    K.VALIDATION_PASSED: "risk_reward",
    K.VALIDATION_FAILED: "risk_reward",
    K.INTENT_EMITTED: "size",
    K.FEATURE_DRIFT: "shift",
    K.LLM_RESPONSE: "latency_ms",
    K.POSITION_SIZED: "size",
}
_DETAIL = {K.LLM_TIMEOUT: "detail", K.LLM_ERROR: "detail", K.LLM_FALLBACK: "reason",
           K.HALLUCINATION_FLAG: "detail", K.MODEL_SWITCH: "reason"}  # fmt: skip


# Decimals of a signal outside 1e-30 .. 1e30 are refused.
_MAX_EXPONENT = 30


def ratio(value: float | None) -> str:
    """A probability, score or ratio as a decimal string, to 9 places ("" for none)."""
    if value is None:
        return ""
    text = f"{float(value):.9f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def _dec(value: Decimal | None) -> str:
    return "" if value is None else format_decimal(value)


# ---------------------------------------------------------------- signals


def _decimal(text: str, field: str, violations: list[FieldViolation]) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        violations.append(FieldViolation(field, f"{shown(text)} is not a decimal"))
        return Decimal(0)
    if not value.is_finite():
        violations.append(FieldViolation(field, f"{shown(text)} is not a finite decimal"))
        return Decimal(0)
    if value != 0 and not -_MAX_EXPONENT <= value.adjusted() <= _MAX_EXPONENT:
        # 1e999999999 is a decimal, but written out plainly it would be a billion digits.
        violations.append(
            FieldViolation(field, f"{shown(text)} is out of range (|exponent| > {_MAX_EXPONENT})")
        )
        return Decimal(0)
    return value


def signal_from_pb(message: sig.Signal, prefix: str = "") -> Signal:
    """InvalidArgument naming every bad field (`prefix` + its name)."""
    bad: list[FieldViolation] = []
    direction = _DIRECTION_FROM_PB.get(message.direction)
    if direction is None:
        bad.append(FieldViolation(f"{prefix}direction", "must be LONG, SHORT or FLAT"))
    conviction = _decimal(message.conviction, f"{prefix}conviction", bad)
    if not Decimal(0) <= conviction <= Decimal(1):
        bad.append(FieldViolation(f"{prefix}conviction", f"{shown(message.conviction)} is not in [0, 1]"))
    score = _decimal(message.score or "0", f"{prefix}score", bad)
    threshold = _decimal(message.threshold or "0", f"{prefix}threshold", bad)
    rules = tuple(
        RuleAttribution(
            r.name, _decimal(r.weight or "0", f"{prefix}rules[{i}].weight", bad), r.value, r.fired
        )
        for i, r in enumerate(message.rules)
    )
    if bad:
        raise InvalidArgument(bad)
    assert direction is not None
    try:
        return Signal(
            message.signal_id, message.venue, message.symbol, direction, conviction, score, threshold,
            message.strategy_id, message.patch_version, rules, message.ts_event_ns, message.ts_signal_ns,
        )  # fmt: skip
    except InvalidArgument as exc:
        raise InvalidArgument(
            [FieldViolation(prefix + v.field, v.description) for v in exc.violations]
        ) from None


def signal_to_pb(signal: Signal) -> sig.Signal:
    return sig.Signal(
        signal_id=signal.signal_id,
        venue=signal.venue,
        symbol=signal.symbol,
        direction=DIRECTION_TO_PB[signal.direction],
        conviction=format_decimal(signal.conviction),
        score=format_decimal(signal.score),
        threshold=format_decimal(signal.threshold),
        strategy_id=signal.strategy_id,
        patch_version=signal.patch_version,
        rules=[
            sig.RuleAttribution(name=r.name, weight=format_decimal(r.weight), value=r.value, fired=r.fired)
            for r in signal.rules
        ],
        ts_event_ns=signal.ts_event_ns,
        ts_signal_ns=signal.ts_ns,
    )


# ---------------------------------------------------------------- decisions


def _timings(events: Sequence[TelemetryEvent]) -> dict[Stage, tuple[int, int, str]]:
    """(started_ns, elapsed_ns, outcome) per stage from its start and finish events."""
    started: dict[Stage, int] = {}
    out: dict[Stage, tuple[int, int, str]] = {}
    for event in events:
        if event.stage is None:
            continue
        if event.kind in _STARTED:
            started[event.stage] = event.at_ns
        elif event.kind in _FINISHED:
            elapsed = event.fields.get("elapsed_ns")
            outcome = str(event.fields.get("outcome", ""))
            at = started.get(event.stage, event.at_ns)
            out[event.stage] = (at, elapsed if isinstance(elapsed, int) else 0, outcome)
    return out


def _status(stage: Stage, outcome: str, d: Decision) -> am.StageStatus.ValueType:
    if d.blocked_stage is stage or outcome == "blocked":
        return am.STAGE_STATUS_BLOCKED
    if outcome in ("", "skipped"):
        return am.STAGE_STATUS_SKIPPED
    if outcome in ("partial", "deterministic"):
        return am.STAGE_STATUS_DEGRADED
    return am.STAGE_STATUS_PASSED


_STAGES = tuple(Stage)  # in order (iterating an Enum is a Python generator)


def _add_stages(
    results: RepeatedCompositeFieldContainer[am.StageResult],
    d: Decision,
    events: Sequence[TelemetryEvent],
    outputs: bool,
    kept: KeptParts | None,
) -> None:
    """Every stage's result added to `results` (a decision's `stages`, made in place rather than
    made and then copied in); its summary and output JSON only when `outputs` (the costly part)."""
    timings = _timings(events)
    texts, lines = (stage_texts(d, kept), summaries(d)) if outputs else ({}, {})
    add = results.add
    for stage in _STAGES:
        at, elapsed, outcome = timings.get(stage, (0, 0, ""))
        add(
            stage=STAGE_TO_PB[stage],
            status=_status(stage, outcome, d),
            started_ns=at,
            duration_ns=elapsed,
            summary=lines.get(stage, "not run") if outputs else "",
            output_json=texts.get(stage, ""),
            reasons=list(d.reasons) if d.blocked_stage is stage else _degraded(stage, d),
        )


def _degraded(stage: Stage, d: Decision) -> list[str]:
    if stage is Stage.SYNTHESIS and d.synthesis is not None and d.synthesis.fallback_reason:
        return [d.synthesis.fallback_reason]
    if stage is Stage.EVALUATION and d.evaluation is not None and d.evaluation.note:
        return [d.evaluation.note]
    return []


def _conviction(d: Decision) -> am.Conviction | None:
    if d.conviction is None:
        return None
    calibration = d.calibration
    return am.Conviction(
        detector=ratio(d.conviction.detector),
        model_probability=ratio(d.conviction.model),
        rule_score=ratio(d.conviction.rules),
        raw=ratio(d.conviction.raw),
        calibrated="" if calibration is None else ratio(calibration.calibrated),
        regime="" if d.regime is None else d.regime.label,
        method=am.CALIBRATION_METHOD_UNSPECIFIED if calibration is None else _METHODS[calibration.method],
    )


def _synthesis(s: Synthesis) -> am.Synthesis:
    source = am.SYNTHESIS_SOURCE_LLM if s.source is SynthesisSource.LLM else am.SYNTHESIS_SOURCE_DETERMINISTIC
    return am.Synthesis(
        source=source,
        bias=DIRECTION_TO_PB[s.bias],
        confidence=ratio(s.confidence),
        reasoning=s.reasoning,
        size_multiplier=format_decimal(s.size_multiplier),
    )


def _answer_use(s: Synthesis | None, answered: bool) -> am.AnswerUse.ValueType:
    if s is None or not answered:
        return am.ANSWER_USE_NONE
    if s.source is SynthesisSource.DETERMINISTIC:
        return am.ANSWER_USE_DISCARDED
    return am.ANSWER_USE_DOWN_WEIGHTED if s.flags else am.ANSWER_USE_ACCEPTED


def intent_to_pb(
    intent: ExecutionIntent, entry: Decimal | None, risk_amount: Decimal | None, ts_signal_ns: int = 0
) -> am.Intent:
    """`entry`: the reference price a market entry was sized at (its limit price otherwise);
    `ts_signal_ns`: its signal's evaluation time (the inspector checks it as of then)."""
    price = intent.entry_price if intent.entry_price is not None else entry
    return am.Intent(
        intent_id=intent.intent_id,
        decision_id=intent.decision_id,
        signal_id=intent.signal_id,
        venue=intent.venue,
        symbol=intent.symbol,
        side=SIDE_TO_PB[intent.side],
        size=format_decimal(intent.size),
        entry_type=ORDER_TYPE_TO_PB[intent.entry_type],
        entry_price=_dec(price),
        stop_loss=_dec(intent.stop_loss),
        take_profit=_dec(intent.take_profit),
        time_in_force=TIF_TO_PB[intent.time_in_force],
        expires_at_ns=intent.expires_ns,
        conviction=ratio(intent.conviction),
        strategy_id=intent.strategy_id,
        ts_intent_ns=intent.created_ns,
        risk_amount=_dec(risk_amount),
        reduce_only=intent.reduce_only,
        ts_signal_ns=ts_signal_ns,
        leverage=_dec(intent.leverage),
    )


def _intent(d: Decision) -> am.Intent | None:
    if d.intent is None:
        return None
    plan = None if d.validation is None else d.validation.plan
    entry = plan.entry if plan is not None else d.context.reference_price
    risk = None if d.sizing is None else d.sizing.risk_amount
    return intent_to_pb(d.intent, entry, risk, d.signal.ts_ns)


def decision_to_pb(
    d: Decision,
    events: Sequence[TelemetryEvent],
    trace: am.LlmTrace | None = None,
    *,
    model_version: str = "",
    hypothetical: bool = False,
    stage_outputs: bool = True,
    kept: KeptParts | None = None,
) -> am.Decision:
    """The decision as the contract's message. Without `stage_outputs` each stage's result
    carries its status, timing and reasons but no summary and no output JSON (a backtest keeps
    none of them: about 40 % of a decision's cost). `kept`: the JSON of parts the decisions of a
    market share, made once (the same message with it or without)."""
    synthesis = d.synthesis
    flags = () if synthesis is None else synthesis.flags
    message = am.Decision(
        decision_id=d.decision_id,
        signal_id=d.signal.signal_id,
        venue=d.signal.venue,
        symbol=d.signal.symbol,
        strategy_id=d.signal.strategy_id,
        signal=signal_to_pb(d.signal),
        outcome=am.OUTCOME_INTENT if d.outcome is Outcome.INTENT else am.OUTCOME_BLOCKED,
        blocked_stage=am.STAGE_UNSPECIFIED if d.blocked_stage is None else STAGE_TO_PB[d.blocked_stage],
        block_reason="; ".join(d.reasons),
        conviction=_conviction(d),
        synthesis=None if synthesis is None else _synthesis(synthesis),
        hallucination_flags=[
            am.HallucinationFlag(
                kind=_FLAGS.get(a.flag.check, am.HALLUCINATION_KIND_UNSPECIFIED),
                field=a.flag.field,
                detail=a.flag.detail,
            )
            for a in flags
        ],
        deterministic_synthesis=synthesis is not None and synthesis.source is SynthesisSource.DETERMINISTIC,
        ts_decision_ns=d.decided_ns,
        hypothetical=hypothetical,
        model_version=model_version,
    )
    _add_stages(message.stages, d, events, stage_outputs, kept)
    if trace is not None:
        message.llm.CopyFrom(trace)
        message.llm.answer_use = _answer_use(synthesis, bool(trace.model))
    intent = _intent(d)
    if intent is not None:
        message.intent.CopyFrom(intent)
    return message


# ---------------------------------------------------------------- telemetry


# json.dumps(value, sort_keys=True, separators=(",", ":")), its encoder made once.
_FIELD_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":"))


def _json_text(value: Any) -> str:
    return _FIELD_JSON.encode(value)


def _bool_text(value: bool) -> str:
    return "true" if value else "false"


def _none_text(value: None) -> str:
    return ""


def _same_text(value: str) -> str:
    return value


# A field's value as text, by its exact type (a decision's ~35 events hold ~100 values).
_TEXT_OF: dict[type, Callable[[Any], str]] = {
    str: _same_text, int: str, float: ratio, bool: _bool_text, type(None): _none_text,
}  # fmt: skip


def _text(value: Any) -> str:
    turn = _TEXT_OF.get(type(value))
    if turn is not None:
        return turn(value)
    if isinstance(value, str):  # subclasses (a str enum) as the exact types would go
        return value
    if isinstance(value, bool):
        return _bool_text(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return ratio(value)
    return _json_text(value)


def _kind(kind: TelemetryKind) -> am.TelemetryEventKind.ValueType:
    if kind in _STARTED:
        return am.TELEMETRY_EVENT_KIND_STAGE_STARTED
    if kind in _FINISHED:
        return am.TELEMETRY_EVENT_KIND_STAGE_FINISHED
    return _KINDS[kind]


@dataclasses.dataclass(frozen=True, slots=True)
class _KindFacts:
    """How one of the core's kinds goes into the contract's event, looked up once per event."""

    kind: am.TelemetryEventKind.ValueType
    name: str
    value_field: str  # "" for none
    detail_field: str  # "" for none


_FACTS = {k: _KindFacts(_kind(k), k.value, _VALUE.get(k, ""), _DETAIL.get(k, "")) for k in TelemetryKind}
_STAGE_OF: dict[Stage | None, am.Stage.ValueType] = {stage: pb for stage, pb in STAGE_TO_PB.items()}
_STAGE_OF[None] = am.STAGE_UNSPECIFIED


def event_to_pb(event: TelemetryEvent) -> am.TelemetryEvent:
    facts = _FACTS[event.kind]
    fields = {name: value if type(value) is str else _text(value) for name, value in event.fields.items()}
    fields["name"] = facts.name
    elapsed = event.fields.get("elapsed_ns", 0)
    detail = fields.get(facts.detail_field, "")
    if event.kind is K.DECISION_BLOCKED:
        reasons = event.fields.get("reasons")
        detail = "; ".join(str(r) for r in reasons) if isinstance(reasons, list) else ""
    subject = event.subject
    return am.TelemetryEvent(
        event_id=event.event_id,
        kind=facts.kind,
        decision_id=subject.decision_id,
        signal_id=subject.signal_id,
        stage=_STAGE_OF[event.stage],
        venue=subject.venue,
        symbol=subject.symbol,
        strategy_id=subject.strategy_id,
        ts_ns=event.at_ns,
        value=fields.get(facts.value_field, ""),
        duration_ns=elapsed if isinstance(elapsed, int) else 0,
        model=fields.get("model", ""),
        detail=detail,
        fields=fields,
    )
