"""AdvisorCore: the 8 stages in order with their telemetry, the LLM's answer as an event (many
decisions waiting at once, failures, model switches, deadlines, late answers), blocks, flat
signals, drift and allocation events, and determinism."""

from __future__ import annotations

import dataclasses
import json
from decimal import Decimal

import numpy as np
import pytest

from tests.advisor_support import INSTRUMENT, MS, NOW_NS, context, signal, trend_bars
from trademesh.core.advisor.defaults import default_calibration, default_model
from trademesh.core.advisor.engine.answer import (
    AttemptOutcome,
    FailureReason,
    LlmAnswer,
    LlmAttempt,
    LlmFailure,
)
from trademesh.core.advisor.engine.calibration import Calibration
from trademesh.core.advisor.engine.config import (
    AdvisorConfig,
    MonitorConfig,
    SizingConfig,
    SynthesisConfig,
    ValidationConfig,
)
from trademesh.core.advisor.engine.core import AdvisorCore
from trademesh.core.advisor.engine.decision import Decision, Outcome, Pending
from trademesh.core.advisor.engine.features import FEATURE_NAMES
from trademesh.core.advisor.engine.ids import decision_event_id, decision_id, event_id_of
from trademesh.core.advisor.engine.synthesis import SynthesisSource
from trademesh.core.advisor.engine.telemetry import (
    STAGE_KINDS,
    Stage,
    Subject,
    TelemetryEvent,
    TelemetryKind,
    TelemetryLog,
)
from trademesh.core.domain.contracts.signal import Direction
from trademesh.core.domain.model import Position, Side
from trademesh.core.domain.regime import Regime
from trademesh.core.overwatch.synthetic import segments_bars
from trademesh.core.platform.errors import AlreadyExists

K = TelemetryKind
D = Decimal
UNCAPPED = ValidationConfig(cap_target_at_swing=False)
NO_LLM = AdvisorConfig(validation=UNCAPPED, synthesis=SynthesisConfig(llm_enabled=False))
WITH_LLM = AdvisorConfig(validation=UNCAPPED)
GOOD = json.dumps(
    {"bias": "long", "confidence": 0.8, "reasoning": "Trend and momentum agree.", "size_multiplier": 1}
)


def kinds(events: list[TelemetryEvent]) -> list[TelemetryKind]:
    return [e.kind for e in events]


def core(config: AdvisorConfig = NO_LLM) -> AdvisorCore:
    return AdvisorCore(config, None, Calibration.identity())


def decided(result: Pending | Decision) -> Decision:
    assert isinstance(result, Decision)
    return result


def pending(result: Pending | Decision) -> Pending:
    assert isinstance(result, Pending)
    return result


def test_the_venues_fees_are_counted_in_the_trade_and_its_size() -> None:
    """The same signal on a venue charging 0.02% / 0.05%: the plan carries its round trips' fees,
    and the intent is sized so the loss at the stop, fees included, is the risk per trade."""
    charged = dataclasses.replace(INSTRUMENT, maker_fee_rate=D("0.0002"), taker_fee_rate=D("0.0005"))
    uncapped = dataclasses.replace(NO_LLM, sizing=SizingConfig(max_notional_share=D(1)))
    free = decided(core(uncapped).on_signal(signal(), context(), NOW_NS))
    d = decided(core(uncapped).on_signal(signal(), context(instrument=charged), NOW_NS))
    assert d.outcome is Outcome.INTENT and d.validation is not None and d.validation.plan is not None
    plan, sizing = d.validation.plan, d.sizing
    # 102.01 * 0.0005 + 103.13 * 0.0002 and 102.01 * 0.0005 + 101.33 * 0.0005
    assert (plan.target_fees, plan.stop_fees) == (D("0.071631"), D("0.10167"))
    assert sizing is not None and sizing.stop_fees == plan.stop_fees
    assert free.intent is not None and d.intent is not None and d.intent.size < free.intent.size
    by_risk = sizing.risk_amount / (D("0.68") + D("0.10167")) * sizing.multiplier  # the loss at the stop
    assert sizing.risk_size.quantize(D("0.000001")) == by_risk.quantize(D("0.000001"))


