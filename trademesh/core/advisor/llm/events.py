"""What the transport did, in order: the events a synthesis reports with its reply.

The advisor's shell turns each into a telemetry event on `advisor.telemetry`
(trademesh.advisor.v1.TelemetryEvent, whose kinds carry the same names).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

__all__ = ["EventLog", "TransportEvent", "TransportEventKind"]


class TransportEventKind(StrEnum):
    LLM_REQUEST = "llm_request"
    LLM_RESPONSE = "llm_response"
    LLM_TIMEOUT = "llm_timeout"
    LLM_ERROR = "llm_error"
    # A transient failure is retried on the same model after a backoff delay.
    LLM_RETRY = "llm_retry"
    # A model was given up (why, and what comes next: a model or the deterministic synthesis).
    LLM_FALLBACK = "llm_fallback"
    MODEL_SWITCH = "model_switch"
    CIRCUIT_OPEN = "circuit_open"
    CIRCUIT_HALF_OPEN = "circuit_half_open"
    CIRCUIT_CLOSED = "circuit_closed"
    # A model was not asked: its circuit is open.
    CIRCUIT_SKIP = "circuit_skip"
    TOOL_CALL = "tool_call"
    # The model asked for more tool calls than allowed: refused, and told to answer.
    TOOL_LIMIT = "tool_limit"


@dataclass(frozen=True)
class TransportEvent:
    """One step of a synthesis. `at_s` counts from the synthesis' start on the transport's clock;
    `attempt` is the request's number in the synthesis (0 for events of no request)."""

    kind: TransportEventKind
    at_s: float
    model: str
    attempt: int = 0
    detail: str = ""
    latency_s: float | None = None
    fields: dict[str, str] = field(default_factory=dict)


class EventLog:
    """The events of one synthesis, timed on the injected clock."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self.started_s = clock()
        self.events: list[TransportEvent] = []

    def elapsed_s(self) -> float:
        return self._clock() - self.started_s

    def add(
        self,
        kind: TransportEventKind,
        model: str,
        *,
        attempt: int = 0,
        detail: str = "",
        latency_s: float | None = None,
        **fields: str,
    ) -> TransportEvent:
        event = TransportEvent(kind, self.elapsed_s(), model, attempt, detail, latency_s, fields)
        self.events.append(event)
        return event

    def kinds(self) -> list[TransportEventKind]:
        return [e.kind for e in self.events]
