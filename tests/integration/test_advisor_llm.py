"""The advisor's LLM transport (trademesh.core.advisor.llm) against the LLM stand-in, a separate process
speaking OpenAI's HTTP API, through the real openai client: answers, timeouts and fallback,
retries and the circuit breaker, invalid content, bounded tool calls (their results grounding
the numbers the model quotes, through the core), and the API key kept out of every log line
and error."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import Any

import httpx2
import pytest

from tests.advisor_support import MS, NOW_NS, context, signal
from tests.llm_standin import Standin, start_standin
from trademesh.core.advisor.engine.answer import LlmAnswer
from trademesh.core.advisor.engine.calibration import Calibration
from trademesh.core.advisor.engine.config import AdvisorConfig
from trademesh.core.advisor.engine.core import AdvisorCore
from trademesh.core.advisor.engine.decision import Pending
from trademesh.core.advisor.engine.synthesis import SynthesisSource
from trademesh.core.advisor.engine.telemetry import TelemetryKind
from trademesh.core.advisor.llm.breaker import BreakerState
from trademesh.core.advisor.llm.config import LlmConfig, Secret
from trademesh.core.advisor.llm.events import TransportEventKind
from trademesh.core.advisor.llm.reply import LlmReply
from trademesh.core.advisor.llm.tools import ToolSpec
from trademesh.core.advisor.llm.transport import DETERMINISTIC, LlmTransport
from trademesh.core.advisor.synthesizer import Synthesizer
from trademesh.core.platform.errors import InvalidArgument
from trademesh.core.tools.catalog import ToolCatalog

pytestmark = pytest.mark.integration

K = TransportEventKind
KEY = "sk-test-7f3a9c1e5b2d4086a1c3e5f7b9d1f3a5"
SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["bias", "confidence", "reasoning", "size_multiplier"],
    "properties": {
        "bias": {"type": "string", "enum": ["long", "short", "flat"]},
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
        "reasoning": {"type": "string"},
        "size_multiplier": {"type": "number", "minimum": 0, "maximum": 2},
    },
}
CONTEXT: dict[str, Any] = {
    "signal": {"direction": "long", "conviction": Decimal("0.72"), "venue": "sim", "symbol": "BTC/USDT"},
    "market": {"last": "65000.5", "spread_pct": "0.01"},
}
TICKER = ToolSpec(
    "get_ticker",
    "The latest ticker of a symbol",
    {"type": "object", "properties": {"venue": {"type": "string"}, "symbol": {"type": "string"}}},
)
MODES = {
    "slow": "slow",
    "slow2": "slow",
    "broken": "broken",
    "flaky": "flaky",
    "garbled": "invalid-json",
    "liar": "lying",
    "tooly": "tools",
    "looper": "tool-loop",
    "deep": "nested-answer",
    "lone": "surrogate-content",
    "deeptool": "tools-nested",
    "shapeless": "shapeless",
}


class Clock:
    """The transport's clock, moved by the test (and by the backoff's sleeps)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, delay_s: float) -> None:
        self.slept.append(delay_s)
        self.now += delay_s


@pytest.fixture(scope="module")
def standin() -> Iterator[Standin]:
    process = start_standin("good", MODES, slow_s=3.0, api_key=KEY, flaky_failures=3)
    try:
        yield process
    finally:
        process.stop()


async def requests_seen(standin: Standin, model: str | None = None) -> list[dict[str, Any]]:
    """What the stand-in was asked since the test's fresh_log; of `model` only when given (an
    earlier test's slow request may still land in the log, under load)."""
    async with httpx2.AsyncClient() as client:
        answer = await client.get(standin.base_url.removesuffix("/v1") + "/standin/requests")
    seen: list[dict[str, Any]] = answer.json()
    return [r for r in seen if model is None or r["model"] == model]


@pytest.fixture
async def fresh_log(standin: Standin) -> None:
    async with httpx2.AsyncClient() as client:
        await client.delete(standin.base_url.removesuffix("/v1") + "/standin/requests")


