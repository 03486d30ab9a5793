"""Each stage's telemetry events, made from the stage's output (the core calls these as the
stages run; the fields are listed per kind in telemetry.KIND_FIELDS and docs/advisor.md)."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from trademesh.core.advisor.engine.answer import AttemptOutcome, LlmAttempt
from trademesh.core.advisor.engine.calibration import CalibrationResult
from trademesh.core.advisor.engine.conviction import Conviction
from trademesh.core.advisor.engine.drift import DriftAlert
from trademesh.core.advisor.engine.evaluation import AdvisorEvaluation
from trademesh.core.advisor.engine.ids import event_id_of
from trademesh.core.advisor.engine.quality import QualityGate
from trademesh.core.advisor.engine.regime import AdvisorRegimeView
from trademesh.core.advisor.engine.snapshot import ContextSnapshot
from trademesh.core.advisor.engine.synthesis import FlagAction
from trademesh.core.advisor.engine.telemetry import (
    STAGE_KINDS,
    JsonValue,
    Stage,
    Subject,
    TelemetryKind,
    TelemetryLog,
)
from trademesh.core.advisor.engine.validation import Validation
from trademesh.core.domain.contracts.intent import ExecutionIntent
from trademesh.core.domain.decimals import format_decimal

__all__ = ["DecisionTelemetry"]

K = TelemetryKind


def _d(value: Decimal | None) -> str | None:
    return None if value is None else format_decimal(value)


class DecisionTelemetry:
    """Emits one decision's events into the core's log, timing stages with the injected timer."""

    def __init__(self, log: TelemetryLog, subject: Subject, timer: Callable[[], int] | None) -> None:
        self.log = log
        self.subject = subject
        self.timer = timer
        self._started: dict[Stage, int] = {}
        self._count = 0
        self._prefix = subject.decision_id[:-4]  # of its events' ids (ids.decision_event_id)

    def emit(self, kind: TelemetryKind, at_ns: int, stage: Stage | None, **fields: JsonValue) -> None:
        self._count += 1
        self.log.record(kind, at_ns, self.subject, stage, event_id_of(self._prefix, self._count), fields)

    def started(self, stage: Stage, at_ns: int) -> None:
        self._started[stage] = 0 if self.timer is None else self.timer()
        self.emit(STAGE_KINDS[stage][0], at_ns, stage)

    def finished(self, stage: Stage, at_ns: int, outcome: str) -> None:
        start = self._started.pop(stage, 0)
        elapsed = 0 if self.timer is None else max(0, self.timer() - start)
        self.emit(STAGE_KINDS[stage][1], at_ns, stage, outcome=outcome, elapsed_ns=elapsed)

    def skipped(self, stage: Stage, at_ns: int) -> None:
        self.started(stage, at_ns)
        self.finished(stage, at_ns, "skipped")

    def context(self, snap: ContextSnapshot, at_ns: int) -> None:
        book = snap.context.book
        age = snap.last_event_age_ns
        self.emit(
            K.CONTEXT_SNAPSHOT, at_ns, Stage.CONTEXT,
            price=_d(snap.reference_price),
            bid=None if book is None else _d(book.bid),
            ask=None if book is None else _d(book.ask),
            spread_ratio=_d(snap.spread_ratio),
            last_event_age_ms=None if age is None else age // 1_000_000,
            bars=len(snap.context.bars),
            position=_d(snap.position),
            equity=_d(snap.equity),
            open_orders=len(snap.context.open_orders),
            recent_signals=len(snap.context.recent_signals),
        )  # fmt: skip

    def quality(self, gate: QualityGate, at_ns: int) -> None:
        penalties: dict[str, JsonValue] = {p.check: round(p.amount, 6) for p in gate.penalties}
        self.emit(
            K.QUALITY_SCORE, at_ns, Stage.QUALITY, score=gate.score, threshold=gate.threshold,
            passed=gate.passed, penalties=penalties, reasons=list(gate.reasons),
        )  # fmt: skip

    def evaluation(self, ev: AdvisorEvaluation, at_ns: int) -> None:
        self.emit(
            K.MODEL_SCORE, at_ns, Stage.EVALUATION,
            model_version=ev.model_version,
            available=ev.model is not None,
            p_up=None if ev.model is None else ev.model.p_up,
            p_direction=ev.p_direction,
            rule_score=None if ev.rules is None else ev.rules.score,
            rules_fired=[] if ev.rules is None else list(ev.rules.fired),
        )  # fmt: skip
        if ev.model is None:
            return
        for name, value, contribution in ev.model.contributions:
            self.emit(
                K.ATTRIBUTION, at_ns, Stage.EVALUATION, model_version=ev.model_version, feature=name,
                value=value, contribution=contribution,
            )  # fmt: skip

    def drift(self, alert: DriftAlert, model_version: str, limit: float, at_ns: int) -> None:
        self.emit(
            K.FEATURE_DRIFT, at_ns, Stage.EVALUATION, model_version=model_version, feature=alert.feature,
            live_mean=alert.live_mean, reference_mean=alert.reference_mean,
            reference_std=alert.reference_std, shift=alert.shift, limit=limit,
        )  # fmt: skip

    def conviction(self, c: Conviction, at_ns: int) -> None:
        weights: dict[str, JsonValue] = {
            "detector": c.weights[0],
            "model": c.weights[1],
            "rules": c.weights[2],
        }
        self.emit(
            K.CONVICTION_SNAPSHOT, at_ns, Stage.CONVICTION, detector=c.detector, model=c.model,
            rules=c.rules, weights=weights, raw=c.raw,
        )  # fmt: skip

    def regime(self, regime: AdvisorRegimeView, previous: str | None, at_ns: int) -> None:
        self.emit(
            K.REGIME_DETECTED, at_ns, Stage.CALIBRATION, regime=regime.label, since_ns=regime.since_ns,
            bars=regime.bars, adx=regime.adx, di_plus=regime.di_plus, di_minus=regime.di_minus,
            vol_ratio=regime.vol_ratio, volume_ratio=regime.volume_ratio,
        )  # fmt: skip
        if previous is not None and previous != regime.label:
            self.emit(
                K.REGIME_ROTATION, at_ns, Stage.CALIBRATION, from_regime=previous, to_regime=regime.label
            )

    def calibration(self, result: CalibrationResult, version: str, at_ns: int) -> None:
        self.emit(
            K.CALIBRATION_APPLIED, at_ns, Stage.CALIBRATION, calibration_version=version,
            regime=result.regime, key=result.key, method=result.method.value, raw=result.raw,
            calibrated=result.calibrated,
        )  # fmt: skip

    def attempt(self, attempt: LlmAttempt, at_ns: int) -> None:
        if attempt.outcome is AttemptOutcome.TIMEOUT:
            self.emit(K.LLM_TIMEOUT, at_ns, Stage.SYNTHESIS, model=attempt.model, detail=attempt.detail)
        elif attempt.outcome is AttemptOutcome.ERROR:
            self.emit(K.LLM_ERROR, at_ns, Stage.SYNTHESIS, model=attempt.model, detail=attempt.detail)

    def flags(self, actions: tuple[FlagAction, ...], at_ns: int) -> None:
        for a in actions:
            self.emit(
                K.HALLUCINATION_FLAG, at_ns, Stage.SYNTHESIS, check=a.flag.check, field=a.flag.field,
                detail=a.flag.detail, action=a.action,
            )  # fmt: skip

    def validation(self, v: Validation, at_ns: int) -> None:
        rr = None if v.plan is None else _d(v.plan.risk_reward)
        spread = _d(v.spread_ratio)
        if v.passed:
            self.emit(
                K.VALIDATION_PASSED, at_ns, Stage.VALIDATION, spread_ratio=spread, risk_reward=rr,
                conviction=v.conviction,
            )  # fmt: skip
        else:
            self.emit(
                K.VALIDATION_FAILED, at_ns, Stage.VALIDATION, spread_ratio=spread, risk_reward=rr,
                conviction=v.conviction, reasons=list(v.reasons),
            )  # fmt: skip

    def intent(self, intent: ExecutionIntent, at_ns: int) -> None:
        self.emit(
            K.INTENT_EMITTED, at_ns, Stage.INTENT,
            intent_id=intent.intent_id,
            side=intent.side.value,
            size=_d(intent.size),
            entry_type=intent.entry_type.value,
            entry_price=_d(intent.entry_price),
            stop_loss=_d(intent.stop_loss),
            take_profit=_d(intent.take_profit),
            conviction=intent.conviction,
        )  # fmt: skip

    def blocked(self, stage: Stage, reasons: tuple[str, ...], at_ns: int) -> None:
        self.emit(K.DECISION_BLOCKED, at_ns, stage, blocked_stage=stage.label, reasons=list(reasons))
