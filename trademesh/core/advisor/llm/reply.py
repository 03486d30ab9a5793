"""What a synthesis returns: the model's raw answer and the story of how it was had."""

from __future__ import annotations

from dataclasses import dataclass

from trademesh.core.advisor.llm.events import TransportEvent, TransportEventKind
from trademesh.core.advisor.llm.tools import ToolCallRecord

__all__ = ["LlmReply"]


@dataclass(frozen=True)
class LlmReply:
    """The outcome of one synthesis.

    ok: a model answered; `content` is its text, as it came (the core checks that it is JSON
    following the schema, and what it claims). Not ok: every model failed or was skipped,
    `failure` says why, and the core uses its deterministic synthesis.
    """

    ok: bool
    model: str | None
    content: str | None
    finish_reason: str | None
    tool_calls: tuple[ToolCallRecord, ...]
    latency_s: float
    # HTTP requests made, over every model.
    attempts: int
    events: tuple[TransportEvent, ...]
    failure: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def events_of(self, kind: TransportEventKind) -> list[TransportEvent]:
        return [e for e in self.events if e.kind is kind]

    @property
    def models_tried(self) -> list[str]:
        return list(dict.fromkeys(e.model for e in self.events_of(TransportEventKind.LLM_REQUEST)))