def test_without_the_llm_a_signal_becomes_an_intent_through_all_eight_stages() -> None:
    c = core()
    d = decided(c.on_signal(signal(), context(), NOW_NS))
    assert d.outcome is Outcome.INTENT and d.blocked_stage is None and d.reasons == ()
    assert (
        d.intent is not None and d.synthesis is not None and d.validation is not None and d.sizing is not None
    )
    assert (d.intent.side, d.intent.entry_price, d.intent.size) == (Side.BUY, D("102.01"), D("245.074"))
    assert d.intent.decision_id == d.decision_id and d.intent.signal_id == "sig-1"
    assert (
        d.synthesis.source is SynthesisSource.DETERMINISTIC and d.synthesis.fallback_reason == "llm disabled"
    )
    assert d.calibration is not None and d.intent.conviction == d.calibration.calibrated
    events = c.take_telemetry()
    stage_events = [e for e in events if e.kind in {k for pair in STAGE_KINDS.values() for k in pair}]
    assert kinds(stage_events) == [k for stage in Stage for k in STAGE_KINDS[stage]]
    outcomes = {e.stage: e.fields["outcome"] for e in stage_events if "outcome" in e.fields}
    assert outcomes == {
        **{stage: "ok" for stage in Stage},
        Stage.EVALUATION: "partial",  # no model loaded
        Stage.SYNTHESIS: "deterministic",
    }
    for kind in (K.CONTEXT_SNAPSHOT, K.QUALITY_SCORE, K.MODEL_SCORE, K.CONVICTION_SNAPSHOT, K.REGIME_DETECTED,
                 K.CALIBRATION_APPLIED, K.LLM_FALLBACK, K.VALIDATION_PASSED, K.INTENT_EMITTED):  # fmt: skip
        assert kind in kinds(events)
    assert [e.sequence for e in events] == sorted(e.sequence for e in events)
    assert all(e.subject.decision_id == d.decision_id for e in events)
    assert c.take_telemetry() == []


def test_with_the_llm_the_decision_waits_for_the_answer_event() -> None:
    c = core(WITH_LLM)
    p = pending(c.on_signal(signal(), context(), NOW_NS))
    assert p.deadline_ns == NOW_NS + 5_000 * MS
    assert json.loads(p.request.to_json())["signal"]["signal_id"] == "sig-1"
    assert c.in_flight() == 1
    assert K.LLM_REQUEST in kinds(c.take_telemetry())
    d = c.on_answer(LlmAnswer(p.decision_id, "primary", GOOD, 180), NOW_NS + 200 * MS)
    assert d is not None and d.synthesis is not None and d.intent is not None
    assert d.synthesis.source is SynthesisSource.LLM and d.synthesis.model == "primary"
    assert d.decided_ns - d.accepted_ns == 200 * MS
    assert c.in_flight() == 0
    events = c.take_telemetry()
    assert kinds(events)[:2] == [K.LLM_RESPONSE, K.SYNTHESIS_FINISHED]
    assert events[1].fields["outcome"] == "llm"


def test_many_decisions_wait_at_once_and_answers_come_in_any_order() -> None:
    c = core(WITH_LLM)
    waiting = [pending(c.on_signal(signal(signal_id=f"s{i}"), context(), NOW_NS + i)) for i in range(50)]
    assert c.in_flight() == 50
    decisions = [
        c.on_answer(LlmAnswer(p.decision_id, "primary", GOOD, 200), NOW_NS + MS) for p in reversed(waiting)
    ]
    assert [d.signal.signal_id for d in decisions if d is not None] == [f"s{i}" for i in reversed(range(50))]
    assert len({d.intent.intent_id for d in decisions if d is not None and d.intent is not None}) == 50


