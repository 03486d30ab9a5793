"""Tools the model may call for more context, run through the caller's executor, bounded.

The shell passes the gateway's MCP tool functions (one implementation serves both); here a
tool is its name, description and JSON-schema parameters, and an executor runs it by name.
A tool's failure, an unknown name or bad arguments become an error result the model reads,
not an error of the synthesis.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from openai.types.chat import ChatCompletionFunctionToolParam, ChatCompletionToolMessageParam

from trademesh.core.advisor.llm.config import Secret
from trademesh.core.advisor.llm.failures import clean
from trademesh.core.platform.errors import InvalidArgument
from trademesh.core.platform.parsing import loads_json

__all__ = ["ToolCallRecord", "ToolExecutor", "ToolSpec", "refusal", "run_tool"]

# (tool name, arguments) -> a JSON-serialisable result (or text).
ToolExecutor = Callable[[str, Mapping[str, Any]], Awaitable[Any]]


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str
    # A JSON schema of an object: the tool's arguments.
    parameters: Mapping[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})

    def param(self) -> ChatCompletionFunctionToolParam:
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": dict(self.parameters),
            },
        }


@dataclass(frozen=True)
class ToolCallRecord:
    """One tool call of a synthesis: what was asked, how much came back, and what the model read
    of it (`content`: the result cut to max_tool_result_chars, or the error as JSON), which the
    core grounds the answer's numbers on."""

    model: str
    name: str
    arguments: Mapping[str, Any]
    result_chars: int
    ok: bool
    error: str = ""
    content: str = ""


def _arguments(text: str) -> Mapping[str, Any] | None:
    try:
        value = loads_json(text or "{}", "arguments")
    except InvalidArgument:  # not JSON, or nested past the bound: a call refused, not a crash
        return None
    return value if isinstance(value, dict) else None


def _result_text(result: Any) -> str:
    return result if isinstance(result, str) else json.dumps(result, sort_keys=True, default=str)


async def _execute(
    execute: ToolExecutor, name: str, arguments: Mapping[str, Any], timeout_s: float, secret: Secret | None
) -> tuple[str, str]:
    """(result text, error) of one call; error is "" when it succeeded."""
    try:
        async with asyncio.timeout(timeout_s):
            return _result_text(await execute(name, arguments)), ""
    except TimeoutError:
        return "", f"no result within {timeout_s} s"
    except Exception as exc:  # any tool's failure is the model's to read, not ours to raise
        return "", clean(f"{type(exc).__name__}: {exc}", secret)


async def run_tool(
    call_id: str,
    name: str,
    arguments_text: str,
    *,
    model: str,
    known: Mapping[str, ToolSpec],
    execute: ToolExecutor,
    timeout_s: float,
    max_result_chars: int,
    secret: Secret | None,
) -> tuple[ChatCompletionToolMessageParam, ToolCallRecord]:
    """Run one tool call: the tool message for the conversation and its record."""
    arguments = _arguments(arguments_text)
    if name not in known:
        text, error = "", f"unknown tool {name[:64]!r}"
    elif arguments is None:
        text, error = "", "the arguments are not a JSON object"
    else:
        text, error = await _execute(execute, name, arguments, timeout_s, secret)
    content = json.dumps({"error": error}) if error else text[:max_result_chars]
    record = ToolCallRecord(model, name[:64], arguments or {}, len(text), not error, error, content)
    return {"role": "tool", "tool_call_id": call_id, "content": content}, record


def refusal(call_id: str) -> ChatCompletionToolMessageParam:
    """The answer to a tool call past the limit."""
    return {
        "role": "tool",
        "tool_call_id": call_id,
        "content": json.dumps({"error": "tool call limit reached; answer now"}),
    }
