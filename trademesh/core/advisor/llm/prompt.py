"""The request a synthesis sends: instructions, the context as JSON, the answer's JSON schema."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from openai.types.chat import ChatCompletionMessageParam
from openai.types.chat.completion_create_params import ResponseFormat

from trademesh.core.platform.errors import InvalidArgument

__all__ = ["INSTRUCTIONS", "SCHEMA_NAME", "context_json", "first_messages", "response_format"]

SCHEMA_NAME = "advisor_answer"

INSTRUCTIONS = (
    "You review one trading signal for the trademesh advisor. The user message is a JSON "
    "object: the signal, the market around it and the scores of the earlier stages. Answer "
    "with one JSON object that follows the given schema and nothing else. Quote only numbers "
    "that appear in the context or in a tool's result; never invent one. If your bias differs "
    "from the signal's direction, say why in the reasoning. You may call the tools for more "
    "context, sparingly."
)


def context_json(context: Mapping[str, Any]) -> str:
    """The context as compact JSON with sorted keys (Decimals as their strings); InvalidArgument
    when it holds something JSON cannot carry."""
    try:
        return json.dumps(context, sort_keys=True, separators=(",", ":"), default=_text, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidArgument.field("context", f"not JSON-serialisable: {exc}") from exc


def _text(value: object) -> str:
    from decimal import Decimal

    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def first_messages(context: Mapping[str, Any], instructions: str) -> list[ChatCompletionMessageParam]:
    return [
        {"role": "system", "content": instructions},
        {"role": "user", "content": context_json(context)},
    ]


def response_format(schema: Mapping[str, Any]) -> ResponseFormat:
    """response_format asking for JSON that follows `schema` (an object schema)."""
    if schema.get("type") != "object" or not isinstance(schema.get("properties"), Mapping):
        raise InvalidArgument.field("schema", "must be a JSON schema of an object with properties")
    return {
        "type": "json_schema",
        "json_schema": {"name": SCHEMA_NAME, "schema": dict(schema), "strict": True},
    }
