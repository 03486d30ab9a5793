"""A PolicySet as TOML text, complete: every key that is not off, written so that
`load_policies(dump_policies(p)) == p`. The journal holds policy sets in this form, so a replay
reads the very set the live core had, whatever the shipped defaults are by then."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from decimal import Decimal
from typing import Any

from trademesh.core.inspector.engine.policies import PolicySet, Window

__all__ = ["dump_policies"]

# TOML's basic strings: these must be escaped (the control characters, DEL, the quote, the
# backslash); everything else is written as it is.
_ESCAPES = {'"': '\\"', "\\": "\\\\"}


def _quote(text: str) -> str:
    out = [_ESCAPES.get(c) or (f"\\u{ord(c):04x}" if ord(c) < 0x20 or ord(c) == 0x7F else c) for c in text]
    return '"' + "".join(out) + '"'


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal | str):
        return _quote(str(value))
    if not isinstance(value, int):
        raise TypeError(f"a policy value of type {type(value).__name__}")
    return str(value)


def _windows(windows: Mapping[str, tuple[Window, ...]]) -> str:
    days = ", ".join(
        f"{_quote(day)} = [{', '.join(_quote(str(w)) for w in spans)}]" for day, spans in windows.items()
    )
    return "{ " + days + " }"


def _scalars(section: Any) -> list[str]:
    lines = []
    for f in fields(section):
        value = getattr(section, f.name)
        if value is None or isinstance(value, Mapping):
            continue
        lines.append(f"{f.name} = {_value(value)}")
    return lines


def _section(name: str, section: Any) -> list[str]:
    lines = [f"[{name}]", *_scalars(section)]
    if name == "schedule" and section.windows:
        lines.append(f"windows = {_windows(section.windows)}")
    if name == "capital" and section.reserved:
        pairs = ", ".join(f"{_quote(k)} = {_value(v)}" for k, v in section.reserved.items())
        lines.append(f"reserved = {{ {pairs} }}")
    if name == "position":
        for symbol, limit in section.symbols.items():
            lines += ["", f"[position.symbols.{_quote(symbol)}]", *_scalars(limit)]
    if name == "leverage":
        for symbol, own in section.symbols.items():
            lines += ["", f"[leverage.symbols.{_quote(symbol)}]", *_scalars(own)]
    if name == "account":
        for venue, limit in section.venues.items():
            lines += ["", f"[account.venues.{_quote(venue)}]", *_scalars(limit)]
    return lines


def dump_policies(policies: PolicySet) -> str:
    lines: list[str] = []
    for f in fields(policies):
        lines += [*_section(f.name, getattr(policies, f.name)), ""]
    return "\n".join(lines)
