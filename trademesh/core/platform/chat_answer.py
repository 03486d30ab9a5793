"""A chat completion from an OpenAI-compatible endpoint, its answer read by trademesh.core.platform.parsing
rather than by the openai client: an answer is outside input like any other.

The client parsed the body with json and built its models without validation: an answer nested
thousands deep raised RecursionError (no OpenAIError: it stopped the Supervisor), one with a
lone surrogate's escape carried it into every string (a log line, an audit row, the next request
could not encode it), and one whose choices or tool calls were no objects broke whatever read
them. Here the body is bounded (size, nesting), its surrogates replaced, and the parts callers
read (choices, their messages, content, tool calls, usage) checked for their shapes; an answer
that fails is openai.APIResponseValidationError, which callers already handle as the client's own
refusal of a malformed answer.
"""

from __future__ import annotations

from typing import Any

import openai
from openai.types.chat import ChatCompletion

from trademesh.core.platform.errors import InvalidArgument
from trademesh.core.platform.parsing import loads_json

__all__ = ["MAX_ANSWER_BYTES", "chat_completion"]

# Far past any answer of max_completion_tokens (a few hundred KiB at most).
MAX_ANSWER_BYTES = 8 * 1024 * 1024
_CALL_FIELDS = {"function": ("name", "arguments"), "custom": ("name", "input")}


async def chat_completion(client: openai.AsyncOpenAI, **request: Any) -> ChatCompletion:
    """client.chat.completions.create(**request), the answer read here; raises what create
    raises, and APIResponseValidationError for an answer that is not a chat completion."""
    raw = await client.chat.completions.with_raw_response.create(**request)
    try:
        value = loads_json(raw.content, "answer", max_bytes=MAX_ANSWER_BYTES)
        _check(value)
    except InvalidArgument as exc:
        raise openai.APIResponseValidationError(raw.http_response, None, message=str(exc)) from None
    return ChatCompletion.construct(**value)


def _check(value: Any) -> None:
    _object(value, "answer")
    if not isinstance(value.get("choices"), list):
        raise InvalidArgument.field("answer.choices", "not a list")
    for index, choice in enumerate(value["choices"]):
        where = f"answer.choices[{index}]"
        _message(_object(_object(choice, where).get("message"), f"{where}.message"), f"{where}.message")
    usage = value.get("usage")
    if usage is not None:
        for name in ("prompt_tokens", "completion_tokens"):
            if not isinstance(_object(usage, "answer.usage").get(name, 0), int):
                raise InvalidArgument.field(f"answer.usage.{name}", "not a whole number")


def _message(message: dict[str, Any], where: str) -> None:
    for name in ("content", "refusal"):
        if not isinstance(message.get(name), str | None):
            raise InvalidArgument.field(f"{where}.{name}", "neither text nor null")
    calls = message.get("tool_calls")
    if calls is None:
        return
    if not isinstance(calls, list):
        raise InvalidArgument.field(f"{where}.tool_calls", "not a list")
    for index, call in enumerate(calls):
        _call(_object(call, f"{where}.tool_calls[{index}]"), f"{where}.tool_calls[{index}]")


def _call(call: dict[str, Any], where: str) -> None:
    """A function call (name, arguments) or a custom tool's (name, input), with its id."""
    kind = call.get("type")
    if kind not in _CALL_FIELDS or not isinstance(call.get("id"), str):
        raise InvalidArgument.field(where, "neither a function's nor a custom tool's call with an id")
    body = _object(call.get(kind), f"{where}.{kind}")
    for name in _CALL_FIELDS[kind]:
        if not isinstance(body.get(name), str):
            raise InvalidArgument.field(f"{where}.{kind}.{name}", "not text")


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidArgument.field(where, "not an object")
    return value
