"""AdvisorCore: the 8-stage pipeline as an engine core.

    core = AdvisorCore(config, model, calibration)
    out = core.on_signal(signal, context, now_ns)     # Decision, or Pending (send out.request)
    decision = core.on_answer(answer, now_ns)         # the LLM's answer (or failure) as an event
    decisions = core.expire(now_ns)                   # pending decisions past their deadline
    events = core.take_telemetry()

Many decisions wait for the LLM at once (up to SynthesisConfig.max_pending), each by its id, so
throughput is not bound by the LLM's latency. Pure: no I/O, no wall clock (time is `now_ns`;
stage timings use the optional injected timer), so the same calls give the same decisions,
intents and telemetry, byte for byte.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from decimal import Decimal

from trademesh.core.advisor.engine.answer import (
    AttemptOutcome,
    FailureReason,
    LlmAnswer,
    LlmAttempt,
    LlmFailure,
)
from trademesh.core.advisor.engine.calibration import Calibration, CalibrationResult, calibrate
from trademesh.core.advisor.engine.checks import check_answer
from trademesh.core.advisor.engine.config import AdvisorConfig
from trademesh.core.advisor.engine.context import Context
from trademesh.core.advisor.engine.conviction import Conviction, combine
from trademesh.core.advisor.engine.decision import Decision, Outcome, Pending
from trademesh.core.advisor.engine.drift import DriftMonitor
from trademesh.core.advisor.engine.evaluation import AdvisorEvaluation, ScoredBars, evaluate, score_bars
from trademesh.core.advisor.engine.ids import decision_id
from trademesh.core.advisor.engine.intent import close_intent, open_intent
from trademesh.core.advisor.engine.limits import RiskLimits, cap_size, describe, held_on_side
from trademesh.core.advisor.engine.model import ModelArtifact
from trademesh.core.advisor.engine.portfolio import AllocationTracker
from trademesh.core.advisor.engine.quality import QualityGate, assess_quality
from trademesh.core.advisor.engine.record import DecisionTelemetry
from trademesh.core.advisor.engine.regime import AdvisorRegimeView, RegimeReader
from trademesh.core.advisor.engine.request import StageOutputs, build_request
from trademesh.core.advisor.engine.sizing import Sizing, risk_size
from trademesh.core.advisor.engine.snapshot import ContextSnapshot, snapshot
from trademesh.core.advisor.engine.synthesis import (
    Synthesis,
    SynthesisSource,
    deterministic_synthesis,
    from_answer,
)
from trademesh.core.advisor.engine.telemetry import (
    JsonValue,
    Stage,
    Subject,
    TelemetryEvent,
    TelemetryKind,
    TelemetryLog,
)
from trademesh.core.advisor.engine.validation import Validation, validate
from trademesh.core.domain.contracts.intent import ExecutionIntent, intent_violations
from trademesh.core.domain.contracts.signal import Direction, Signal, direction_sign
from trademesh.core.domain.decimals import format_decimal
from trademesh.core.platform.errors import AlreadyExists

__all__ = ["AdvisorCore"]

K = TelemetryKind
_NS_PER_MS = 1_000_000


@dataclass
class _Work:
    """One decision's outputs as its stages produce them (and, while it waits, its request)."""

    decision_id: str
    signal: Signal
    accepted_ns: int
    rec: DecisionTelemetry
    snap: ContextSnapshot
    quality: QualityGate | None = None
    evaluation: AdvisorEvaluation | None = None
    conviction: Conviction | None = None
    regime: AdvisorRegimeView | None = None
    calibration: CalibrationResult | None = None
    synthesis: Synthesis | None = None
    validation: Validation | None = None
    sizing: Sizing | None = None
    stages: StageOutputs | None = None
    request_json: str = ""
    deadline_ns: int = 0


