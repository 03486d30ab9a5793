"""Tools by name: each a function, its description (the docstring) and its arguments' JSON
schema, made by the MCP SDK from the function's signature, so the gateway's MCP server and
the advisor's LLM see the same tool the same way.

    catalog = ToolCatalog([tools.order_book_top, tools.positions, ...])
    catalog.specs()                                  # (name, description, parameters) each
    await catalog.call("positions", {"venue": "sim"})  # arguments checked against the schema

A call with arguments that do not fit the schema raises InvalidArgument naming the argument.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from mcp.server.mcpserver.utilities.func_metadata import FuncMetadata, func_metadata
from pydantic import ValidationError

from trademesh.core.platform.errors import FieldViolation, InvalidArgument, NotFound, shown

__all__ = ["Tool", "ToolCatalog", "ToolFunction"]

ToolFunction = Callable[..., Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    parameters: Mapping[str, Any]  # a JSON schema of an object
    function: ToolFunction
    meta: FuncMetadata


def _tool(function: ToolFunction) -> Tool:
    meta = func_metadata(function)
    schema = meta.arg_model.model_json_schema(by_alias=True)
    name = function.__name__
    return Tool(name, inspect.cleandoc(function.__doc__ or ""), schema, function, meta)


class ToolCatalog:
    def __init__(self, functions: Iterable[ToolFunction]) -> None:
        self.tools: dict[str, Tool] = {}
        for function in functions:
            tool = _tool(function)
            self.tools[tool.name] = tool

    def names(self) -> list[str]:
        return list(self.tools)

    def specs(self) -> list[tuple[str, str, Mapping[str, Any]]]:
        return [(t.name, t.description, t.parameters) for t in self.tools.values()]

    async def call(self, name: str, arguments: Mapping[str, Any]) -> dict[str, Any]:
        tool = self.tools.get(name)
        if tool is None:
            raise NotFound(f"no tool {shown(name)}; tools: {', '.join(self.tools)}")
        try:
            checked = tool.meta.validate_arguments(dict(arguments))
        except ValidationError as exc:
            raise InvalidArgument([_violation(error) for error in exc.errors()]) from None
        result: dict[str, Any] = await tool.function(**checked)
        return result


def _violation(error: Any) -> FieldViolation:
    where = ".".join(str(part) for part in error.get("loc", ())) or "arguments"
    return FieldViolation(where, str(error.get("msg", "is not valid")))
