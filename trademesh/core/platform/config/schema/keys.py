"""A config file's keys, declared on its frozen dataclass: each field is a key, its type says
what the key holds, and `Annotated` markers say what a type cannot:

    tick_interval_ms: Annotated[int, Within(1, 1000)] = 10
    start_ns: Annotated[int, Key("from"), Parse(parse_time)]
    symbols: Annotated[tuple[SymbolSpec, ...], Items(1, 100), Unique("symbol")]

A field without a default is a required key. `fields_of(cls)` is the table the reader
(trademesh.core.platform.config.schema.read) goes by; `check_fields(obj)` holds a config made in code
to the same markers as one read from a file.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from collections.abc import Callable, Sized
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any, Protocol, TypeVar, runtime_checkable

from trademesh.core.platform.config.schema.words import count_out_of_range, not_a, one_of, range_problem
from trademesh.core.platform.errors import FieldViolation, InvalidArgument

__all__ = [
    "NOT_A_KEY",
    "NOT_EMPTY",
    "Above",
    "Check",
    "Field",
    "Items",
    "Key",
    "Label",
    "Matches",
    "OneOf",
    "Parse",
    "Unique",
    "Within",
    "check_fields",
    "checks",
    "fields_of",
    "mark",
    "split",
]

Number = int | float | Decimal
M = TypeVar("M")


@runtime_checkable
class Check(Protocol):
    """A marker that checks a value once it is read: what is wrong with it, or None."""

    def problem(self, value: Any) -> str | None: ...


@dataclass(frozen=True)
class Within:
    """A number from `low` to `high`, both included (None: no bound on that side)."""

    low: Number | None = None
    high: Number | None = None

    def problem(self, value: Any) -> str | None:
        return range_problem(value, self.low, self.high)


@dataclass(frozen=True)
class Above:
    """A number more than `low` (which is out), at most `high` when given."""

    low: Number
    high: Number | None = None

    def problem(self, value: Any) -> str | None:
        return range_problem(value, self.low, self.high, above=True)


@dataclass(frozen=True)
class Items:
    """A list of `low` to `high` items (None: no most)."""

    low: int = 0
    high: int | None = None

    def problem(self, value: Sized) -> str | None:
        count = len(value)
        if count < self.low or (self.high is not None and count > self.high):
            return count_out_of_range(count, self.low or None, self.high)
        return None


@dataclass(frozen=True)
class OneOf:
    """A string that is one of `options`."""

    options: tuple[str, ...]

    def problem(self, value: Any) -> str | None:
        return None if value in self.options else one_of(value, self.options)


@dataclass(frozen=True)
class Matches:
    """A string the regular expression `pattern` matches whole; `what` names what it is."""

    pattern: str
    what: str

    def problem(self, value: Any) -> str | None:
        return None if re.fullmatch(self.pattern, value) else not_a(value, self.what)


class _NotEmpty:
    def problem(self, value: Sized) -> str | None:
        if len(value):
            return None
        return not_a(value, "a non-empty string") if isinstance(value, str) else "must not be empty"


# A string (or list) with something in it.
NOT_EMPTY = _NotEmpty()


@dataclass(frozen=True)
class Parse:
    """The key's own reader, for what its type cannot say: `read(value, path)` gives the field's
    value from the file's, or raises InvalidArgument (its fields under `path`, or any other
    field, which then reads as `path`)."""

    read: Callable[[Any, str], Any]


@dataclass(frozen=True)
class Key:
    """The key's name in the file, where it is not the field's (`from` is not a Python name)."""

    name: str


@dataclass(frozen=True)
class Label:
    """An array of tables whose items are named by their `key` in errors (`modules.fast.type`,
    not `modules[3].type`); an item without it is named by its index."""

    key: str


@dataclass(frozen=True)
class Unique:
    """An array of tables in which no two items have the same `key` (`symbols[1].symbol: 'BTC/USDT'
    is listed twice`)."""

    key: str


class _NotAKey:
    """A field the reader does not read: its loader sets it (a strategy's source file)."""


NOT_A_KEY = _NotAKey()


def split(hint: Any) -> tuple[Any, tuple[object, ...]]:
    """A field's type without Annotated (and without `| None`: TOML has no null, a key given is a
    value), and the Annotated markers."""
    marks: tuple[object, ...] = ()
    if typing.get_origin(hint) is Annotated:
        hint, marks = hint.__origin__, hint.__metadata__
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in args:
        rest = [arg for arg in args if arg is not type(None)]
        if len(rest) == 1:
            inner, more = split(rest[0])
            return inner, (*marks, *more)
    return hint, marks


def mark(marks: tuple[object, ...], kind: type[M]) -> M | None:
    return next((m for m in marks if isinstance(m, kind)), None)


def checks(marks: tuple[object, ...]) -> tuple[Check, ...]:
    return tuple(m for m in marks if isinstance(m, Check))


@dataclass(frozen=True)
class Field:
    """One key of a config class: its field, its name in the file, its type and markers."""

    name: str
    key: str
    hint: Any  # the whole type, markers included
    required: bool

    @property
    def marks(self) -> tuple[object, ...]:
        return split(self.hint)[1]


_FIELDS: dict[type, tuple[Field, ...]] = {}


def fields_of(cls: type) -> tuple[Field, ...]:
    """The keys of a config dataclass, in its fields' order (the order errors list them in);
    worked out once per class (the type hints are evaluated)."""
    found = _FIELDS.get(cls)
    if found is None:
        found = _FIELDS[cls] = _fields(cls)
    return found


def _fields(cls: type) -> tuple[Field, ...]:
    hints = typing.get_type_hints(cls, include_extras=True)
    found = []
    for item in dataclasses.fields(cls):
        marks = split(hints[item.name])[1]
        if not item.init or NOT_A_KEY in marks:
            continue
        key = mark(marks, Key)
        required = item.default is dataclasses.MISSING and item.default_factory is dataclasses.MISSING
        found.append(Field(item.name, key.name if key else item.name, hints[item.name], required))
    return tuple(found)


def check_fields(obj: object) -> None:
    """Hold a config made in code to its fields' markers (a file's are checked as it is read):
    InvalidArgument naming every key out of its range at once."""
    bad = []
    for item in fields_of(type(obj)):
        value = getattr(obj, item.name)
        if value is None:
            continue
        for check in checks(item.marks):
            problem = check.problem(value)
            if problem is not None:
                bad.append(FieldViolation(item.key, problem))
    if bad:
        raise InvalidArgument(bad)