def config(standin: Standin, *models: str, **limits: Any) -> LlmConfig:
    return LlmConfig(standin.base_url, models, Secret(KEY), **{"timeout_s": 2.0, **limits})


def kinds(reply: LlmReply) -> list[TransportEventKind]:
    return [e.kind for e in reply.events]


def numbers_in(text: str) -> set[str]:
    import re

    return set(re.findall(r"\d+(?:\.\d+)?", text))


async def test_a_good_answer_comes_back_as_the_models_json_following_the_schema(
    standin: Standin, fresh_log: None
) -> None:
    async with LlmTransport(config(standin, "primary")) as llm:
        reply = await llm.complete(CONTEXT, SCHEMA)

    assert (reply.ok, reply.model, reply.attempts, reply.failure) == (True, "primary", 1, None)
    assert kinds(reply) == [K.LLM_REQUEST, K.LLM_RESPONSE]
    answer = json.loads(reply.content or "")
    assert (answer["bias"], answer["confidence"], answer["size_multiplier"]) == ("long", 0.72, 1.0)
    assert numbers_in(answer["reasoning"]) <= {"0.72", "65000.5", "0.01"}
    assert reply.prompt_tokens > 0 and reply.completion_tokens > 0
    [asked] = await requests_seen(standin, "primary")
    assert (asked["model"], asked["response_format"], asked["tools"]) == ("primary", "json_schema", [])


async def test_a_timeout_falls_back_to_the_next_model_with_a_model_switch_event(standin: Standin) -> None:
    async with LlmTransport(config(standin, "slow", "backup", timeout_s=0.3)) as llm:
        reply = await llm.complete(CONTEXT, SCHEMA)

    assert (reply.ok, reply.model, reply.attempts) == (True, "backup", 2)
    assert kinds(reply) == [
        K.LLM_REQUEST, K.LLM_TIMEOUT, K.LLM_FALLBACK, K.MODEL_SWITCH, K.LLM_REQUEST, K.LLM_RESPONSE,
    ]  # fmt: skip
    fallback, switch = reply.events[2], reply.events[3]
    assert (fallback.model, fallback.fields["to"]) == ("slow", "backup")
    assert (switch.model, switch.fields["from_model"]) == ("backup", "slow")
    assert reply.latency_s < 2.0  # the slow model's 3 s were not waited for
    assert json.loads(reply.content or "")["bias"] == "long"


async def test_the_budget_bounds_a_synthesis_over_all_models_then_the_reply_says_none_answered(
    standin: Standin,
) -> None:
    # Each model may take 0.6 s, the synthesis 0.8: the second gets what is left, 0.2 s, told
    # apart from its own 0.6 with room for a loaded machine's late event loop (0.2 s seen).
    async with LlmTransport(config(standin, "slow", "slow2", timeout_s=0.6, budget_s=0.8)) as llm:
        reply = await llm.complete(CONTEXT, SCHEMA)

    assert (reply.ok, reply.model, reply.content) == (False, None, None)
    assert kinds(reply) == [
        K.LLM_REQUEST, K.LLM_TIMEOUT, K.LLM_FALLBACK, K.MODEL_SWITCH, K.LLM_REQUEST, K.LLM_TIMEOUT,
        K.LLM_FALLBACK,
    ]  # fmt: skip
    assert reply.events[-1].fields["to"] == DETERMINISTIC
    assert reply.events[-2].latency_s is not None and reply.events[-2].latency_s < 0.45  # what was left
    assert 0.75 < reply.latency_s < 1.4