def test_failed_attempts_raise_their_events_and_a_model_switch_then_the_deterministic_synthesis() -> None:
    c = core(WITH_LLM)
    p = pending(c.on_signal(signal(), context(), NOW_NS))
    c.take_telemetry()
    attempts = (
        LlmAttempt("primary", AttemptOutcome.TIMEOUT, "no answer in 2 s", 2000),
        LlmAttempt("fallback", AttemptOutcome.ERROR, "HTTP 500", 30),
    )
    d = c.on_answer(
        LlmFailure(p.decision_id, FailureReason.ALL_FAILED, "every model failed", attempts), NOW_NS
    )
    assert d is not None and d.synthesis is not None
    assert d.synthesis.source is SynthesisSource.DETERMINISTIC
    assert d.synthesis.fallback_reason == "llm all_failed: every model failed"
    events = c.take_telemetry()
    assert kinds(events)[:4] == [K.LLM_TIMEOUT, K.MODEL_SWITCH, K.LLM_ERROR, K.LLM_FALLBACK]
    assert events[1].fields == {"from_model": "primary", "to_model": "fallback", "reason": "primary timeout"}


def test_an_answer_from_another_model_than_the_last_is_a_model_switch() -> None:
    c = core(WITH_LLM)
    first = pending(c.on_signal(signal(signal_id="a"), context(), NOW_NS))
    c.on_answer(LlmAnswer(first.decision_id, "primary", GOOD, 100), NOW_NS)
    second = pending(c.on_signal(signal(signal_id="b"), context(), NOW_NS))
    c.take_telemetry()
    retried = (LlmAttempt("primary", AttemptOutcome.ERROR, "HTTP 503"),)
    c.on_answer(LlmAnswer(second.decision_id, "fallback", GOOD, 100, retried), NOW_NS)
    events = c.take_telemetry()
    assert kinds(events)[:3] == [K.LLM_ERROR, K.MODEL_SWITCH, K.LLM_RESPONSE]
    assert events[1].fields["reason"] == "primary error"


def test_a_timeout_failure_without_attempts_is_an_llm_timeout() -> None:
    c = core(WITH_LLM)
    p = pending(c.on_signal(signal(), context(), NOW_NS))
    c.take_telemetry()
    d = c.on_answer(LlmFailure(p.decision_id, FailureReason.TIMEOUT, "30 s"), NOW_NS)
    assert d is not None and d.synthesis is not None and d.synthesis.fallback_reason == "llm timeout: 30 s"
    assert kinds(c.take_telemetry())[:2] == [K.LLM_TIMEOUT, K.LLM_FALLBACK]


def test_a_hallucinating_answer_is_flagged_and_discarded() -> None:
    c = core(WITH_LLM)
    p = pending(c.on_signal(signal(), context(), NOW_NS))
    c.take_telemetry()
    lying = json.dumps(
        {"bias": "short", "confidence": 0.9, "reasoning": "Sell to 95.5.", "size_multiplier": 2}
    )
    d = c.on_answer(LlmAnswer(p.decision_id, "primary", lying, 100), NOW_NS)
    assert d is not None and d.synthesis is not None
    assert d.synthesis.source is SynthesisSource.DETERMINISTIC
    flags = [e.fields["check"] for e in c.take_telemetry() if e.kind is K.HALLUCINATION_FLAG]
    assert flags == ["invented_number", "contradicting_direction"]


def test_numbers_from_the_tools_the_model_called_are_grounded_by_the_answer_event() -> None:
    quoting = json.dumps(
        {"bias": "long", "confidence": 0.8, "reasoning": "Ticker last 65001.25.", "size_multiplier": 1}
    )
    outcomes = []
    for results in ((), ('{"last": "65001.25"}',)):
        c = core(WITH_LLM)
        p = pending(c.on_signal(signal(), context(), NOW_NS))
        c.take_telemetry()
        d = c.on_answer(LlmAnswer(p.decision_id, "primary", quoting, 100, (), results), NOW_NS)
        assert d is not None and d.synthesis is not None
        flags = [e.fields["detail"] for e in c.take_telemetry() if e.kind is K.HALLUCINATION_FLAG]
        outcomes.append((flags, d.synthesis.final_conviction))
    (flagged, downweighted), (clean, full) = outcomes
    assert flagged == ["65001.25 appears nowhere in the context"] and clean == []
    assert full != downweighted  # the grounded answer keeps its whole weight


