"""The Supervisor's LLM: the observation as JSON, one tool `propose` offered with a JSON schema,
the model's calls to it turned into proposals (source: the model's name) that the engine then
checks exactly as the rules' (trademesh.core.supervisor.engine.check: a strategy, policy or value that does
not exist or leaves the bounds is refused and recorded). Through the OpenAI client, at the
advisor's endpoint settings (TRADEMESH_LLM_BASE_URL, _MODELS: the first model, _API_KEY, a
secret never logged or audited). A model that fails, times out or answers no call gives no
proposals (the rules still run); a call whose arguments are not the schema's is a refusal."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, cast

import openai
from openai.types.chat import ChatCompletionMessageParam, ChatCompletionToolParam

from trademesh.core.domain.decimals import format_decimal
from trademesh.core.platform.chat_answer import chat_completion
from trademesh.core.platform.errors import InvalidArgument
from trademesh.core.platform.logs.redact import redact_url
from trademesh.core.platform.parsing import loads_json
from trademesh.core.supervisor.engine import ActionKind, Bounds, Observation, Proposal

__all__ = ["Asked", "SupervisorLlm"]

log = logging.getLogger(__name__)

_INSTRUCTIONS = (
    "You supervise trading strategies. The user message is an observation (JSON): each strategy's "
    "realised PnL, drawdown (a fraction of its reserved capital), capital and whether it is paused; "
    "the market regimes; the risk governor's state; the policy limits; the operator's bounds. Call "
    "`propose` once per action you recommend (pause, resume, set_capital, tighten_policy), naming "
    "only strategies and policies in the observation, with values within the bounds, and a reason "
    "that quotes the figures it rests on. Propose nothing when nothing is wrong."
)
PROPOSE_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "propose",
        "description": "Recommend one bounded action; the operator's checks decide whether it stands.",
        "parameters": {
            "type": "object",
            "properties": {
                "kind": {"type": "string", "enum": [k.value for k in ActionKind]},
                "strategy": {"type": "string"},
                "value": {"type": "string", "description": "a decimal: set_capital, tighten_policy"},
                "policy": {"type": "string", "description": "tighten_policy only"},
                "reason": {"type": "string"},
            },
            "required": ["kind", "reason"],
            "additionalProperties": False,
        },
    },
}
_MAX_TEXT = 500
_MAX_PROMPT = 4000


@dataclass(frozen=True)
class Asked:
    """One question to the model: its proposals, the calls it made that were not proposals
    (each with why), and a line for the audit trail (the prompt's size, the model's answer)."""

    proposals: tuple[Proposal, ...]
    malformed: tuple[str, ...]
    said: str
    prompt: str = ""  # the observation as sent (cut at _MAX_PROMPT for the trail)
    calls: tuple[str, ...] = ()  # each tool call as the model made it: name(arguments)


def observation_json(seen: Observation, bounds: Bounds) -> str:
    strategies = [
        {
            "strategy": s.strategy,
            "realised_pnl": format_decimal(s.realised_pnl),
            "drawdown": format_decimal(s.drawdown),
            "capital": None if s.capital is None else format_decimal(s.capital),
            "paused": s.paused,
        }
        for s in seen.strategies
    ]
    limits = {
        "min_capital": format_decimal(bounds.min_capital),
        "max_capital": format_decimal(bounds.max_capital),
        "capital_step": format_decimal(bounds.capital_step),
        "policies": sorted(bounds.policies),
    }
    return json.dumps(
        {
            "strategies": strategies,
            "regimes": seen.regimes,
            "risk_state": seen.risk_state,
            "limits": {k: format_decimal(v) for k, v in seen.limits.items()},
            "bounds": limits,
        },
        sort_keys=True,
    )


class SupervisorLlm:
    def __init__(self, base_url: str, model: str, api_key: str | None, timeout_s: float = 20.0) -> None:
        self.model = model
        self.where = redact_url(base_url)
        self._client = openai.AsyncOpenAI(
            api_key=api_key or "none", base_url=base_url, timeout=timeout_s, max_retries=0
        )

    async def ask(self, seen: Observation, bounds: Bounds) -> Asked:
        prompt = observation_json(seen, bounds)
        try:
            messages = [{"role": "system", "content": _INSTRUCTIONS}, {"role": "user", "content": prompt}]
            answer = await chat_completion(
                self._client,
                model=self.model,
                messages=cast(list[ChatCompletionMessageParam], messages),
                tools=[cast(ChatCompletionToolParam, PROPOSE_TOOL)],
                tool_choice="auto",
            )
        except openai.OpenAIError as exc:
            said = f"{self.model} at {self.where}: no answer ({type(exc).__name__})"
            if isinstance(exc, openai.APIResponseValidationError):  # no traceback: the model's fault
                said = f"{self.model} at {self.where}: a malformed answer refused ({exc.message})"
                log.warning("supervisor: %s", said)
            return Asked((), (), said, prompt[:_MAX_PROMPT])
        message = answer.choices[0].message if answer.choices else None
        calls = list(message.tool_calls or []) if message is not None else []
        proposals, malformed, made = [], [], []
        for call in calls:
            function = getattr(call, "function", None)  # a custom tool call has none: not ours
            made.append(
                f"{getattr(function, 'name', '?')}({str(getattr(function, 'arguments', ''))[:_MAX_TEXT]})"
            )
            try:
                proposals.append(
                    self._proposal(getattr(function, "name", ""), getattr(function, "arguments", ""))
                )
            except ValueError as exc:
                malformed.append(str(exc))
        said = f"{self.model}: {len(calls)} tool calls on a {len(prompt)}-character observation"
        return Asked(tuple(proposals), tuple(malformed), said, prompt[:_MAX_PROMPT], tuple(made))

    async def aclose(self) -> None:
        await self._client.close()

    def _proposal(self, name: str, arguments: str) -> Proposal:
        if name != "propose":
            raise ValueError(f"a call of {name[:40]!r}, not propose")
        try:
            given = loads_json(arguments, "arguments")
        except InvalidArgument as exc:
            why = exc.violations[0].description[:120]
            raise ValueError(f"propose's arguments {arguments[:80]!r}: {why}") from None
        if not isinstance(given, dict) or not isinstance(given.get("kind"), str):
            raise ValueError("propose without a kind")
        try:
            kind = ActionKind(given["kind"])
        except ValueError:
            raise ValueError(f"propose of {given['kind'][:40]!r}: not an action") from None
        value = _value(given.get("value"))
        text = {k: str(given.get(k) or "")[:_MAX_TEXT] for k in ("strategy", "policy", "reason")}
        return Proposal(kind, text["strategy"], value, text["policy"], text["reason"], (), self.model)


def _value(text: Any) -> Decimal | None:
    if text in (None, ""):
        return None
    try:
        value = Decimal(str(text))
    except InvalidOperation:
        raise ValueError(f"propose's value {str(text)[:40]!r} is not a decimal") from None
    if not value.is_finite():
        raise ValueError("propose's value is not finite")
    return value
