"""The policies file: TOML text to a PolicySet, one table per section (docs/inspector.md):

    [position]
    max_size = "2"                       # decimals as strings (or numbers), exact
    [position.symbols."BTC/USDT"]
    max_notional = "50000"
    [schedule]
    timezone = "Europe/Berlin"
    windows = { mon = ["08:00-12:00", "13:00-17:30"] }

An unknown section or key, or a value of the wrong type or out of range, is InvalidArgument
naming it ("loss.max_drawdown"). Pure: the caller reads the file.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
import types
import typing
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from core.errors import InvalidArgument, shown
from core.inspector.engine.policies import PolicySet, SymbolLimit, Window

__all__ = ["load_policies", "parse_window"]

_WINDOW = re.compile(r"(\d\d):(\d\d)-(\d\d):(\d\d)")


def _decimal(where: str, raw: Any) -> Decimal:
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        raise InvalidArgument.field(where, f"{raw!r} is not a decimal")
    try:
        value = Decimal(raw if isinstance(raw, str) else repr(raw))
    except InvalidOperation:
        raise InvalidArgument.field(where, f"{shown(str(raw))} is not a decimal") from None
    if not value.is_finite():
        raise InvalidArgument.field(where, f"{shown(str(raw))} is not a finite decimal")
    return value


def _int(where: str, raw: Any) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise InvalidArgument.field(where, f"{raw!r} is not a whole number")
    return raw


def _str(where: str, raw: Any) -> str:
    if not isinstance(raw, str):
        raise InvalidArgument.field(where, f"{raw!r} is not a string")
    return raw


def _table(where: str, raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise InvalidArgument.field(where, f"{shown(str(raw))} is not a table")
    return raw


def parse_window(where: str, raw: Any) -> Window:
    """ "HH:MM-HH:MM" (end excluded; "24:00" ends at midnight) as a Window."""
    match = _WINDOW.fullmatch(_str(where, raw))
    if match is None:
        raise InvalidArgument.field(where, f"{shown(raw)} is not HH:MM-HH:MM")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if m1 > 59 or m2 > 59 or not 0 <= start < end <= 24 * 60:
        raise InvalidArgument.field(where, f"{shown(raw)} is not a window within one day")
    return Window(start, end)


def _windows(where: str, raw: Any) -> dict[str, tuple[Window, ...]]:
    out = {}
    for day, spans in _table(where, raw).items():
        if not isinstance(spans, list):
            raise InvalidArgument.field(f"{where}.{day}", f"{spans!r} is not a list of windows")
        out[day] = tuple(parse_window(f"{where}.{day}", span) for span in spans)
    return out


def _symbols(where: str, raw: Any) -> dict[str, SymbolLimit]:
    return {sym: _section(f"{where}.{sym}", SymbolLimit, table) for sym, table in _table(where, raw).items()}


def _reserved(where: str, raw: Any) -> dict[str, Decimal]:
    return {name: _decimal(f"{where}.{name}", value) for name, value in _table(where, raw).items()}


# Keys whose value is a nested table, by "section.key".
_NESTED: dict[str, Callable[[str, Any], Any]] = {
    "position.symbols": _symbols,
    "schedule.windows": _windows,
    "capital.reserved": _reserved,
}


def _scalar(where: str, kind: Any, raw: Any) -> Any:
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        kind = next(k for k in typing.get_args(kind) if k is not type(None))
    if kind is Decimal:
        return _decimal(where, raw)
    if kind is int:
        return _int(where, raw)
    if kind is str:
        return _str(where, raw)
    raise InvalidArgument.field(where, "cannot be set from a file")


def _section(name: str, cls: Any, raw: Any) -> Any:
    hints = typing.get_type_hints(cls)
    known = sorted(f.name for f in dataclasses.fields(cls))
    values = {}
    for key, value in _table(name, raw).items():
        where = f"{name}.{key}"
        if key not in hints:
            raise InvalidArgument.field(where, f"unknown key; known: {', '.join(known)}")
        nested = _NESTED.get(where) if cls is not SymbolLimit else None
        values[key] = nested(where, value) if nested is not None else _scalar(where, hints[key], value)
    return cls(**values)


def load_policies(text: str) -> PolicySet:
    """The policy set of a policies file's text; every section is optional."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidArgument.field("policies", f"not TOML: {exc}") from None
    hints = typing.get_type_hints(PolicySet)
    sections = {}
    for name, table in raw.items():
        if name not in hints:
            known = ", ".join(PolicySet.section_names())
            raise InvalidArgument.field(name, f"unknown section; sections: {known}")
        sections[name] = _section(name, hints[name], table)
    return PolicySet(**sections)