def test_past_the_deadline_the_decision_is_made_without_the_answer_and_a_late_answer_is_ignored() -> None:
    c = core(WITH_LLM)
    p = pending(c.on_signal(signal(), context(), NOW_NS))
    assert c.expire(p.deadline_ns - 1) == []
    [d] = c.expire(p.deadline_ns)
    assert (
        d.synthesis is not None
        and d.synthesis.fallback_reason == "llm deadline missed (no answer within 5000 ms)"
    )
    assert d.intent is not None
    c.take_telemetry()
    assert c.on_answer(LlmAnswer(p.decision_id, "primary", GOOD, 6000), p.deadline_ns + MS) is None
    [late] = c.take_telemetry()
    assert late.kind is K.LLM_ERROR and late.subject.decision_id == p.decision_id


def test_past_max_pending_decisions_go_deterministic_at_once() -> None:
    c = core(dataclasses.replace(WITH_LLM, synthesis=SynthesisConfig(max_pending=1)))
    pending(c.on_signal(signal(signal_id="a"), context(), NOW_NS))
    d = decided(c.on_signal(signal(signal_id="b"), context(), NOW_NS))
    assert d.synthesis is not None
    assert d.synthesis.fallback_reason == "1 decisions already wait for the llm (max_pending)"


def test_the_same_signal_at_the_same_time_cannot_wait_twice() -> None:
    c = core(WITH_LLM)
    c.on_signal(signal(), context(), NOW_NS)
    with pytest.raises(AlreadyExists):
        c.on_signal(signal(), context(), NOW_NS)


def test_a_poor_market_is_blocked_at_the_gate_with_its_reasons() -> None:
    c = core()
    d = decided(c.on_signal(signal(), context(last_event_ns=NOW_NS - 60_000 * MS, book=None), NOW_NS))
    assert (d.outcome, d.blocked_stage) == (Outcome.BLOCKED, Stage.QUALITY)
    assert d.reasons == ("stale: last event 60000 ms ago (fresh up to 2000 ms)", "no order book")
    assert d.evaluation is None and d.intent is None
    events = c.take_telemetry()
    assert kinds(events)[-1] is K.DECISION_BLOCKED
    assert events[-1].fields == {"blocked_stage": "quality", "reasons": list(d.reasons)}
    assert K.EVALUATION_STARTED not in kinds(events)


def test_a_context_for_another_market_is_blocked_at_stage_one() -> None:
    d = decided(core().on_signal(signal(), context(symbol="ETH/USDT"), NOW_NS))
    assert d.blocked_stage is Stage.CONTEXT and d.quality is None


def test_validation_blocks_are_decisions_with_the_reason() -> None:
    d = decided(AdvisorCore(AdvisorConfig(synthesis=SynthesisConfig(llm_enabled=False)), None,
                            Calibration.identity()).on_signal(signal(), context(), NOW_NS))  # fmt: skip
    assert d.blocked_stage is Stage.VALIDATION
    assert d.reasons == ("risk/reward 0.279412 < 1.2",)
    assert d.validation is not None and d.synthesis is not None and d.intent is None


def test_a_sizing_refusal_blocks_at_stage_eight() -> None:
    d = decided(core().on_signal(signal(), context(equity=D("1")), NOW_NS))
    # capped at 1 * 0.25 / 102.01 = 0.0024... -> 0.002, worth 0.20402 < the instrument's 5
    assert d.blocked_stage is Stage.INTENT and d.reasons == ("notional 0.20402 is under the minimum 5",)


def test_a_flat_signal_closes_the_position_even_in_a_poor_market() -> None:
    c = core()
    ctx = context(positions=(Position("BTC/USDT", D("0.25"), D("100")),), book=None)
    d = decided(c.on_signal(signal(Direction.FLAT), ctx, NOW_NS))
    assert d.outcome is Outcome.INTENT and d.intent is not None
    assert (d.intent.side, d.intent.size, d.intent.reduce_only) == (Side.SELL, D("0.25"), True)
    assert d.quality is not None and not d.quality.passed
    finished = {
        e.stage: e.fields["outcome"] for e in c.take_telemetry() if e.kind.value.endswith("_finished")
    }
    assert finished[Stage.EVALUATION] == finished[Stage.SYNTHESIS] == "skipped"


