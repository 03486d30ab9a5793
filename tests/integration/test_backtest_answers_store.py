"""The recorded LLM answers a backtest replays (`--llm recorded`), read back from decisions the
real recorder wrote: the venue's and the range's decisions that asked the LLM, keyed by their
signal; hypothetical decisions (Decide) and other venues' are left out."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.advisor_support import signal as engine_signal
from tests.integration.postgres_server import database_url, recorder_database
from tests.integration.recorder_support import recorder
from trademesh.advisor.v1 import messages_pb2 as am
from trademesh.core.advisor.engine.answer import LlmAnswer, LlmFailure
from trademesh.core.advisor.wire import encode_decisions
from trademesh.core.backtest.answers import load_recorded_answers
from trademesh.core.platform.bus.codec import FIELD, decode
from trademesh.core.recorder.app import Recorder
from trademesh.signal.v1 import signal_pb2 as sig

pytestmark = pytest.mark.integration
__all__ = ["database_url", "recorder", "recorder_database"]  # the fixtures, for pytest

S = 1_000_000_000
START = (time.time_ns() // S - 3600) * S  # an hour ago: inside the recorder's partitions


def decision(n: int, at_ns: int, venue: str = "sim", failure: str = "", **fields: Any) -> am.Decision:
    signal = sig.Signal(
        signal_id=f"s{n}", strategy_id="trend", venue=venue, symbol="BTC/USDT", ts_signal_ns=at_ns,
        direction=sig.DIRECTION_LONG, conviction="0.8",
    )  # fmt: skip
    trace = am.LlmTrace(failure=failure)
    if not failure:
        trace = am.LlmTrace(model="m1", content=f'{{"n": {n}}}', latency_ns=250_000_000)
        trace.tool_calls.add(name="get_price", result='{"price": "65000"}')
    return am.Decision(
        decision_id=f"d{n}", signal_id=f"s{n}", venue=venue, symbol="BTC/USDT", strategy_id="trend",
        signal=signal, llm=trace, outcome=am.OUTCOME_INTENT, ts_decision_ns=at_ns + 250_000_000, **fields,
    )  # fmt: skip


def at(ts_ns: int) -> Any:
    """The engine's signal of trend on BTC/USDT at `ts_ns` (what the backtest asks about)."""
    return engine_signal(strategy_id="trend", symbol="BTC/USDT", ts_ns=ts_ns)


async def test_the_ranges_answers_come_back_keyed_by_their_signal(
    recorder: Recorder, recorder_database: str
) -> None:
    made = [
        decision(1, START + S),
        decision(2, START + 2 * S, failure="every model timed out"),
        decision(3, START + 3 * S, hypothetical=True),
        decision(4, START + 4 * S, venue="binance"),
        decision(5, START + 200 * S),  # past the range and the time a late decision may take
    ]
    entries = [("1-0", decode({FIELD: encode_decisions("advisor", made, time.time_ns())}))]
    await recorder.handle("decisions", entries)

    answers = await load_recorded_answers(recorder_database, "sim", START, START + 10 * S)

    assert len(answers) == 2  # the hypothetical, the other venue's and the later one left out
    first = answers.answer("backtest-d1", at(START + S))
    assert isinstance(first, LlmAnswer)
    assert (first.decision_id, first.model, first.text, first.latency_ms) == (
        "backtest-d1",
        "m1",
        '{"n": 1}',
        250,
    )
    assert first.tool_results == ('{"price": "65000"}',)
    failed = answers.answer("backtest-d2", at(START + 2 * S))
    assert isinstance(failed, LlmFailure) and failed.detail == "recorded: every model timed out"
    missing = answers.answer("backtest-d3", at(START + 3 * S))
    assert isinstance(missing, LlmFailure) and missing.detail == "no answer recorded for this signal"
