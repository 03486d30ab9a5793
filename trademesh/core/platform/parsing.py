"""JSON and TOML from outside (a request, a file, another service's answer): parsed with their
nesting bounded, or one InvalidArgument naming what they were.

Python's json and tomllib recurse once per level: text nested a few thousand levels deep (4 KiB
of "[") raised RecursionError, which no caller expected, and whatever walked such a value next
(a traceback's formatting, a validator, a log line) could blow the stack again. So the depth is
measured first, on the text, by a scan that recurses nowhere, and deep text never reaches the
parser. Every place where outside JSON or TOML enters parses it here.

JSON's escapes can also carry a lone surrogate ("\\ud800"), which Python keeps in the string but
UTF-8 (a log file, an HTTP body, PostgreSQL) cannot encode: loads_json turns each into U+FFFD.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Callable
from typing import Any

from trademesh.core.platform.errors import InvalidArgument
from trademesh.core.platform.text import REPLACEMENT

__all__ = ["MAX_DEPTH", "depth_of", "loads_json", "loads_toml", "text_depth"]

# Deeper than any document of ours or any answer we read (an LLM's, Alertmanager's, the Bot
# API's: a few levels), far below where the parsers recurse out of stack (about 1,000).
MAX_DEPTH = 64

_JSON_SKIPPED = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
# TOML's four kinds of string (longest first) and its comments: brackets in them are text.
_TOML_SKIPPED = re.compile(
    r'"""(?:[^\\]|\\.)*?"""|\'\'\'.*?\'\'\'|"[^"\\\n]*(?:\\.[^"\\\n]*)*"|\'[^\'\n]*\'|#[^\n]*', re.DOTALL
)
_BRACKETS = re.compile(r"[\[\]{}]")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def text_depth(text: str, skipped: re.Pattern[str] = _JSON_SKIPPED) -> int:
    """How deep the brackets and braces of `text` nest, outside what `skipped` matches (its
    strings). An unterminated string is scanned as text: never less deep than the parser sees."""
    depth = deepest = 0
    for found in _BRACKETS.finditer(skipped.sub("", text)):
        if found[0] in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth = max(0, depth - 1)
    return deepest


def depth_of(value: Any) -> int:
    """How deep a parsed value nests (a scalar 0, [] 1), measured without recursion."""
    deepest, todo = 0, [(value, 0)]
    while todo:
        item, depth = todo.pop()
        if isinstance(item, dict):
            todo += [(v, depth + 1) for v in item.values()]
        elif isinstance(item, list):
            todo += [(v, depth + 1) for v in item]
        else:
            continue
        deepest = max(deepest, depth + 1)
    return deepest


def loads_json(
    text: str | bytes,
    what: str,
    *,
    max_depth: int = MAX_DEPTH,
    max_bytes: int | None = None,
    parse_float: Callable[[str], Any] | None = None,
) -> Any:
    """The JSON value in `text`, its lone surrogates as U+FFFD; InvalidArgument naming `what`
    when it is longer than `max_bytes`, not UTF-8, nested deeper than `max_depth`, or not JSON."""
    if max_bytes is not None and len(text) > max_bytes:
        raise InvalidArgument.field(what, f"larger than {max_bytes} bytes")
    if isinstance(text, bytes):
        text = _utf8(text, what)
    _bounded(text_depth(text), what, max_depth)
    try:
        value = json.loads(text, parse_float=parse_float)
    except ValueError as exc:
        raise InvalidArgument.field(what, f"not JSON: {exc}") from None
    carries = _SURROGATE_ESCAPE.search(text) or _SURROGATE.search(text)  # escaped, or in a str given
    return value if carries is None else _without_surrogates(value)


def loads_toml(text: str, what: str, source: str, *, max_depth: int = MAX_DEPTH) -> dict[str, Any]:
    """The TOML table in `text` (from `source`, for the error); InvalidArgument naming `what`
    when it is not TOML or nests deeper than `max_depth` (arrays, inline tables, dotted keys
    and table headers alike)."""
    _bounded(text_depth(text, _TOML_SKIPPED), what, max_depth, source)
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidArgument.field(what, f"{source}: not valid TOML: {exc}") from None
    _bounded(depth_of(table) - 1, what, max_depth, source)  # the document's own table is no level
    return table


def _bounded(depth: int, what: str, max_depth: int, source: str = "") -> None:
    if depth > max_depth:
        where = f"{source}: " if source else ""
        raise InvalidArgument.field(what, f"{where}nested deeper than {max_depth} levels")


def _utf8(data: bytes, what: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidArgument.field(what, f"not UTF-8 text (byte at offset {exc.start})") from None


def _without_surrogates(value: Any) -> Any:
    # The depth is bounded, so this recursion is too.
    if isinstance(value, str):
        return _SURROGATE.sub(REPLACEMENT, value)
    if isinstance(value, dict):
        return {_SURROGATE.sub(REPLACEMENT, k): _without_surrogates(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_surrogates(v) for v in value]
    return value