def test_a_flat_signal_without_a_position_is_blocked() -> None:
    d = decided(core().on_signal(signal(Direction.FLAT), context(), NOW_NS))
    assert d.blocked_stage is Stage.VALIDATION and d.reasons == ("flat signal: no position to close",)


def test_a_change_of_regime_is_a_rotation() -> None:
    # A trend up, then thin volume: the market's regime as Overwatch's classifier reads it.
    bars = segments_bars([Regime.TREND_UP, Regime.THIN_LIQUIDITY], [150, 150], seed=3).bars
    c = core()
    c.on_signal(signal(signal_id="a"), context(tuple(bars[:450])), NOW_NS)
    detected = [e.fields for e in c.take_telemetry() if e.kind is K.REGIME_DETECTED]
    assert [(f["regime"], f["bars"]) for f in detected] == [("trend_up", 450)]
    c.on_signal(signal(signal_id="b"), context(tuple(bars)), NOW_NS)
    rotation = [e for e in c.take_telemetry() if e.kind is K.REGIME_ROTATION]
    assert [e.fields for e in rotation] == [{"from_regime": "trend_up", "to_regime": "thin_liquidity"}]


def test_features_far_from_the_training_data_raise_one_drift_alert_each() -> None:
    config = dataclasses.replace(NO_LLM, monitor=MonitorConfig(drift_window=3, drift_limit=1.0))
    c = AdvisorCore(config, default_model(), default_calibration())
    alerts: list[TelemetryEvent] = []
    for i in range(5):
        c.on_signal(signal(signal_id=f"s{i}"), context(), NOW_NS + i)
        alerts += [e for e in c.take_telemetry() if e.kind is K.FEATURE_DRIFT]
    features = [e.fields["feature"] for e in alerts]
    assert "vol_20" in features  # a smooth trend: far below the training data's volatility
    assert len(features) == len(set(features))  # once per feature while it stays drifted
    assert all(isinstance(e.fields["shift"], float) and e.fields["shift"] > 1.0 for e in alerts)


def test_an_allocation_across_strategies_is_recommended_every_n_decisions() -> None:
    config = dataclasses.replace(NO_LLM, monitor=MonitorConfig(allocation_every=3))
    c = AdvisorCore(config, None, Calibration.identity())
    c.on_signal(signal(signal_id="a", strategy_id="trend"), context(), NOW_NS)
    c.on_signal(signal(signal_id="b", strategy_id="trend"), context(), NOW_NS)
    c.on_signal(signal(signal_id="c", strategy_id="meanrev"), context(book=None), NOW_NS)  # blocked
    [allocation] = [e for e in c.take_telemetry() if e.kind is K.PORTFOLIO_ALLOCATION]
    assert allocation.fields["weights"] == {"meanrev": 0.0, "trend": 1.0}
    assert allocation.fields["decisions"] == 3


def run_script(c: AdvisorCore) -> tuple[list[object], list[TelemetryEvent]]:
    outputs: list[object] = []
    waiting = []
    for i in range(6):
        ctx = context(trend_bars(40, step="0.05" if i % 2 else "-0.05", start="100" if i % 2 else "104"))
        out = c.on_signal(signal(signal_id=f"s{i}", conviction=f"0.{5 + i}"), ctx, NOW_NS + i * MS)
        outputs.append(out)
        if isinstance(out, Pending):
            waiting.append(out)
    outputs.append(c.on_answer(LlmAnswer(waiting[0].decision_id, "primary", GOOD, 120), NOW_NS + 10 * MS))
    failure = LlmFailure(waiting[1].decision_id, FailureReason.ERROR, "HTTP 500")
    outputs.append(c.on_answer(failure, NOW_NS + 11 * MS))
    outputs += c.expire(NOW_NS + 10_000 * MS)
    return outputs, c.take_telemetry()


def test_the_same_inputs_give_identical_decisions_intents_and_telemetry() -> None:
    config = dataclasses.replace(WITH_LLM, validation=ValidationConfig())
    first = run_script(AdvisorCore(config, default_model(), default_calibration()))
    second = run_script(AdvisorCore(config, default_model(), default_calibration()))
    assert first == second
    assert repr(first).encode() == repr(second).encode()
    outcomes = [o.outcome for o in first[0] if isinstance(o, Decision)]
    assert len(outcomes) == 6