async def test_500s_are_retried_with_backoff_then_the_circuit_opens_and_no_request_goes(
    standin: Standin, fresh_log: None
) -> None:
    clock = Clock()
    limits = {"max_retries": 2, "backoff_initial_s": 0.05, "breaker_failures": 3, "breaker_cooldown_s": 30.0}
    async with LlmTransport(
        config(standin, "broken", **limits), clock=clock, sleep=clock.sleep, rng=lambda: 0.5
    ) as llm:
        first = await llm.complete(CONTEXT, SCHEMA)
        assert llm.breaker("broken").state is BreakerState.OPEN
        second = await llm.complete(CONTEXT, SCHEMA)
        clock.now += 30.0
        third = await llm.complete(CONTEXT, SCHEMA)

    assert (first.ok, first.attempts, first.model) == (False, 3, None)
    assert "HTTP 500" in (first.failure or "")
    assert clock.slept == [0.05, 0.1]  # Backoff: doubling (jitter pinned at 1x)
    assert kinds(first) == [
        K.LLM_REQUEST, K.LLM_ERROR, K.LLM_RETRY, K.LLM_REQUEST, K.LLM_ERROR, K.LLM_RETRY,
        K.LLM_REQUEST, K.LLM_ERROR, K.CIRCUIT_OPEN, K.LLM_FALLBACK,
    ]  # fmt: skip
    assert first.events[-1].fields["to"] == DETERMINISTIC
    # Open: the model is not asked at all.
    assert (second.ok, second.attempts, kinds(second)) == (False, 0, [K.CIRCUIT_SKIP, K.LLM_FALLBACK])
    # After the cool-down one trial goes; it fails, and the circuit opens again.
    assert kinds(third) == [K.CIRCUIT_HALF_OPEN, K.LLM_REQUEST, K.LLM_ERROR, K.CIRCUIT_OPEN, K.LLM_FALLBACK]
    assert [r["status"] for r in await requests_seen(standin, "broken")] == [500] * 4


async def test_a_half_open_circuit_closes_when_its_trial_request_is_answered(standin: Standin) -> None:
    clock = Clock()
    limits = {"max_retries": 2, "backoff_initial_s": 0.01, "breaker_failures": 3, "breaker_cooldown_s": 5.0}
    async with LlmTransport(config(standin, "flaky", **limits), clock=clock, sleep=clock.sleep) as llm:
        failed = await llm.complete(CONTEXT, SCHEMA)  # the flaky model's first 3 requests fail
        clock.now += 5.0
        recovered = await llm.complete(CONTEXT, SCHEMA)
        state = llm.breaker("flaky").state

    assert (failed.ok, K.CIRCUIT_OPEN in kinds(failed)) == (False, True)
    assert recovered.ok and recovered.model == "flaky"
    assert kinds(recovered) == [K.CIRCUIT_HALF_OPEN, K.LLM_REQUEST, K.CIRCUIT_CLOSED, K.LLM_RESPONSE]
    assert state is BreakerState.CLOSED


async def test_invalid_json_content_is_returned_as_it_came_for_the_core_to_check(standin: Standin) -> None:
    async with LlmTransport(config(standin, "garbled")) as llm:
        reply = await llm.complete(CONTEXT, SCHEMA)

    assert reply.ok and reply.model == "garbled"
    assert reply.content == '{"bias": "long", "confidence": 0.8, "reasoning": "cut'
    with pytest.raises(json.JSONDecodeError):
        json.loads(reply.content)


async def test_an_answer_nested_past_the_bound_is_a_failed_model_not_a_crash(standin: Standin) -> None:
    async with LlmTransport(config(standin, "deep", "good")) as llm:
        reply = await llm.complete(CONTEXT, SCHEMA)

    assert reply.ok and reply.model == "good"  # the next model, as for any failed one
    fallback = next(e for e in reply.events if e.kind == K.LLM_FALLBACK)
    assert "not a chat completion" in fallback.detail and "nested deeper than 64 levels" in fallback.detail


async def test_an_answer_that_is_no_chat_completion_is_a_failed_model_not_a_crash(standin: Standin) -> None:
    async with LlmTransport(config(standin, "shapeless")) as llm:
        reply = await llm.complete(CONTEXT, SCHEMA)

    assert not reply.ok and "answer.choices: not a list" in str(reply.failure), reply.failure


