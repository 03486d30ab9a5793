"""Stage 6's contract with the LLM transport: the answer's JSON schema, and the events the
transport hands back to the core (an answer, or a failure), each with the attempts that led to
it (timeouts, errors, switches to a fallback model); an answer also carries the tool results
its model read."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ANSWER_FIELDS",
    "ANSWER_SCHEMA",
    "RESPONSE_FORMAT",
    "AttemptOutcome",
    "FailureReason",
    "LlmAnswer",
    "LlmAttempt",
    "LlmFailure",
]

ANSWER_FIELDS: tuple[str, ...] = ("bias", "confidence", "reasoning", "size_multiplier")

# The answer's JSON schema (the transport passes it as response_format; the core checks every
# answer against it anyway, since not every endpoint enforces it).
ANSWER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "bias": {"type": "string", "enum": ["long", "short", "flat"]},
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
        "reasoning": {"type": "string"},
        "size_multiplier": {"type": "number", "minimum": 0, "maximum": 2},
    },
    "required": list(ANSWER_FIELDS),
    "additionalProperties": False,
}

# OpenAI's chat-completions response_format for the schema.
RESPONSE_FORMAT: dict[str, Any] = {
    "type": "json_schema",
    "json_schema": {"name": "advisor_synthesis", "strict": True, "schema": ANSWER_SCHEMA},
}


class AttemptOutcome(enum.Enum):
    OK = "ok"
    TIMEOUT = "timeout"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class LlmAttempt:
    """One call of one model, in the order the transport made them."""

    model: str
    outcome: AttemptOutcome
    detail: str = ""  # the error, or what timed out
    latency_ms: int = 0


@dataclass(frozen=True, slots=True)
class LlmAnswer:
    """A model answered: its raw text (the core parses and checks it), and the results of the
    tools it called, as it read them (truncated to the transport's max_tool_result_chars): the
    numbers it may quote besides the request's. Part of the event, so replaying the answer
    checks it the same way."""

    decision_id: str
    model: str
    text: str
    latency_ms: int
    attempts: tuple[LlmAttempt, ...] = ()  # the failed attempts before this answer
    tool_results: tuple[str, ...] = ()  # in the order the model called the tools


class FailureReason(enum.Enum):
    TIMEOUT = "timeout"
    ERROR = "error"
    ALL_FAILED = "all_failed"  # every model of the list failed
    CIRCUIT_OPEN = "circuit_open"  # the transport's breaker refused to call
    DISABLED = "disabled"  # no endpoint configured


@dataclass(frozen=True, slots=True)
class LlmFailure:
    decision_id: str
    reason: FailureReason
    detail: str = ""
    attempts: tuple[LlmAttempt, ...] = ()
