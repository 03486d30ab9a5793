"""The LLM transport: one synthesis through an OpenAI-compatible endpoint, with its failures handled.

A synthesis sends the structured context and asks for JSON following the caller's schema
(chat completions, response_format json_schema). The model may call the caller's tools, at
most max_tool_calls of them. Each request has a deadline; transient failures are retried on
trademesh.core.platform.aio.backoff.Backoff; each model has a circuit breaker; the models
are tried in order, each switch an event. When no model answers the reply says so, and the
core synthesises deterministically. Nothing here raises for an endpoint's failure: it is in
the reply.

The transport is the service shell's: it does I/O. Time comes from an injected clock (the
breakers' cool-downs, latencies, events), so tests can move it.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import openai
from openai.types.chat import (
    ChatCompletion,
    ChatCompletionAssistantMessageParam,
    ChatCompletionMessage,
    ChatCompletionMessageParam,
    ChatCompletionMessageToolCallUnion,
)
from openai.types.chat.completion_create_params import ResponseFormat

from trademesh.core.advisor.llm.breaker import BreakerState, CircuitBreaker
from trademesh.core.advisor.llm.config import LlmConfig
from trademesh.core.advisor.llm.events import EventLog, TransportEventKind
from trademesh.core.advisor.llm.failures import is_retryable, map_openai_error
from trademesh.core.advisor.llm.prompt import INSTRUCTIONS, first_messages, response_format
from trademesh.core.advisor.llm.reply import LlmReply
from trademesh.core.advisor.llm.tools import ToolCallRecord, ToolExecutor, ToolSpec, refusal, run_tool
from trademesh.core.platform.aio.backoff import Backoff
from trademesh.core.platform.chat_answer import chat_completion
from trademesh.core.platform.errors import (
    Corrupt,
    DeadlineExceeded,
    FailedPrecondition,
    TrademeshError,
    Unavailable,
)
from trademesh.core.platform.logs.redact import redact_url

__all__ = ["DETERMINISTIC", "LlmTransport"]

log = logging.getLogger(__name__)

Kind = TransportEventKind
# What an LLM_FALLBACK event names as next when no model is left.
DETERMINISTIC = "deterministic"
# Sent as the key when none is configured (vLLM without --api-key ignores it); never the
# client's own default, which would read OPENAI_API_KEY from the environment.
_NO_KEY = "none"


@dataclass(frozen=True)
class _Ask:
    """What every request of one synthesis sends, whatever the model."""

    messages: list[ChatCompletionMessageParam]
    response_format: ResponseFormat
    tools: Mapping[str, ToolSpec]
    execute: ToolExecutor | None


@dataclass
class _Run:
    """The state of one synthesis."""

    log: EventLog
    budget_s: float
    tools_left: int
    attempts: int = 0
    tool_calls: list[ToolCallRecord] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def remaining_s(self) -> float:
        return self.budget_s - self.log.elapsed_s()


class LlmTransport:
    """Syntheses against one endpoint's models. One per process; safe for concurrent use."""

    def __init__(
        self,
        config: LlmConfig,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.config = config
        self._clock = clock
        self._sleep = sleep
        self._rng = rng
        key = config.api_key.reveal() if config.api_key is not None else _NO_KEY
        self._client = openai.AsyncOpenAI(
            api_key=key, base_url=config.base_url, timeout=config.timeout_s, max_retries=0
        )
        self._breakers = {
            m: CircuitBreaker(config.breaker_failures, config.breaker_cooldown_s, clock)
            for m in config.models
        }
        log.info("llm endpoint %s, models %s", redact_url(config.base_url), ", ".join(config.models))

    def breaker(self, model: str) -> CircuitBreaker:
        return self._breakers[model]

    async def aclose(self) -> None:
        await self._client.close()

    async def __aenter__(self) -> LlmTransport:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def complete(
        self,
        context: Mapping[str, Any],
        schema: Mapping[str, Any],
        *,
        tools: Sequence[ToolSpec] = (),
        execute: ToolExecutor | None = None,
        instructions: str = INSTRUCTIONS,
    ) -> LlmReply:
        """One synthesis: the first model that answers, else a failed reply saying why.

        InvalidArgument (raised) when the context is not JSON-serialisable or the schema is not
        an object's; tools are offered only with an executor to run them.
        """
        ask = _Ask(
            first_messages(context, instructions),
            response_format(schema),
            {t.name: t for t in tools} if execute is not None else {},
            execute,
        )
        run = _Run(EventLog(self._clock), self.config.budget_s, self.config.max_tool_calls)
        return await self._through_models(ask, run)

    async def _through_models(self, ask: _Ask, run: _Run) -> LlmReply:
        failure = ""
        models = self.config.models
        for index, model in enumerate(models):
            try:
                completion = await self._converse(model, ask, run)
            except TrademeshError as error:
                failure = str(error)
                last = index + 1 == len(models) or run.remaining_s() <= 0
                self._fall_back(run, model, failure, DETERMINISTIC if last else models[index + 1])
                if last:
                    break
                continue
            return self._answered(run, model, completion)
        return self._failed(run, failure)

    def _fall_back(self, run: _Run, model: str, reason: str, to: str) -> None:
        run.log.add(Kind.LLM_FALLBACK, model, detail=reason, to=to)
        log.warning("llm %s failed (%s); falling back to %s", model, reason, to, extra={"model": model})
        if to != DETERMINISTIC:
            run.log.add(Kind.MODEL_SWITCH, to, from_model=model)

    async def _converse(self, model: str, ask: _Ask, run: _Run) -> ChatCompletion:
        """Ask `model` until it answers with content, running the tools it calls."""
        messages = list(ask.messages)
        while True:
            tools_on = run.tools_left > 0
            completion = await self._request(model, messages, ask, run, tools_on)
            message = _message(completion, model)
            calls = message.tool_calls or []
            if not calls:
                if message.content is None:
                    raise Corrupt(f"{model}: an answer with no content (refusal: {bool(message.refusal)})")
                return completion
            if not ask.tools or not tools_on:
                run.log.add(
                    Kind.TOOL_LIMIT, model, detail="tool calls after the limit", calls=str(len(calls))
                )
                raise FailedPrecondition(f"{model}: kept calling tools past the limit or none was offered")
            messages.append(_assistant(message, calls))
            messages += await self._run_tools(model, calls, ask, run)

    async def _run_tools(
        self, model: str, calls: list[ChatCompletionMessageToolCallUnion], ask: _Ask, run: _Run
    ) -> list[ChatCompletionMessageParam]:
        assert ask.execute is not None  # tools are offered only with an executor
        answers: list[ChatCompletionMessageParam] = []
        for call in calls:
            if run.tools_left <= 0:
                run.log.add(Kind.TOOL_LIMIT, model, detail="refused a tool call past the limit")
                answers.append(refusal(call.id))
                continue
            name, arguments = _function(call)
            run.tools_left -= 1
            message, record = await run_tool(
                call.id, name, arguments, model=model, known=ask.tools, execute=ask.execute,
                timeout_s=self.config.tool_timeout_s, max_result_chars=self.config.max_tool_result_chars,
                secret=self.config.api_key,
            )  # fmt: skip
            run.tool_calls.append(record)
            run.log.add(
                Kind.TOOL_CALL,
                model,
                detail=record.error,
                tool=record.name,
                result_chars=str(record.result_chars),
            )
            answers.append(message)
        return answers

    async def _request(
        self, model: str, messages: list[ChatCompletionMessageParam], ask: _Ask, run: _Run, tools_on: bool
    ) -> ChatCompletion:
        """One request to `model`, retried while its failures are transient."""
        breaker = self._breakers[model]
        backoff = Backoff(self.config.backoff_initial_s, self.config.backoff_max_s, self._rng)
        for retry in itertools.count():
            if run.remaining_s() <= 0:  # not the model's failure: its breaker does not count it
                raise DeadlineExceeded(f"{model}: the synthesis' budget of {self.config.budget_s} s is spent")
            self._admit(model, breaker, run)
            try:
                return await self._attempt(model, messages, ask, run, tools_on)
            except TrademeshError as error:
                if breaker.record_failure():
                    run.log.add(Kind.CIRCUIT_OPEN, model, detail=f"{breaker.failures} consecutive failures")
                    log.warning("llm %s: circuit open", model, extra={"model": model})
                    raise
                delay = backoff.next()
                if not self._may_retry(error, retry, delay, run):
                    raise
                run.log.add(Kind.LLM_RETRY, model, detail=str(error), delay_s=f"{delay:.3f}")
            await self._sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def _may_retry(self, error: TrademeshError, retry: int, delay_s: float, run: _Run) -> bool:
        return (
            is_retryable(error, self.config.retry_timeouts)
            and retry < self.config.max_retries
            and delay_s < run.remaining_s()
        )

    def _admit(self, model: str, breaker: CircuitBreaker, run: _Run) -> None:
        """Let a request to `model` go, or raise Unavailable when its circuit is open."""
        trial = breaker.state is BreakerState.HALF_OPEN
        if not breaker.allow():
            run.log.add(Kind.CIRCUIT_SKIP, model, detail="circuit open")
            raise Unavailable(f"{model}: circuit open")
        if trial:
            run.log.add(Kind.CIRCUIT_HALF_OPEN, model, detail="one trial request")

    async def _attempt(
        self, model: str, messages: list[ChatCompletionMessageParam], ask: _Ask, run: _Run, tools_on: bool
    ) -> ChatCompletion:
        timeout_s = max(0.001, min(self.config.timeout_s, run.remaining_s()))
        run.attempts += 1
        attempt = run.attempts
        run.log.add(Kind.LLM_REQUEST, model, attempt=attempt, messages=str(len(messages)))
        started = self._clock()
        try:
            async with asyncio.timeout(timeout_s):
                completion = await self._create(model, messages, ask, tools_on)
        except asyncio.CancelledError:
            self._breakers[model].abandon()
            raise
        except (TimeoutError, openai.OpenAIError) as exc:
            error = map_openai_error(exc, model, self.config.api_key)
            kind = Kind.LLM_TIMEOUT if isinstance(error, DeadlineExceeded) else Kind.LLM_ERROR
            run.log.add(kind, model, attempt=attempt, detail=str(error), latency_s=self._clock() - started)
            raise error from None
        self._answered_request(model, completion, run, attempt, self._clock() - started)
        return completion

    def _answered_request(
        self, model: str, completion: ChatCompletion, run: _Run, attempt: int, latency_s: float
    ) -> None:
        breaker = self._breakers[model]
        if breaker.state is BreakerState.HALF_OPEN:
            run.log.add(Kind.CIRCUIT_CLOSED, model, detail="the trial request was answered")
        breaker.record_success()
        usage = completion.usage
        if usage is not None:
            run.prompt_tokens += usage.prompt_tokens
            run.completion_tokens += usage.completion_tokens
        finish = completion.choices[0].finish_reason if completion.choices else "none"
        run.log.add(Kind.LLM_RESPONSE, model, attempt=attempt, latency_s=latency_s, finish_reason=finish)

    async def _create(
        self, model: str, messages: list[ChatCompletionMessageParam], ask: _Ask, tools_on: bool
    ) -> ChatCompletion:
        tool_choice: Literal["auto", "none"] = "auto" if tools_on else "none"
        return await chat_completion(
            self._client,
            model=model,
            messages=messages,
            response_format=ask.response_format,
            temperature=self.config.temperature,
            max_completion_tokens=self.config.max_completion_tokens,
            tools=[t.param() for t in ask.tools.values()] if ask.tools else openai.omit,
            tool_choice=tool_choice if ask.tools else openai.omit,
        )

    def _answered(self, run: _Run, model: str, completion: ChatCompletion) -> LlmReply:
        choice = completion.choices[0]
        return LlmReply(
            ok=True, model=model, content=choice.message.content, finish_reason=choice.finish_reason,
            tool_calls=tuple(run.tool_calls), latency_s=run.log.elapsed_s(), attempts=run.attempts,
            events=tuple(run.log.events), prompt_tokens=run.prompt_tokens,
            completion_tokens=run.completion_tokens,
        )  # fmt: skip

    def _failed(self, run: _Run, failure: str) -> LlmReply:
        return LlmReply(
            ok=False, model=None, content=None, finish_reason=None, tool_calls=tuple(run.tool_calls),
            latency_s=run.log.elapsed_s(), attempts=run.attempts, events=tuple(run.log.events),
            failure=failure or "no model answered", prompt_tokens=run.prompt_tokens,
            completion_tokens=run.completion_tokens,
        )  # fmt: skip


def _message(completion: ChatCompletion, model: str) -> ChatCompletionMessage:
    if not completion.choices:
        raise Corrupt(f"{model}: an answer with no choices")
    return completion.choices[0].message


def _function(call: ChatCompletionMessageToolCallUnion) -> tuple[str, str]:
    """(name, arguments text) of a tool call; a custom (non-function) call has no known name."""
    if call.type == "function":
        return call.function.name, call.function.arguments
    return f"custom:{call.custom.name}", call.custom.input


def _assistant(
    message: ChatCompletionMessage, calls: list[ChatCompletionMessageToolCallUnion]
) -> ChatCompletionAssistantMessageParam:
    """The model's tool-calling turn, as the next request repeats it."""
    return {
        "role": "assistant",
        "content": message.content,
        "tool_calls": [
            {"id": c.id, "type": "function", "function": {"name": n, "arguments": a}}
            for c in calls
            for n, a in [_function(c)]
        ],
    }