async def test_a_lone_surrogate_in_the_answer_comes_back_as_a_replacement_character(standin: Standin) -> None:
    async with LlmTransport(config(standin, "lone")) as llm:
        reply = await llm.complete(CONTEXT, SCHEMA)

    assert reply.ok and reply.content is not None
    assert json.loads(reply.content)["reasoning"].endswith(" \ufffd")
    reply.content.encode("utf-8")  # a log line, an audit row, the next request can carry it


async def test_tool_arguments_nested_past_the_bound_are_a_refused_call_not_a_crash(standin: Standin) -> None:
    async def execute(name: str, arguments: Mapping[str, Any]) -> Any:
        raise AssertionError("a call whose arguments cannot be read must not run")

    async with LlmTransport(config(standin, "deeptool")) as llm:
        reply = await llm.complete(CONTEXT, SCHEMA, tools=[TICKER], execute=execute)

    assert reply.ok and [c.ok for c in reply.tool_calls] == [False]
    assert reply.tool_calls[0].error


async def test_the_lying_stand_in_contradicts_the_signal_with_numbers_found_nowhere(standin: Standin) -> None:
    async with LlmTransport(config(standin, "liar")) as llm:
        reply = await llm.complete(CONTEXT, SCHEMA)

    answer = json.loads(reply.content or "")
    assert answer["bias"] == "short"  # the signal is long
    assert numbers_in(answer["reasoning"]).isdisjoint({"0.72", "65000.5", "0.01"})
    assert numbers_in(answer["reasoning"])


async def test_a_tool_call_runs_through_the_executor_and_its_result_reaches_the_answer(
    standin: Standin,
) -> None:
    asked: list[tuple[str, dict[str, Any]]] = []

    async def execute(name: str, arguments: Mapping[str, Any]) -> dict[str, str]:
        asked.append((name, dict(arguments)))
        return {"last": "65001.25"}

    async with LlmTransport(config(standin, "tooly")) as llm:
        reply = await llm.complete(CONTEXT, SCHEMA, tools=[TICKER], execute=execute)

    assert asked == [("get_ticker", {"venue": "sim", "symbol": "BTC/USDT"})]
    assert reply.ok and reply.attempts == 2
    [call] = reply.tool_calls
    assert (call.name, call.ok, call.result_chars) == ("get_ticker", True, len('{"last": "65001.25"}'))
    assert call.content == '{"last": "65001.25"}'  # what the model read
    assert "65001.25" in json.loads(reply.content or "")["reasoning"]
    assert kinds(reply) == [K.LLM_REQUEST, K.LLM_RESPONSE, K.TOOL_CALL, K.LLM_REQUEST, K.LLM_RESPONSE]


async def test_a_number_the_model_quotes_from_a_tool_reaches_the_core_grounded(standin: Standin) -> None:
    async def get_ticker(venue: str, symbol: str) -> dict[str, str]:
        """The latest ticker of a symbol."""
        return {"venue": venue, "symbol": symbol, "last": "65001.25"}

    core = AdvisorCore(AdvisorConfig(), None, Calibration.identity())
    pending = core.on_signal(signal(), context(), NOW_NS)
    assert isinstance(pending, Pending) and "65001.25" not in pending.request.to_json()
    async with LlmTransport(config(standin, "tooly")) as llm:
        synthesized = await Synthesizer(llm, ToolCatalog([get_ticker])).synthesize(pending, signal(), NOW_NS)
    answer = synthesized.answer
    assert isinstance(answer, LlmAnswer) and "65001.25" in answer.text
    assert [c.result for c in synthesized.trace.tool_calls] == list(answer.tool_results)
    core.take_telemetry()
    decision = core.on_answer(answer, NOW_NS + 300 * MS)
    flags = [e.fields for e in core.take_telemetry() if e.kind is TelemetryKind.HALLUCINATION_FLAG]
    assert decision is not None and decision.synthesis is not None and flags == []
    assert decision.synthesis.source is SynthesisSource.LLM and decision.synthesis.flags == ()


