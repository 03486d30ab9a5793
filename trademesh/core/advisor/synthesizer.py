"""Stage 6's I/O: a Pending decision's request through the LLM transport, and the reply as the
core's event (LlmAnswer or LlmFailure) with the trace the decision keeps.

The model may call the mesh's read-only tools (trademesh.core.tools: the gateway's MCP tools, one
implementation) for more context, at most the transport's max_tool_calls per synthesis. The
transport's events all go into the decision's LlmTrace; those the core does not raise itself
(retries, circuit breaker, tool calls) also become telemetry events of the decision.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from trademesh.advisor.v1 import messages_pb2 as am
from trademesh.core.advisor.engine.answer import (
    ANSWER_SCHEMA,
    AttemptOutcome,
    FailureReason,
    LlmAnswer,
    LlmAttempt,
    LlmFailure,
)
from trademesh.core.advisor.engine.decision import Pending
from trademesh.core.advisor.llm.events import TransportEvent, TransportEventKind
from trademesh.core.advisor.llm.reply import LlmReply
from trademesh.core.advisor.llm.tools import ToolSpec
from trademesh.core.advisor.llm.transport import LlmTransport
from trademesh.core.domain.contracts.signal import Signal
from trademesh.core.tools.catalog import ToolCatalog

__all__ = [
    "SHELL_KINDS",
    "Synthesized",
    "Synthesizer",
    "answer_from_trace",
    "answer_of",
    "shell_events",
    "trace_of",
]

Kind = TransportEventKind
_NS = 1_000_000_000
_NAMESPACE = uuid.UUID("5d3f1c2a-7b9e-4e0a-8c61-6c6c6d747261")
# The transport's events the core does not raise itself: the shell publishes them as telemetry.
SHELL_KINDS = {
    Kind.LLM_RETRY: am.TELEMETRY_EVENT_KIND_LLM_RETRY,
    Kind.CIRCUIT_OPEN: am.TELEMETRY_EVENT_KIND_CIRCUIT_OPEN,
    Kind.CIRCUIT_HALF_OPEN: am.TELEMETRY_EVENT_KIND_CIRCUIT_HALF_OPEN,
    Kind.CIRCUIT_CLOSED: am.TELEMETRY_EVENT_KIND_CIRCUIT_CLOSED,
    Kind.CIRCUIT_SKIP: am.TELEMETRY_EVENT_KIND_CIRCUIT_SKIP,
    Kind.TOOL_CALL: am.TELEMETRY_EVENT_KIND_TOOL_CALL,
    Kind.TOOL_LIMIT: am.TELEMETRY_EVENT_KIND_TOOL_LIMIT,
}
_EVENT_KINDS = {
    **SHELL_KINDS,
    Kind.LLM_REQUEST: am.TELEMETRY_EVENT_KIND_LLM_REQUEST,
    Kind.LLM_RESPONSE: am.TELEMETRY_EVENT_KIND_LLM_RESPONSE,
    Kind.LLM_TIMEOUT: am.TELEMETRY_EVENT_KIND_LLM_TIMEOUT,
    Kind.LLM_ERROR: am.TELEMETRY_EVENT_KIND_LLM_ERROR,
    Kind.LLM_FALLBACK: am.TELEMETRY_EVENT_KIND_LLM_FALLBACK,
    Kind.MODEL_SWITCH: am.TELEMETRY_EVENT_KIND_MODEL_SWITCH,
}


@dataclass(frozen=True)
class Synthesized:
    """One synthesis: the core's event, the decision's trace, and the shell's telemetry of it."""

    answer: LlmAnswer | LlmFailure
    trace: am.LlmTrace
    events: list[am.TelemetryEvent]


def _attempts(events: Sequence[TransportEvent]) -> tuple[LlmAttempt, ...]:
    outcomes = {Kind.LLM_TIMEOUT: AttemptOutcome.TIMEOUT, Kind.LLM_ERROR: AttemptOutcome.ERROR}
    return tuple(
        LlmAttempt(e.model, outcomes[e.kind], e.detail, _ms(e.latency_s or 0.0))
        for e in events
        if e.kind in outcomes
    )


def _ms(seconds: float) -> int:
    """Milliseconds as the trace's nanoseconds give them, so a replay from the trace agrees."""
    return int(seconds * _NS) // 1_000_000


def _failure_reason(reply: LlmReply, models: int) -> FailureReason:
    kinds = [e.kind for e in reply.events]
    if Kind.LLM_REQUEST not in kinds and Kind.CIRCUIT_SKIP in kinds:
        return FailureReason.CIRCUIT_OPEN
    failed = [k for k in kinds if k in (Kind.LLM_TIMEOUT, Kind.LLM_ERROR)]
    if failed and all(k is Kind.LLM_TIMEOUT for k in failed):
        return FailureReason.TIMEOUT
    return FailureReason.ALL_FAILED if models > 1 else FailureReason.ERROR


