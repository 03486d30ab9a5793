"""The LLM's recorded answers replayed in a backtest (`--llm recorded`, trademesh.core.backtest.answers):
each decision that asks the LLM gets the live answer to the same signal (strategy, symbol,
time), checked by the advisor's core as live; a signal with no recorded answer falls back to the
deterministic synthesis, saying why; the option is checked by name."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from trademesh.advisor.v1 import messages_pb2 as am
from trademesh.core.backtest.answers import RecordedAnswers
from trademesh.core.backtest.assemble import build
from trademesh.core.backtest.config import BacktestConfig
from trademesh.core.backtest.run import Backtest
from trademesh.core.backtest.session import drive_sync
from trademesh.core.backtest.synthetic import Walk, walk
from trademesh.core.platform.errors import InvalidArgument
from trademesh.signal.v1 import signal_pb2 as sig

TREND = Path("trademesh/core/detector/strategies/trend.toml")
SPEC = Walk(steps=1800, volatility=0.001)
MODEL = "replayed-model"


def config(**changes: object) -> BacktestConfig:
    base = BacktestConfig(
        strategies=(TREND,), start_ns=SPEC.start_ns, end_ns=SPEC.start_ns + SPEC.steps * SPEC.step_ns,
        symbols=("BTC/USDT",), sample_s=60,
    )  # fmt: skip
    return replace(base, **changes)  # type: ignore[arg-type]


def decisions_of(backtest: Backtest) -> list[am.Decision]:
    """Every decision the run makes, whole (the tape keeps them trimmed)."""
    seen: list[am.Decision] = []
    decide: Callable[[sig.Signal, int], am.Decision] = backtest.advise.decide

    def kept(message: sig.Signal, now_ns: int) -> am.Decision:
        seen.append(decide(message, now_ns))
        return seen[-1]

    backtest.advise.decide = kept  # type: ignore[method-assign]
    drive_sync(backtest, walk(SPEC))
    return seen


def recorded(signal: sig.Signal) -> am.Decision:
    """A decision as the live advisor records it, its LLM's answer in the trace."""
    bias = "long" if signal.direction == sig.DIRECTION_LONG else "short"
    answer = {
        "bias": bias,
        "confidence": 0.9,
        "reasoning": "Replayed from the live session.",
        "size_multiplier": 1,
    }
    trace = am.LlmTrace(model=MODEL, content=json.dumps(answer), latency_ns=300_000_000)
    return am.Decision(signal=signal, llm=trace)


def test_each_signal_gets_the_live_answer_to_it_and_one_without_falls_back() -> None:
    plain = decisions_of(build(config()))
    asked = [d.signal for d in plain if d.synthesis.source == am.SYNTHESIS_SOURCE_DETERMINISTIC]
    assert len(asked) >= 3, "the walk's signals reach the synthesis"
    unrecorded, *answered = asked
    replaying = build(config())
    replaying.advise.replay(RecordedAnswers(recorded(s) for s in answered))
    replayed = {(d.signal.ts_signal_ns, d.signal.symbol): d for d in decisions_of(replaying)}

    for signal in answered:
        decision = replayed[(signal.ts_signal_ns, signal.symbol)]
        assert decision.synthesis.source == am.SYNTHESIS_SOURCE_RECORDED
        assert decision.synthesis.reasoning == "Replayed from the live session."
        assert (decision.llm.model, decision.llm.latency_ns) == (MODEL, 300_000_000)
    fallback = replayed[(unrecorded.ts_signal_ns, unrecorded.symbol)]
    assert fallback.synthesis.source == am.SYNTHESIS_SOURCE_DETERMINISTIC
    assert "no answer recorded for this signal" in fallback.synthesis.reasoning + str(fallback)


def test_a_recorded_failure_is_replayed_as_a_failure() -> None:
    plain = decisions_of(build(config()))
    signal = next(d.signal for d in plain if d.synthesis.source == am.SYNTHESIS_SOURCE_DETERMINISTIC)
    failed = am.Decision(signal=signal, llm=am.LlmTrace(failure="every model timed out"))
    answers = RecordedAnswers([failed])
    assert len(answers) == 1
    replaying = build(config())
    replaying.advise.replay(answers)
    decision = next(d for d in decisions_of(replaying) if d.signal.ts_signal_ns == signal.ts_signal_ns)
    assert decision.synthesis.source == am.SYNTHESIS_SOURCE_DETERMINISTIC
    assert "recorded: every model timed out" in str(decision)


def test_a_decision_that_never_asked_the_llm_is_no_answer() -> None:
    assert len(RecordedAnswers([am.Decision(signal=sig.Signal(strategy_id="trend"))])) == 0


def test_the_llm_option_is_checked_by_name() -> None:
    with pytest.raises(InvalidArgument) as bad:
        config(llm="live")
    assert bad.value.violations[0].field == "llm" and "off, recorded" in bad.value.violations[0].description
