"""The LLM's answers recorded live, replayed in a backtest (`--llm recorded`).

The advisor records every decision whole (the recorder's `decisions` table,
trademesh.advisor.v1.Decision), with the LLM's trace: the model that answered, its text as it
came, and each tool it called with what it read. A backtest of the recorded window makes the
same signals (docs/backtest-parity.md, "Parity with live"), so each of its decisions that asks the LLM
finds the live answer to the same signal, by strategy, symbol and the signal's time, and hands
it to the advisor's core as the live shell handed it (`AdvisorCore.on_answer`): the core parses
and checks it again, grounding its numbers on the request and the tools' results as live.

A signal with no recorded answer (a decision made before the LLM was set up, a signal the live
session never made) gets a failure, so its decision falls back to the deterministic synthesis,
saying why. The answer comes at the signal's own time: the LLM's latency is not replayed (the
recorded latency is kept in the decision's trace).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import asyncpg

from trademesh.advisor.v1 import messages_pb2 as am
from trademesh.core.advisor.replay import FailureReason, LlmAnswer, LlmFailure
from trademesh.core.domain.contracts.signal import Signal

__all__ = ["AnswerKey", "RecordedAnswer", "RecordedAnswers", "load_recorded_answers", "recorded_answer"]

AnswerKey = tuple[str, str, int]  # strategy, symbol, the signal's time (ns)
_NS_PER_MS = 1_000_000
# A decision is made after its signal (the LLM's latency): the range read reaches this far
# past the run's end.
_LATE_DECISION_NS = 120 * 1_000_000_000


@dataclass(frozen=True, slots=True)
class RecordedAnswer:
    model: str  # "" when no model answered
    text: str
    latency_ms: int
    tool_results: tuple[str, ...]
    failure: str  # why no model answered ("" when one did)


def recorded_answer(decision: am.Decision) -> tuple[AnswerKey, RecordedAnswer] | None:
    """The LLM's answer in a recorded decision, keyed by its signal; None when the decision
    never asked the LLM (blocked before the synthesis, or the LLM off)."""
    trace = decision.llm
    if not trace.model and not trace.failure:
        return None
    signal = decision.signal
    key = (signal.strategy_id, signal.symbol, signal.ts_signal_ns)
    results = tuple(call.result for call in trace.tool_calls)
    answer = RecordedAnswer(
        trace.model, trace.content, trace.latency_ns // _NS_PER_MS, results, trace.failure
    )
    return key, answer


class RecordedAnswers:
    def __init__(self, decisions: Iterable[am.Decision]) -> None:
        self._answers: dict[AnswerKey, RecordedAnswer] = {}
        for decision in decisions:
            found = recorded_answer(decision)
            if found is not None:
                self._answers.setdefault(*found)  # a redelivered signal's first decision

    def __len__(self) -> int:
        return len(self._answers)

    def answer(self, decision_id: str, signal: Signal) -> LlmAnswer | LlmFailure:
        """The recorded answer to this signal, for the backtest's pending decision."""
        found = self._answers.get((signal.strategy_id, signal.symbol, signal.ts_ns))
        if found is None:
            return LlmFailure(decision_id, FailureReason.ERROR, "no answer recorded for this signal")
        if not found.model:
            return LlmFailure(decision_id, FailureReason.ERROR, f"recorded: {found.failure}")
        return LlmAnswer(decision_id, found.model, found.text, found.latency_ms, (), found.tool_results)

    def trace(self, signal: Signal) -> am.LlmTrace | None:
        """The decision's LLM trace as recorded (what the backtest's decision shows)."""
        found = self._answers.get((signal.strategy_id, signal.symbol, signal.ts_ns))
        if found is None:
            return None
        return am.LlmTrace(
            model=found.model,
            latency_ns=found.latency_ms * _NS_PER_MS,
            content=found.text,
            tool_calls=[am.ToolCall(model=found.model, result=r, ok=True) for r in found.tool_results],
            failure=found.failure,
        )


async def load_recorded_answers(database_url: str, venue: str, start_ns: int, end_ns: int) -> RecordedAnswers:
    """The answers of the decisions recorded for `venue`'s signals of [start, end)."""
    sql = (
        "SELECT decision FROM decisions WHERE venue = $1 AND ts_decision_ns >= $2 AND ts_decision_ns < $3 "
        "AND NOT hypothetical ORDER BY ts_decision_ns"
    )
    connection = await asyncpg.connect(database_url)
    try:
        rows = await connection.fetch(sql, venue, start_ns, end_ns + _LATE_DECISION_NS)
    finally:
        await connection.close()
    return RecordedAnswers(am.Decision.FromString(row["decision"]) for row in rows)
