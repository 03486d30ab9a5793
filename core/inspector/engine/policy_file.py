"""The policies file: TOML text to a PolicySet, one table per section (docs/inspector.md):

    [position]
    max_size = "2"                       # decimals as strings (or numbers), exact
    [position.symbols."BTC/USDT"]
    max_notional = "50000"
    [schedule]
    timezone = "Europe/Berlin"
    windows = { mon = ["08:00-12:00", "13:00-17:30"] }

An operator's file is read over the shipped set (`read_policies(text, base)`): a key it leaves
out keeps the shipped value, and a limit is turned off only by naming it in a top-level
`remove = ["loss.max_drawdown"]`. The journal holds complete sets (core.inspector.engine.
policy_dump), read by `load_policies` (a key left out is off), so a journal written before
replays the same. An unknown section or key, or a value of the wrong type or out of range, is
InvalidArgument naming it ("loss.max_drawdown"), every one at once. Pure: the caller reads the
file.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from core.foundations.config_file import parse_toml
from core.foundations.errors import FieldViolation, InvalidArgument, shown
from core.inspector.engine.policies import PolicySet, SymbolLimit, Window

__all__ = ["REMOVE", "PolicyUpdate", "load_policies", "parse_window", "read_policies"]

# The top-level key listing the limits a file turns off: `remove = ["loss.max_drawdown"]`.
REMOVE = "remove"

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
    """A section (or a symbol's limits) from its table alone: what is not given is off."""
    bad: list[FieldViolation] = []
    values = _given(name, cls, raw, bad)
    section = _made(cls, values, bad)
    if bad:
        raise InvalidArgument(bad)
    return section


def _given(name: str, cls: Any, raw: Any, bad: list[FieldViolation]) -> dict[str, Any]:
    """The table's values by key, each checked for its type; what is wrong is added to `bad`."""
    hints = typing.get_type_hints(cls)
    known = sorted(f.name for f in dataclasses.fields(cls))
    values = {}
    try:
        table = _table(name, raw)
    except InvalidArgument as exc:
        bad.extend(exc.violations)
        return {}
    for key, value in table.items():
        where = f"{name}.{key}"
        try:
            if key not in hints:
                raise InvalidArgument.field(where, f"unknown key; known: {', '.join(known)}")
            nested = _NESTED.get(where) if cls is not SymbolLimit else None
            values[key] = nested(where, value) if nested is not None else _scalar(where, hints[key], value)
        except InvalidArgument as exc:
            bad.extend(exc.violations)
    return values


def _made(cls: Any, values: dict[str, Any], bad: list[FieldViolation]) -> Any:
    """The section of `values`, its ranges checked (None, with the violations in `bad`)."""
    try:
        return cls(**values)
    except InvalidArgument as exc:
        bad.extend(exc.violations)
        return None


def _off(cls: Any, key: str) -> Any:
    """The value that turns a section's key off (no limit), or _NO_OFF when it has none."""
    default = next(f for f in dataclasses.fields(cls) if f.name == key)
    if default.default_factory is not dataclasses.MISSING:
        return default.default_factory()  # an empty table: no symbol limits, windows, reservations
    return default.default if default.default in (None, 0) else _NO_OFF


_NO_OFF = object()


@dataclass(frozen=True)
class PolicyUpdate:
    """A policy file read over a base set: the set it makes, and the keys it turned off."""

    policies: PolicySet
    removed: tuple[str, ...] = ()


def _toml(text: str) -> dict[str, Any]:
    return parse_toml(text, "policies", "the policy set")


def _removals(raw: Any, given: dict[str, Any], bad: list[FieldViolation]) -> dict[str, set[str]]:
    """`remove = ["section.key", ...]`: the keys to turn off, by section."""
    if not isinstance(raw, list) or not all(isinstance(k, str) for k in raw):
        bad.append(FieldViolation(REMOVE, 'is not a list of "section.key" names'))
        return {}
    hints = typing.get_type_hints(PolicySet)
    found: dict[str, set[str]] = {}
    for index, dotted in enumerate(raw):
        where = f"{REMOVE}[{index}]"
        name, _, key = dotted.partition(".")
        cls = hints.get(name)
        if cls is None or key not in {f.name for f in dataclasses.fields(cls)}:
            bad.append(FieldViolation(where, f"{shown(dotted)} is not a policy key (section.key)"))
        elif _off(cls, key) is _NO_OFF:
            bad.append(FieldViolation(where, f"{dotted} cannot be turned off: give it a value"))
        elif isinstance(given.get(name), dict) and key in given[name]:
            bad.append(FieldViolation(where, f"{dotted} is both set and removed"))
        else:
            found.setdefault(name, set()).add(key)
    return found


def read_policies(text: str, base: PolicySet) -> PolicyUpdate:
    """A policy file over `base`: each key it gives replaces base's; each key it leaves out keeps
    base's; each key named in its top-level `remove = [...]` is turned off. The set is checked
    as a whole: every bad key is named at once, and nothing of it applies unless all is good."""
    raw = _toml(text)
    bad: list[FieldViolation] = []
    removed = _removals(raw.pop(REMOVE), raw, bad) if REMOVE in raw else {}
    hints = typing.get_type_hints(PolicySet)
    sections = {}
    for name in raw:
        if name not in hints:
            known = ", ".join(PolicySet.section_names())
            bad.append(FieldViolation(name, f"unknown section; sections: {known}; or {REMOVE} = [...]"))
    for name, cls in hints.items():
        values = {f.name: getattr(getattr(base, name), f.name) for f in dataclasses.fields(cls)}
        values.update({key: _off(cls, key) for key in removed.get(name, ())})
        if name in raw:
            values.update(_given(name, cls, raw[name], bad))
        sections[name] = _made(cls, values, bad)
    if bad:
        raise InvalidArgument(bad)
    dropped = tuple(sorted(f"{name}.{key}" for name, keys in removed.items() for key in keys))
    return PolicyUpdate(PolicySet(**sections), dropped)


def load_policies(text: str) -> PolicySet:
    """A complete policy set's text (the journal's form, core.inspector.engine.policy_dump): a
    key left out is off. An operator's file is read over the shipped set instead
    (`read_policies`)."""
    return read_policies(text, PolicySet()).policies