class AdvisorCore:
    def __init__(
        self,
        config: AdvisorConfig,
        model: ModelArtifact | None,
        calibration: Calibration,
        timer: Callable[[], int] | None = None,
    ) -> None:
        self.config = config
        self.timer = timer
        self.calibration = calibration
        self.model: ModelArtifact | None = None
        self._drift: DriftMonitor | None = None
        self.set_model(model)
        self._log = TelemetryLog()
        self._pending: dict[str, _Work] = {}
        self._regimes: dict[tuple[str, str], str] = {}  # each market's last decision's regime
        self._reader = RegimeReader(config.regime)
        self._scored: dict[tuple[str, str], ScoredBars] = {}  # each market's last bars, scored
        self._last_model: str | None = None
        self._allocation = AllocationTracker(config.monitor.allocation_every)
        # The inspector's limits stage 8 sizes within (None: not known; the shell's input).
        self.limits: RiskLimits | None = None

    # ---- state the shell manages

    def set_model(self, model: ModelArtifact | None) -> None:
        self.model = model
        monitor = self.config.monitor
        self._drift = (
            None
            if model is None
            else DriftMonitor(model.reference, monitor.drift_window, monitor.drift_limit)
        )

    def set_calibration(self, calibration: Calibration) -> None:
        self.calibration = calibration

    def on_limits(self, limits: RiskLimits | None) -> None:
        """The inspector's limits as the shell last read them (None: unknown, sized without)."""
        self.limits = limits

    def in_flight(self) -> int:
        return len(self._pending)

    def take_telemetry(self) -> list[TelemetryEvent]:
        return self._log.take()

    # ---- events in

    def on_signal(self, signal: Signal, context: Context, now_ns: int) -> Pending | Decision:
        did = decision_id(signal.signal_id, now_ns)
        if did in self._pending:
            raise AlreadyExists(f"decision {did} for signal {signal.signal_id} is waiting already")
        rec = DecisionTelemetry(self._log, Subject.of(did, signal), self.timer)
        rec.started(Stage.CONTEXT, now_ns)
        work = _Work(did, signal, now_ns, rec, snapshot(signal, context, now_ns))
        rec.context(work.snap, now_ns)
        if not work.snap.accepted:
            rec.finished(Stage.CONTEXT, now_ns, "blocked")
            return self._blocked(work, Stage.CONTEXT, work.snap.problems, now_ns)
        rec.finished(Stage.CONTEXT, now_ns, "ok")
        if not self._quality(work, now_ns):
            return self._blocked(work, Stage.QUALITY, work.quality.reasons if work.quality else (), now_ns)
        if signal.direction is Direction.FLAT:
            return self._flat(work, now_ns)
        self._evaluate(work, now_ns)
        return self._synthesise(work, now_ns)

    def on_answer(self, answer: LlmAnswer | LlmFailure, now_ns: int) -> Decision | None:
        """The LLM's answer for a pending decision; None when it is not pending (late, unknown)."""
        work = self._pending.pop(answer.decision_id, None)
        if work is None:
            self._late(answer, now_ns)
            return None
        assert work.stages is not None  # set before a decision waits
        final = answer.model if isinstance(answer, LlmAnswer) else None
        self._attempts(work.rec, answer.attempts, final, now_ns)
        if isinstance(answer, LlmAnswer):
            work.rec.emit(
                K.LLM_RESPONSE, now_ns, Stage.SYNTHESIS, model=answer.model, latency_ms=answer.latency_ms,
                chars=len(answer.text),
            )  # fmt: skip
            parsed = check_answer(
                answer.text, work.request_json, work.signal.direction, self.config.synthesis,
                answer.tool_results,
            )  # fmt: skip
            synthesis = from_answer(work.stages, parsed, answer.model, self.config.synthesis)
            work.rec.flags(synthesis.flags, now_ns)
        else:
            self._failure(work.rec, answer, now_ns)
            detail = f": {answer.detail}" if answer.detail else ""
            synthesis = deterministic_synthesis(work.stages, f"llm {answer.reason.value}{detail}")
        return self._complete(work, synthesis, now_ns)

    def expire(self, now_ns: int) -> list[Decision]:
        """Decide every pending decision whose deadline has passed, without its answer."""
        due = [d for d, w in self._pending.items() if w.deadline_ns <= now_ns]
        decisions = []
        for did in due:
            work = self._pending.pop(did)
            assert work.stages is not None
            detail = f"no answer within {self.config.synthesis.deadline_ms} ms"
            work.rec.emit(K.LLM_TIMEOUT, now_ns, Stage.SYNTHESIS, model=self._last_model or "", detail=detail)
            synthesis = deterministic_synthesis(work.stages, f"llm deadline missed ({detail})")
            decisions.append(self._complete(work, synthesis, now_ns))
        return decisions

    # ---- stages 2-5

    def _quality(self, work: _Work, now_ns: int) -> bool:
        """Stage 2; False when the gate blocks (never for a flat signal: an exit is not gated)."""
        work.rec.started(Stage.QUALITY, now_ns)
        work.quality = assess_quality(work.snap, self.config.quality)
        work.rec.quality(work.quality, now_ns)
        passed = work.quality.passed or work.signal.direction is Direction.FLAT
        work.rec.finished(Stage.QUALITY, now_ns, "ok" if passed else "blocked")
        return passed

    def _evaluate(self, work: _Work, now_ns: int) -> None:
        """Stages 3, 4 and 5: evaluation, conviction, regime and calibration."""
        cfg, rec, signal = self.config, work.rec, work.signal
        sign = direction_sign(signal.direction)
        rec.started(Stage.EVALUATION, now_ns)
        market = (signal.venue, signal.symbol)
        scored = self._scored[market] = score_bars(
            work.snap.context.bars, self.model, self._scored.get(market)
        )
        work.evaluation = evaluate(work.snap, sign, self.model, cfg.rules, scored)
        rec.evaluation(work.evaluation, now_ns)
        self._watch_drift(work, now_ns)
        rec.finished(Stage.EVALUATION, now_ns, "ok" if work.evaluation.note == "" else "partial")
        rec.started(Stage.CONVICTION, now_ns)
        work.conviction = combine(float(signal.conviction), work.evaluation, cfg.conviction)
        rec.conviction(work.conviction, now_ns)
        rec.finished(Stage.CONVICTION, now_ns, "ok")
        rec.started(Stage.CALIBRATION, now_ns)
        work.regime = self._reader.read(market, work.snap.context.bars)
        rec.regime(work.regime, self._regimes.get(market), now_ns)
        self._regimes[market] = work.regime.label
        work.calibration = calibrate(self.calibration, work.regime.label, work.conviction.raw)
        rec.calibration(work.calibration, self.calibration.version, now_ns)
        rec.finished(Stage.CALIBRATION, now_ns, "ok")

    def _watch_drift(self, work: _Work, now_ns: int) -> None:
        features = work.evaluation.features if work.evaluation else None
        if self._drift is None or features is None or self.model is None:
            return
        for alert in self._drift.observe(work.signal.venue, work.signal.symbol, features):
            work.rec.drift(alert, self.model.version, self.config.monitor.drift_limit, now_ns)

    # ---- stage 6

    def _synthesise(self, work: _Work, now_ns: int) -> Pending | Decision:
        assert work.quality and work.evaluation and work.conviction and work.regime and work.calibration
        work.stages = StageOutputs(
            work.signal,
            work.snap,
            work.quality,
            work.evaluation,
            work.conviction,
            work.regime,
            work.calibration,
        )
        work.rec.started(Stage.SYNTHESIS, now_ns)
        cfg = self.config.synthesis
        if not cfg.llm_enabled:
            return self._complete(work, deterministic_synthesis(work.stages, "llm disabled"), now_ns)
        if len(self._pending) >= cfg.max_pending:
            reason = f"{len(self._pending)} decisions already wait for the llm (max_pending)"
            return self._complete(work, deterministic_synthesis(work.stages, reason), now_ns)
        request = build_request(work.decision_id, work.stages, cfg.bars_in_request)
        work.request_json = request.to_json()
        work.deadline_ns = now_ns + cfg.deadline_ms * _NS_PER_MS
        work.rec.emit(
            K.LLM_REQUEST, now_ns, Stage.SYNTHESIS, request_chars=len(work.request_json),
            deadline_ns=work.deadline_ns,
        )  # fmt: skip
        self._pending[work.decision_id] = work
        return Pending(work.decision_id, work.signal.signal_id, request, work.deadline_ns)

    def _attempts(
        self, rec: DecisionTelemetry, attempts: tuple[LlmAttempt, ...], final: str | None, now_ns: int
    ) -> None:
        """Each failed attempt's event, and a model_switch for each change of model."""
        previous, why = self._last_model, "the transport chose another model"
        chain = [(a.model, a) for a in attempts] + ([] if final is None else [(final, None)])
        for model, attempt in chain:
            if previous is not None and model != previous:
                rec.emit(
                    K.MODEL_SWITCH, now_ns, Stage.SYNTHESIS, from_model=previous, to_model=model, reason=why
                )
            if attempt is not None:
                rec.attempt(attempt, now_ns)
                why = f"{attempt.model} {attempt.outcome.value}"
                if attempt.outcome is AttemptOutcome.OK:
                    why = "the transport chose another model"
            previous = model
        self._last_model = previous

    def _failure(self, rec: DecisionTelemetry, failure: LlmFailure, now_ns: int) -> None:
        if failure.attempts or failure.reason is FailureReason.DISABLED:
            return
        kind = K.LLM_TIMEOUT if failure.reason is FailureReason.TIMEOUT else K.LLM_ERROR
        detail = failure.detail or failure.reason.value
        rec.emit(kind, now_ns, Stage.SYNTHESIS, model=self._last_model or "", detail=detail)

    def _late(self, answer: LlmAnswer | LlmFailure, now_ns: int) -> None:
        model = answer.model if isinstance(answer, LlmAnswer) else ""
        detail = "an answer for a decision that is not waiting (decided already, or unknown)"
        scope = Subject(decision_id=answer.decision_id)
        self._log.emit(K.LLM_ERROR, now_ns, scope, Stage.SYNTHESIS, model=model, detail=detail)

    # ---- stages 7 and 8

    def _complete(self, work: _Work, synthesis: Synthesis, now_ns: int) -> Decision:
        rec = work.rec
        work.synthesis = synthesis
        if synthesis.source is SynthesisSource.DETERMINISTIC:
            rec.emit(K.LLM_FALLBACK, now_ns, Stage.SYNTHESIS, reason=synthesis.fallback_reason)
        rec.finished(Stage.SYNTHESIS, now_ns, synthesis.source.value)
        sign = direction_sign(work.signal.direction)
        rec.started(Stage.VALIDATION, now_ns)
        work.validation = validate(
            work.snap, sign, synthesis, self.config.intent.entry, self.config.validation
        )
        rec.validation(work.validation, now_ns)
        plan = work.validation.plan
        if not work.validation.passed or plan is None:
            rec.finished(Stage.VALIDATION, now_ns, "blocked")
            return self._blocked(work, Stage.VALIDATION, work.validation.reasons, now_ns)
        rec.finished(Stage.VALIDATION, now_ns, "ok")
        rec.started(Stage.INTENT, now_ns)
        instrument = work.snap.context.instrument
        assert instrument is not None  # stage 1 blocks a directional signal without one
        sizing = risk_size(
            work.snap.equity, plan.entry, plan.stop, synthesis.size_multiplier, instrument,
            self.config.sizing, plan.stop_fees,
        )  # fmt: skip
        if not isinstance(sizing, str):
            sizing = self._within_limits(work, sizing, sign, plan.entry, now_ns)
        if isinstance(sizing, str):
            rec.finished(Stage.INTENT, now_ns, "blocked")
            return self._blocked(work, Stage.INTENT, (sizing,), now_ns)
        work.sizing = sizing
        intent = open_intent(
            work.decision_id, work.signal, sign, plan, sizing, synthesis.final_conviction, self.config.intent,
            now_ns,
        )  # fmt: skip
        return self._emit_intent(work, intent, now_ns, plan.entry)

    def _within_limits(
        self, work: _Work, sizing: Sizing, sign: int, entry: Decimal, now_ns: int
    ) -> Sizing | str:
        """The size cut to what the inspector's limits leave, or why nothing is left (an intent
        over them would be blocked there for certain; docs/advisor.md)."""
        context, limits = work.snap.context, self.limits
        instrument = context.instrument
        if limits is None or instrument is None:
            return sizing
        cap = cap_size(sizing.size, entry, held_on_side(context, sign), instrument, limits)
        if cap is None:
            return sizing
        work.rec.emit(
            K.POSITION_SIZED, now_ns, Stage.INTENT, policy=cap.key, limit=format_decimal(cap.limit),
            held_notional=format_decimal(cap.held_notional), wanted=format_decimal(sizing.size),
            size=format_decimal(cap.size),
        )  # fmt: skip
        too_small = cap.size <= 0 or cap.size < instrument.min_size
        if too_small or instrument.notional(cap.size, entry) < instrument.min_notional:
            return describe(cap)
        return replace(sizing, size=cap.size, capped=True, limited_by=cap.key)

    def _flat(self, work: _Work, now_ns: int) -> Decision:
        """A flat signal: close the position (stages 3-6 do not apply to an exit)."""
        rec = work.rec
        for stage in (Stage.EVALUATION, Stage.CONVICTION, Stage.CALIBRATION, Stage.SYNTHESIS):
            rec.skipped(stage, now_ns)
        rec.started(Stage.VALIDATION, now_ns)
        position = work.snap.position
        if position == 0:
            rec.finished(Stage.VALIDATION, now_ns, "blocked")
            return self._blocked(work, Stage.VALIDATION, ("flat signal: no position to close",), now_ns)
        rec.finished(Stage.VALIDATION, now_ns, "ok")
        rec.started(Stage.INTENT, now_ns)
        intent = close_intent(work.decision_id, work.signal, position, self.config.intent, now_ns)
        return self._emit_intent(work, intent, now_ns)

    def _emit_intent(
        self, work: _Work, intent: ExecutionIntent, now_ns: int, reference: Decimal | None = None
    ) -> Decision:
        bad = intent_violations(intent, reference)  # what the inspector would refuse
        if bad:
            work.rec.finished(Stage.INTENT, now_ns, "blocked")
            reasons = tuple(f"{v.field}: {v.description}" for v in bad)
            return self._blocked(work, Stage.INTENT, reasons, now_ns)
        work.rec.intent(intent, now_ns)
        work.rec.finished(Stage.INTENT, now_ns, "ok")
        return self._decision(work, now_ns, Outcome.INTENT, None, (), intent)

    def _blocked(self, work: _Work, stage: Stage, reasons: tuple[str, ...], now_ns: int) -> Decision:
        work.rec.blocked(stage, reasons, now_ns)
        return self._decision(work, now_ns, Outcome.BLOCKED, stage, reasons, None)

    def _decision(
        self,
        work: _Work,
        now_ns: int,
        outcome: Outcome,
        stage: Stage | None,
        reasons: tuple[str, ...],
        intent: ExecutionIntent | None,
    ) -> Decision:
        decision = Decision(
            work.decision_id, work.signal, work.accepted_ns, now_ns, outcome, stage, reasons, work.snap,
            work.quality, work.evaluation, work.conviction, work.regime, work.calibration, work.synthesis,
            work.validation, work.sizing, intent,
        )  # fmt: skip
        self._allocate(work, intent, now_ns)
        return decision

    def _allocate(self, work: _Work, intent: ExecutionIntent | None, now_ns: int) -> None:
        conviction = 0.0 if intent is None else intent.conviction
        allocation = self._allocation.observe(work.signal.strategy_id, intent is not None, conviction)
        if allocation is None:
            return
        weights: dict[str, JsonValue] = dict(allocation.weights)
        basis = "pass rate x mean final conviction of the intents, per strategy"
        self._log.emit(
            K.PORTFOLIO_ALLOCATION, now_ns, Subject(), None, weights=weights,
            decisions=allocation.decisions, basis=basis,
        )  # fmt: skip