def answer_of(decision_id: str, reply: LlmReply, models: int) -> LlmAnswer | LlmFailure:
    """The core's event of a reply: the answer with the tool results its model read, or the failure."""
    attempts = _attempts(reply.events)
    if reply.ok and reply.model is not None and reply.content is not None:
        # Each model's conversation starts afresh: the answer saw only its own model's tool calls.
        seen = tuple(c.content for c in reply.tool_calls if c.model == reply.model)
        latency_ms = _ms(reply.latency_s)
        return LlmAnswer(decision_id, reply.model, reply.content, latency_ms, attempts, seen)
    return LlmFailure(decision_id, _failure_reason(reply, models), reply.failure or "", attempts)


def answer_from_trace(decision_id: str, trace: am.LlmTrace) -> LlmAnswer | None:
    """The answer event again from a recorded decision's trace (None when no model answered):
    what a replay feeds the core, tool results included, so its checks come out the same."""
    if not trace.model:
        return None
    seen = tuple(c.result for c in trace.tool_calls if c.model == trace.model)
    latency_ms = trace.latency_ns // 1_000_000
    return LlmAnswer(decision_id, trace.model, trace.content, latency_ms, _trace_attempts(trace), seen)


def _trace_attempts(trace: am.LlmTrace) -> tuple[LlmAttempt, ...]:
    outcomes = {
        am.TELEMETRY_EVENT_KIND_LLM_TIMEOUT: AttemptOutcome.TIMEOUT,
        am.TELEMETRY_EVENT_KIND_LLM_ERROR: AttemptOutcome.ERROR,
    }
    return tuple(
        LlmAttempt(e.model, outcomes[e.kind], e.detail, e.latency_ns // 1_000_000)
        for e in trace.events
        if e.kind in outcomes
    )


def trace_of(reply: LlmReply, models: Sequence[str]) -> am.LlmTrace:
    return am.LlmTrace(
        models=list(models),
        model=reply.model or "",
        attempts=reply.attempts,
        latency_ns=int(reply.latency_s * _NS),
        content=reply.content or "",
        tool_calls=[
            am.ToolCall(
                model=c.model,
                name=c.name,
                arguments_json=_json(c.arguments),
                result_chars=c.result_chars,
                ok=c.ok,
                error=c.error,
                result=c.content,
            )
            for c in reply.tool_calls
        ],
        events=[
            am.LlmEvent(
                kind=_EVENT_KINDS[e.kind],
                model=e.model,
                attempt=e.attempt,
                detail=e.detail,
                offset_ns=int(e.at_s * _NS),
                latency_ns=int((e.latency_s or 0.0) * _NS),
                fields=e.fields,
            )
            for e in reply.events
        ],
        failure=reply.failure or "",
        prompt_tokens=reply.prompt_tokens,
        completion_tokens=reply.completion_tokens,
    )


def _json(value: object) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def shell_events(
    decision_id: str, signal: Signal, reply: LlmReply, started_ns: int
) -> list[am.TelemetryEvent]:
    """The transport's events the core does not raise, as the decision's telemetry."""
    found = []
    for index, e in enumerate(reply.events):
        kind = SHELL_KINDS.get(e.kind)
        if kind is None:
            continue
        fields = {**e.fields, "name": e.kind.value}
        found.append(
            am.TelemetryEvent(
                event_id=str(uuid.uuid5(_NAMESPACE, f"{decision_id}/{index}")),
                kind=kind,
                decision_id=decision_id,
                signal_id=signal.signal_id,
                stage=am.STAGE_SYNTHESIS,
                venue=signal.venue,
                symbol=signal.symbol,
                strategy_id=signal.strategy_id,
                ts_ns=started_ns + int(e.at_s * _NS),
                duration_ns=int((e.latency_s or 0.0) * _NS),
                model=e.model,
                detail=e.detail,
                fields=fields,
            )
        )
    return found


class Synthesizer:
    """Syntheses through one transport, at most `concurrency` requests out at once: past a few
    dozen, the HTTP client's connection pool costs more CPU per request than the request itself
    (it scans every connection for each), and 64 at 200 ms each are 320 decisions/s already.
    Those over the limit wait for a slot, within their decision's deadline."""

    def __init__(self, transport: LlmTransport, tools: ToolCatalog | None, concurrency: int = 64) -> None:
        self.transport = transport
        self.tools = tools
        self._slots = asyncio.Semaphore(concurrency)
        self.specs = (
            []
            if tools is None
            else [ToolSpec(name, description, parameters) for name, description, parameters in tools.specs()]
        )

    @property
    def models(self) -> tuple[str, ...]:
        return self.transport.config.models

    async def synthesize(self, pending: Pending, signal: Signal, started_ns: int) -> Synthesized:
        request = pending.request
        async with self._slots:
            reply = await self.transport.complete(
                request.payload,
                ANSWER_SCHEMA,
                tools=self.specs,
                execute=None if self.tools is None else self.tools.call,
                instructions=request.instructions,
            )
        return Synthesized(
            answer_of(pending.decision_id, reply, len(self.models)),
            trace_of(reply, self.models),
            shell_events(pending.decision_id, signal, reply, started_ns),
        )