def test_there_are_at_least_28_telemetry_kinds_and_docs_list_each_with_its_fields() -> None:
    from pathlib import Path

    from trademesh.core.advisor.engine.telemetry import KIND_FIELDS

    assert len(TelemetryKind) >= 28
    assert set(KIND_FIELDS) == set(TelemetryKind)
    doc = (Path(__file__).parents[2] / "docs" / "advisor.md").read_text()
    for kind, fields in KIND_FIELDS.items():
        row = next((line for line in doc.splitlines() if line.startswith(f"| `{kind.value}` |")), None)
        assert row is not None, f"docs/advisor.md does not list {kind.value}"
        for name in fields:
            assert f"`{name}`" in row, f"docs/advisor.md's {kind.value} row does not name {name}"


def test_the_drift_windows_running_means_equal_the_exact_means() -> None:
    from trademesh.core.advisor.engine.drift import _Window

    rng = np.random.Generator(np.random.PCG64(1))
    window = _Window(7)
    rows = [tuple(float(v) for v in rng.normal(0, 1e3, len(FEATURE_NAMES))) for _ in range(40)]
    for i, row in enumerate(rows):
        means = window.add(row)
        if i < 6:
            assert means is None
        else:
            exact = np.mean(np.asarray(rows[i - 6 : i + 1]), axis=0)
            assert means == pytest.approx(exact.tolist(), rel=1e-9, abs=1e-9)


def test_a_decisions_event_ids_are_unique_uuids() -> None:
    import uuid

    c = core()
    c.on_signal(signal(), context(), NOW_NS)
    ids = [e.event_id for e in c.take_telemetry()]
    assert len(set(ids)) == len(ids)
    assert all(uuid.UUID(i).version == 5 for i in ids)


@pytest.mark.parametrize("index", [1, 35, 255, 256, 4096, 65_535, 65_537])
def test_an_events_id_is_its_decisions_with_the_last_16_bits_its_index(index: int) -> None:
    decision = decision_id("sig-1", NOW_NS)
    assert event_id_of(decision[:-4], index) == decision_event_id(decision, index)
    assert decision_event_id(decision, index) == f"{decision[:-4]}{index & 0xFFFF:04x}"


def test_an_events_fields_are_kept_in_their_kinds_order_and_a_wrong_set_is_refused() -> None:
    log = TelemetryLog()
    log.emit(K.REGIME_ROTATION, NOW_NS, Subject(), Stage.CALIBRATION, to_regime="b", from_regime="a")
    log.emit(K.REGIME_ROTATION, NOW_NS, Subject(), Stage.CALIBRATION, from_regime="a", to_regime="b")
    events = log.take()
    assert [list(e.fields) for e in events] == [["from_regime", "to_regime"]] * 2
    assert events[0].fields == events[1].fields == {"from_regime": "a", "to_regime": "b"}
    with pytest.raises(ValueError, match="regime_rotation takes fields"):
        log.emit(K.REGIME_ROTATION, NOW_NS, Subject(), None, from_regime="a")
    with pytest.raises(ValueError, match="regime_rotation takes fields"):
        log.emit(K.REGIME_ROTATION, NOW_NS, Subject(), None, from_regime="a", to_regime="b", extra=1)
    assert log.take() == []


def test_a_logged_event_is_the_telemetry_event_of_its_parts() -> None:
    # The log makes its events without TelemetryEvent's generated __new__: each must still be
    # the named tuple of all its fields, in their order.
    log, scope = TelemetryLog(), Subject("d-1", "sig-1", "sim", "BTC/USDT", "trend")
    log.emit(K.LLM_FALLBACK, NOW_NS, scope, Stage.SYNTHESIS, event_id="e-1", reason="llm disabled")
    (event,) = log.take()
    expected = TelemetryEvent(
        "e-1", 1, K.LLM_FALLBACK, NOW_NS, Stage.SYNTHESIS, scope, {"reason": "llm disabled"}
    )
    assert type(event) is TelemetryEvent and event == expected
    assert event._asdict() == expected._asdict() and len(event) == len(TelemetryEvent._fields)
