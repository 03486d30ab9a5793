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
`remove = ["loss.max_drawdown"]`. The journal holds complete sets (trademesh.core.inspector.engine.
policy_dump), read by `load_policies` (a key left out is off), so a journal written before
replays the same. The sections and keys are PolicySet's, read by trademesh.core.platform.config.schema:
an unknown section or key, or a value of the wrong type or out of range, is InvalidArgument
naming it ("loss.max_drawdown") and the file when there is one, every one at once. Pure: the
caller reads the file and names it.
"""

from __future__ import annotations

import dataclasses
import re
import typing
from dataclasses import dataclass
from typing import Any

from trademesh.core.inspector.engine.policies import PolicySet, Window
from trademesh.core.platform.config.file import parse_toml
from trademesh.core.platform.config.schema import Reading
from trademesh.core.platform.config.schema.words import not_a, unknown_key
from trademesh.core.platform.errors import InvalidArgument, shown

__all__ = ["REMOVE", "PolicyUpdate", "load_policies", "parse_window", "read_policies"]

# The top-level key listing the limits a file turns off: `remove = ["loss.max_drawdown"]`.
REMOVE = "remove"

_WINDOW = re.compile(r"(\d\d):(\d\d)-(\d\d):(\d\d)")


def parse_window(where: str, raw: Any) -> Window:
    """ "HH:MM-HH:MM" (end excluded; "24:00" ends at midnight) as a Window."""
    if not isinstance(raw, str):
        raise InvalidArgument.field(where, not_a(raw, "a string"))
    match = _WINDOW.fullmatch(raw)
    if match is None:
        raise InvalidArgument.field(where, f"{shown(raw)} is not HH:MM-HH:MM")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if m1 > 59 or m2 > 59 or not 0 <= start < end <= 24 * 60:
        raise InvalidArgument.field(where, f"{shown(raw)} is not a window within one day")
    return Window(start, end)


def _reading(source: str | None) -> Reading:
    # A schedule's windows are "HH:MM-HH:MM" in the file: the one type no marker reads.
    return Reading(source, readers={Window: lambda raw, path: parse_window(path, raw)})


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


def _removals(raw: Any, given: dict[str, Any], reading: Reading) -> dict[str, set[str]]:
    """`remove = ["section.key", ...]`: the keys to turn off, by section."""
    if not isinstance(raw, list) or not all(isinstance(k, str) for k in raw):
        reading.refuse(REMOVE, 'is not a list of "section.key" names')
        return {}
    hints = typing.get_type_hints(PolicySet)
    found: dict[str, set[str]] = {}
    for index, dotted in enumerate(raw):
        where = f"{REMOVE}[{index}]"
        name, _, key = dotted.partition(".")
        cls = hints.get(name)
        if cls is None or key not in {f.name for f in dataclasses.fields(cls)}:
            reading.refuse(where, f"{shown(dotted)} is not a policy key (section.key)")
        elif _off(cls, key) is _NO_OFF:
            reading.refuse(where, f"{dotted} cannot be turned off: give it a value")
        elif isinstance(given.get(name), dict) and key in given[name]:
            reading.refuse(where, f"{dotted} is both set and removed")
        else:
            found.setdefault(name, set()).add(key)
    return found


def read_policies(text: str, base: PolicySet, source: str | None = None) -> PolicyUpdate:
    """A policy file (`source`: its name, for errors) over `base`: each key it gives replaces
    base's; each key it leaves out keeps base's; each key named in its top-level `remove = [...]`
    is turned off. The set is checked as a whole: every bad key is named at once, and nothing of
    it applies unless all is good."""
    raw = parse_toml(text, "policies", source or "the policy set")
    reading = _reading(source)
    removed = _removals(raw.pop(REMOVE), raw, reading) if REMOVE in raw else {}
    hints = typing.get_type_hints(PolicySet)
    for name in raw:
        if name not in hints:
            reading.refuse(name, unknown_key([*PolicySet.section_names(), REMOVE]))
    sections: dict[str, Any] = {}
    for name, cls in hints.items():
        values = {f.name: getattr(getattr(base, name), f.name) for f in dataclasses.fields(cls)}
        values.update({key: _off(cls, key) for key in removed.get(name, ())})
        if name in raw:
            values.update(reading.values(cls, raw[name], name) or {})
        sections[name] = reading.make(cls, values, name)
    reading.done()
    dropped = tuple(sorted(f"{name}.{key}" for name, keys in removed.items() for key in keys))
    return PolicyUpdate(PolicySet(**sections), dropped)


def load_policies(text: str, source: str | None = None) -> PolicySet:
    """A complete policy set's text (the journal's form, trademesh.core.inspector.engine.policy_dump): a
    key left out is off. An operator's file is read over the shipped set instead
    (`read_policies`)."""
    return read_policies(text, PolicySet(), source).policies