async def test_tool_calls_stop_at_the_limit_and_the_model_is_told_to_answer(
    standin: Standin, fresh_log: None
) -> None:
    runs: list[str] = []

    async def execute(name: str, arguments: Mapping[str, Any]) -> str:
        runs.append(name)
        return "42"

    async with LlmTransport(config(standin, "looper", max_tool_calls=2)) as llm:
        reply = await llm.complete(CONTEXT, SCHEMA, tools=[TICKER], execute=execute)

    assert runs == ["get_ticker", "get_ticker"]
    assert reply.ok and len(reply.tool_calls) == 2
    assert [r["tool_choice"] for r in await requests_seen(standin, "looper")] == ["auto", "auto", "none"]
    assert json.loads(reply.content or "")["bias"] == "long"


async def test_a_failing_tool_is_an_error_result_for_the_model_not_a_failed_synthesis(
    standin: Standin,
) -> None:
    async def execute(name: str, arguments: Mapping[str, Any]) -> str:
        raise ConnectionError(f"venue down (token {KEY})")

    async with LlmTransport(config(standin, "tooly")) as llm:
        reply = await llm.complete(CONTEXT, SCHEMA, tools=[TICKER], execute=execute)

    assert reply.ok
    [call] = reply.tool_calls
    assert not call.ok and "venue down" in call.error
    assert KEY not in call.error


def all_text(reply: LlmReply) -> str:
    return " ".join([reply.failure or "", *(f"{e.detail} {e.fields}" for e in reply.events)])


async def test_the_api_key_appears_in_no_log_line_event_or_error(
    standin: Standin, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = "sk-wrong-0a1b2c3d4e5f60718293a4b5c6d7e8f9"
    # The stand-in echoes a wrong key in its 401, as OpenAI does: the transport must scrub it.
    async with httpx2.AsyncClient() as client:
        raw = await client.post(
            f"{standin.base_url}/chat/completions",
            json={"model": "primary", "messages": []},
            headers={"Authorization": f"Bearer {wrong}"},
        )
    assert raw.status_code == 401 and wrong in raw.text

    caplog.set_level(logging.DEBUG)
    for name in ("openai", "httpx2", "httpcore2"):
        caplog.set_level(logging.DEBUG, logger=name)
    denied_config = LlmConfig(standin.base_url, ("primary",), Secret(wrong), timeout_s=2.0)
    async with LlmTransport(denied_config) as llm:
        denied = await llm.complete(CONTEXT, SCHEMA)
    async with LlmTransport(config(standin, "primary")) as llm:
        allowed = await llm.complete(CONTEXT, SCHEMA)

    assert not denied.ok and "HTTP 401" in (denied.failure or "")
    assert allowed.ok
    logged = "\n".join(r.getMessage() + repr(r.__dict__) for r in caplog.records)
    assert caplog.records  # the client's debug lines were captured
    for secret in (wrong, KEY):
        assert secret not in logged
        assert secret not in all_text(denied) + all_text(allowed)
    assert wrong not in repr(denied_config) and wrong not in str(denied_config)
    with pytest.raises(InvalidArgument) as bad:
        LlmConfig(standin.base_url, ("primary",), Secret(wrong), timeout_s=-1)
    assert wrong not in str(bad.value)


async def test_a_budget_spent_before_a_request_ends_the_synthesis_without_blaming_the_model(
    standin: Standin,
) -> None:
    clock = Clock()

    async def slow_tool(name: str, arguments: Mapping[str, Any]) -> str:
        clock.now += 10.0  # the tool took the whole budget
        return "1"

    async with LlmTransport(config(standin, "tooly", "backup", budget_s=5.0), clock=clock) as llm:
        reply = await llm.complete(CONTEXT, SCHEMA, tools=[TICKER], execute=slow_tool)
        failures = llm.breaker("tooly").failures

    assert (reply.ok, reply.attempts) == (False, 1)
    assert "budget" in (reply.failure or "")
    assert kinds(reply)[-2:] == [K.TOOL_CALL, K.LLM_FALLBACK]
    assert reply.events[-1].fields["to"] == DETERMINISTIC  # no time left for the backup
    assert failures == 0
