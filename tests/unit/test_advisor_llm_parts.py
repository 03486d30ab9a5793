"""The LLM transport's parts that need no endpoint: the circuit breaker on a moved clock, the
config (from flags and the environment, the key kept secret), and openai's errors mapped."""

from __future__ import annotations

import httpx2
import openai
import pytest

from trademesh.core.advisor.llm.breaker import BreakerState, CircuitBreaker
from trademesh.core.advisor.llm.config import LlmConfig, Secret
from trademesh.core.advisor.llm.events import TransportEventKind
from trademesh.core.advisor.llm.failures import is_retryable, map_openai_error
from trademesh.core.platform.config.env import LLM_API_KEY, LLM_BASE_URL, LLM_MODELS
from trademesh.core.platform.errors import (
    DeadlineExceeded,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_breaker_opens_after_n_consecutive_failures_and_a_success_resets_the_count() -> None:
    breaker = CircuitBreaker(3, 10.0, Clock())
    assert [breaker.record_failure(), breaker.record_failure()] == [False, False]
    breaker.record_success()
    assert [breaker.record_failure() for _ in range(3)] == [False, False, True]
    assert (breaker.state, breaker.allow()) == (BreakerState.OPEN, False)


def test_the_breaker_half_opens_after_the_cool_down_and_lets_one_trial_through() -> None:
    clock = Clock()
    breaker = CircuitBreaker(1, 10.0, clock)
    breaker.record_failure()
    clock.now = 9.9
    assert not breaker.allow()
    clock.now = 10.0
    assert breaker.state is BreakerState.HALF_OPEN
    assert [breaker.allow(), breaker.allow()] == [True, False]  # one trial at a time
    assert breaker.record_failure()  # the trial failed: open for another cool-down
    assert (breaker.state, breaker.allow()) == (BreakerState.OPEN, False)
    clock.now = 20.0
    assert breaker.allow()
    breaker.record_success()
    assert (breaker.state, breaker.allow(), breaker.allow()) == (BreakerState.CLOSED, True, True)


def test_an_abandoned_trial_lets_the_next_request_try() -> None:
    clock = Clock()
    breaker = CircuitBreaker(1, 1.0, clock)
    breaker.record_failure()
    clock.now = 1.0
    assert breaker.allow()
    breaker.abandon()
    assert breaker.allow()


def test_the_config_comes_from_the_environment_and_none_without_an_endpoint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(LLM_BASE_URL, raising=False)
    assert LlmConfig.from_env() is None
    monkeypatch.setenv(LLM_BASE_URL, "http://vllm:8000/v1")
    monkeypatch.setenv(LLM_MODELS, "qwen-7b, llama-8b")
    monkeypatch.setenv(LLM_API_KEY, "sk-secret-value")
    config = LlmConfig.from_env(timeout_s=3.0)
    assert config is not None
    assert (config.base_url, config.models, config.timeout_s) == (
        "http://vllm:8000/v1",
        ("qwen-7b", "llama-8b"),
        3.0,
    )
    assert config.api_key == Secret("sk-secret-value")
    assert "sk-secret-value" not in repr(config) + str(config.api_key)
    flagged = LlmConfig.from_env("https://other/v1", ("m",))
    assert flagged is not None and (flagged.base_url, flagged.models) == ("https://other/v1", ("m",))


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"models": ()}, "models"),
        ({"models": ("a", "a")}, "models"),
        ({"base_url": "ftp://x"}, "base_url"),
        ({"timeout_s": 0}, "timeout_s"),
        ({"max_retries": -1}, "max_retries"),
        ({"breaker_failures": 0}, "breaker_failures"),
    ],
)
def test_a_bad_config_is_refused_naming_the_field(changes: dict[str, object], field: str) -> None:
    base: dict[str, object] = {"base_url": "http://127.0.0.1:1/v1", "models": ("m",)}
    with pytest.raises(InvalidArgument) as refused:
        LlmConfig(**{**base, **changes})  # type: ignore[arg-type]
    assert refused.value.violations[0].field == field


def test_an_unknown_setting_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(InvalidArgument, match="timeout_ms"):
        LlmConfig.from_env("http://127.0.0.1:1/v1", ("m",), timeout_ms=5)


def _status(code: int, message: str) -> openai.APIStatusError:
    request = httpx2.Request("POST", "http://127.0.0.1:1/v1/chat/completions")
    response = httpx2.Response(code, request=request)
    return openai.APIStatusError(message, response=response, body=None)


@pytest.mark.parametrize(
    ("code", "kind", "retryable"),
    [
        (500, Unavailable, True),
        (503, Unavailable, True),
        (429, ResourceExhausted, True),
        (401, Unauthenticated, False),
        (404, NotFound, False),
        (400, FailedPrecondition, False),
    ],
)
def test_http_errors_map_into_our_hierarchy_and_only_transient_ones_retry(
    code: int, kind: type[Exception], retryable: bool
) -> None:
    error = map_openai_error(_status(code, "nope sk-k"), "m", Secret("sk-k"))
    assert type(error) is kind
    assert f"HTTP {code}" in str(error) and "sk-k" not in str(error)
    assert is_retryable(error, retry_timeouts=False) is retryable


def test_a_timeout_is_a_deadline_retried_only_when_configured() -> None:
    error = map_openai_error(TimeoutError(), "m", None)
    assert isinstance(error, DeadlineExceeded) and isinstance(error, Unavailable)
    assert (is_retryable(error, False), is_retryable(error, True)) == (False, True)


def test_every_transport_event_is_a_telemetry_kind_of_the_same_name() -> None:
    from trademesh.advisor.v1 import messages_pb2 as advisor

    kinds = advisor.TelemetryEventKind.keys()
    assert len(kinds) - 1 >= 28  # the "28+ event types", UNSPECIFIED aside
    missing = [k for k in TransportEventKind if f"TELEMETRY_EVENT_KIND_{k.value.upper()}" not in kinds]
    assert missing == []


async def test_a_tool_calls_record_keeps_what_the_model_read_cut_to_the_limit() -> None:
    from collections.abc import Mapping
    from typing import Any

    from trademesh.core.advisor.llm.tools import ToolSpec, run_tool

    async def execute(name: str, arguments: Mapping[str, Any]) -> dict[str, str]:
        return {"last": "65001.25", "volume": "182.75"}

    known = {"ticker": ToolSpec("ticker", "a ticker")}
    kwargs: dict[str, Any] = {"model": "m", "known": known, "timeout_s": 1.0, "secret": None}
    message, record = await run_tool("c1", "ticker", "{}", execute=execute, max_result_chars=20, **kwargs)
    assert record.content == message["content"] == '{"last": "65001.25",'
    assert record.result_chars == len('{"last": "65001.25", "volume": "182.75"}')
    _, failed = await run_tool("c2", "nope", "{}", execute=execute, max_result_chars=20, **kwargs)
    assert (failed.ok, failed.content) == (False, '{"error": "unknown tool \'nope\'"}')
