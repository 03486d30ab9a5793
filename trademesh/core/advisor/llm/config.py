"""The LLM transport's configuration: endpoint, models in order, limits, and the API key.

The key comes only from the environment (trademesh.core.platform.config.env.LLM_API_KEY) and lives
in a Secret, whose repr and str never show it, so a config logged or put in an error cannot leak it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from trademesh.core.platform.config.env import LLM_API_KEY, LLM_BASE_URL, LLM_MODELS, read_secret
from trademesh.core.platform.config.flags import setting
from trademesh.core.platform.errors import InvalidArgument
from trademesh.core.platform.logs.redact import check_url
from trademesh.core.platform.service.command import positive_float, whole_number

__all__ = ["LlmConfig", "Secret"]

_HIDDEN = "***"


class Secret:
    """A secret string that shows as *** everywhere but `reveal()`."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def scrub(self, text: str) -> str:
        """`text` with every occurrence of the secret replaced by ***."""
        return text.replace(self._value, _HIDDEN) if self._value else text

    def __repr__(self) -> str:
        return f"Secret({_HIDDEN})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def _positive(name: str, value: float) -> None:
    if not (math.isfinite(value) and value > 0):
        raise InvalidArgument.field(name, f"must be a positive number, not {value!r}")


def _not_negative(name: str, value: int) -> None:
    if value < 0:
        raise InvalidArgument.field(name, f"must be 0 or more, not {value!r}")


@dataclass(frozen=True)
class LlmConfig:
    """Where the synthesis asks, which models in which order, and how hard it tries.

    Every request has a deadline (timeout_s); a transient failure (connection, HTTP 5xx, 429)
    is retried up to max_retries times on trademesh.core.platform.aio.backoff.Backoff
    (backoff_initial_s doubling to backoff_max_s, jittered); a timeout moves to the next model
    at once unless retry_timeouts. A model's circuit opens after breaker_failures consecutive
    failed requests and lets one trial request through breaker_cooldown_s later. One synthesis
    never takes longer than budget_s, and the model may call at most max_tool_calls tools in
    it.
    """

    base_url: str
    models: tuple[str, ...]
    api_key: Secret | None = field(default=None, repr=False)
    timeout_s: float = setting(10.0, type=positive_float, flag="llm-timeout-s", help="per request")
    max_retries: int = 2
    retry_timeouts: bool = False
    backoff_initial_s: float = 0.2
    backoff_max_s: float = 2.0
    breaker_failures: int = 5
    breaker_cooldown_s: float = 30.0
    budget_s: float = 30.0
    max_tool_calls: int = setting(
        4, type=whole_number(0), flag="llm-max-tool-calls", help="tool calls per synthesis; 0: no tools"
    )
    tool_timeout_s: float = 5.0
    max_tool_result_chars: int = 16_000
    temperature: float = 0.0
    max_completion_tokens: int = 512

    def __post_init__(self) -> None:
        check_url(self.base_url, ("http", "https"), "base_url")
        if not self.models or any(not m.strip() for m in self.models):
            raise InvalidArgument.field("models", "name at least one model, none of them blank")
        if len(set(self.models)) != len(self.models):
            raise InvalidArgument.field("models", "each model at most once")
        for name in ("timeout_s", "backoff_initial_s", "backoff_max_s", "breaker_cooldown_s"):
            _positive(name, getattr(self, name))
        for name in ("budget_s", "tool_timeout_s"):
            _positive(name, getattr(self, name))
        for name in ("max_retries", "max_tool_calls"):
            _not_negative(name, getattr(self, name))
        if self.breaker_failures < 1:
            raise InvalidArgument.field("breaker_failures", "must be 1 or more")
        if self.max_tool_result_chars < 1 or self.max_completion_tokens < 1:
            raise InvalidArgument.field("max_tool_result_chars", "limits must be 1 or more")

    @classmethod
    def from_env(
        cls, base_url: str | None = None, models: tuple[str, ...] | None = None, **limits: float | int | bool
    ) -> LlmConfig | None:
        """The config from flags (which win) and the environment; None when no endpoint is set
        (then the advisor's synthesis is deterministic). Unknown limit names are refused."""
        url = base_url or read_secret(LLM_BASE_URL)
        if url is None:
            return None
        names = models or tuple(m.strip() for m in (read_secret(LLM_MODELS) or "").split(",") if m.strip())
        unknown = sorted(set(limits) - _LIMITS)
        if unknown:
            raise InvalidArgument.field(unknown[0], "is not a setting of the LLM transport")
        key = read_secret(LLM_API_KEY)
        return cls(url, names, None if key is None else Secret(key), **limits)  # type: ignore[arg-type]


_LIMITS = frozenset(LlmConfig.__dataclass_fields__) - {"base_url", "models", "api_key"}
