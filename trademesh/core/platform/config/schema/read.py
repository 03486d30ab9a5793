"""A TOML table read into a config dataclass by its declared keys
(trademesh.core.platform.config.schema.keys).

Every key of a table is read by its field's type and markers: a key the class does not declare is
refused with the keys it does, a value of the wrong type or out of its range with the key's
dotted path (`validation.min_risk_reward`, `venues[0].address`), and every refusal of one file
is collected and raised at once, each naming the file (words.in_file). What the class's own
`__post_init__` refuses is named under the table's path too.

A `Reading` is one file's: `table()` reads a whole table into its class; `values()` and `make()`
split that for a loader that merges tables first (a policy file over the shipped set, a
backtest's flags over its file); `done()` raises what was refused. `load()` does all of it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import math
import typing
from collections.abc import Callable, Collection, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar, cast

from trademesh.core.domain.decimals import MAX_DIGITS
from trademesh.core.platform.config.schema.keys import Label, Parse, Unique, checks, fields_of, mark, split
from trademesh.core.platform.config.schema.words import REQUIRED, in_file, not_a, one_of, quoted, unknown_key
from trademesh.core.platform.errors import FieldViolation, InvalidArgument

__all__ = ["Reader", "Reading", "load", "read_value"]

T = TypeVar("T")
# A reader of one type or key: (the file's value, its path) -> the config's value.
Reader = Callable[[Any, str], Any]


class _Refused(Exception):
    """A value refused where it was read; the reading names its path."""


class _Skip:
    """What a refused value reads as (None is a value: an optional path left empty)."""


_SKIP = _Skip()


class Reading:
    """One file's reading. `source` names the file in every refusal (None: text from no file);
    `readers` read the types a key's type names but no marker can (the policies' Window);
    `texts`: a number may be given as text (a command line's flags, a file written from one);
    `also`: keys of a table another reader of the same file reads (refused by neither)."""

    def __init__(
        self,
        source: str | None = None,
        *,
        readers: Mapping[type, Reader] | None = None,
        texts: bool = False,
        also: Mapping[type, Collection[str]] | None = None,
    ) -> None:
        self.source = source
        self._readers = dict(readers or {})
        self._texts = texts
        self._also = dict(also or {})
        self._bad: list[FieldViolation] = []

    def refuse(self, path: str, what: str) -> None:
        self._bad.append(FieldViolation(path, what))

    def done(self) -> None:
        """InvalidArgument with every refusal, each naming the file; nothing when all was good."""
        bad, self._bad = self._bad, []
        if bad and self.source:
            bad = [FieldViolation(v.field, in_file(v.description, self.source)) for v in bad]
        if bad:
            raise InvalidArgument(bad)

    def table(self, cls: type[T], raw: Any, path: str = "") -> T | None:
        """`raw` as a `cls`; None when refused."""
        values = self.values(cls, raw, path)
        return None if values is None else self.make(cls, values, path)

    def values(self, cls: type, raw: Any, path: str = "") -> dict[str, Any] | None:
        """The values of the keys `raw` gives, by field name, each read and checked; None when any
        was refused (each refusal noted)."""
        if not isinstance(raw, Mapping):
            self.refuse(path, not_a(raw, "a table"))
            return None
        fields = {item.key: item for item in fields_of(cls)}
        passed = tuple(self._also.get(cls, ()))
        values, good = {}, True
        for key, given in raw.items():
            where = join(path, key)
            item = fields.get(key)
            if key in passed:
                continue
            if item is None:
                self.refuse(where, unknown_key([*fields, *passed]))
                good = False
                continue
            value = self._read(item.hint, given, where)
            if value is _SKIP:
                good = False
            else:
                values[item.name] = value
        return values if good else None

    def make(self, cls: type[T], values: Mapping[str, Any], path: str = "") -> T | None:
        """`cls(**values)`, its required keys given; what its own checks refuse is named under
        `path`. None when refused."""
        missing = [item for item in fields_of(cls) if item.required and item.name not in values]
        for item in missing:
            self.refuse(join(path, item.key), REQUIRED)
        if missing:
            return None
        try:
            return cls(**values)
        except InvalidArgument as exc:
            for v in exc.violations:
                self.refuse(_under(path, v.field), v.description)
            return None

    def value(self, hint: Any, raw: Any, path: str) -> Any:
        """One value read as `hint` says; None when refused."""
        value = self._read(hint, raw, path)
        return None if value is _SKIP else value

    # ---- values by type

    def _read(self, hint: Any, raw: Any, path: str) -> Any:
        kind, marks = split(hint)
        parse = mark(marks, Parse)
        value = self._hooked(parse.read, raw, path) if parse else self._typed(kind, marks, raw, path)
        if value is _SKIP or value is None:
            return value
        for check in checks(marks):
            problem = check.problem(value)
            if problem is not None:
                self.refuse(path, problem)
                return _SKIP
        return value

    def _hooked(self, reader: Reader, raw: Any, path: str) -> Any:
        try:
            return reader(raw, path)
        except InvalidArgument as exc:
            for v in exc.violations:
                self.refuse(_within(path, v.field), v.description)
            return _SKIP

    def _typed(self, kind: Any, marks: tuple[object, ...], raw: Any, path: str) -> Any:
        reader = self._readers.get(kind) if isinstance(kind, type) else None
        if reader is not None:
            return self._hooked(reader, raw, path)
        if kind is Any or kind is object:
            return raw
        if dataclasses.is_dataclass(kind):
            made = self.table(cast(type, kind), raw, path)
            return _SKIP if made is None else made
        origin = typing.get_origin(kind)
        if origin in (tuple, frozenset):
            return self._sequence(kind, marks, raw, path)
        if origin in (dict, Mapping):
            return self._mapping(kind, raw, path)
        try:
            return _scalar(kind, raw, self._texts)
        except _Refused as exc:
            self.refuse(path, str(exc))
            return _SKIP

    def _sequence(self, kind: Any, marks: tuple[object, ...], raw: Any, path: str) -> Any:
        item = typing.get_args(kind)[0]
        item_kind = split(item)[0]
        tables = dataclasses.is_dataclass(item_kind) and item_kind not in self._readers
        if self._texts and isinstance(raw, str) and not tables:  # a flag's list: "a,b"
            raw = [part.strip() for part in raw.split(",") if part.strip()]
        if not isinstance(raw, list | tuple):
            kind_of = f"an array of tables ([[{path.rpartition('.')[2]}]])" if tables else "a list"
            self.refuse(path, not_a(raw, kind_of))
            return _SKIP
        label = mark(marks, Label)
        paths = [_item_path(path, i, given, label) if tables else path for i, given in enumerate(raw)]
        values = [self._read(item, given, where) for given, where in zip(raw, paths, strict=True)]
        if any(value is _SKIP for value in values) or not self._unique(values, paths, mark(marks, Unique)):
            return _SKIP
        return frozenset(values) if typing.get_origin(kind) is frozenset else tuple(values)

    def _unique(self, values: list[Any], paths: list[str], unique: Unique | None) -> bool:
        if unique is None:
            return True
        seen, good = set(), True
        for value, where in zip(values, paths, strict=True):
            named = getattr(value, unique.key)
            if named in seen:
                self.refuse(join(where, unique.key), f"{quoted(named)} is listed twice")
                good = False
            seen.add(named)
        return good

    def _mapping(self, kind: Any, raw: Any, path: str) -> Any:
        args = typing.get_args(kind)
        item = args[1] if args else Any
        if not isinstance(raw, Mapping):
            self.refuse(path, not_a(raw, "a table"))
            return _SKIP
        values = {key: self._read(item, given, join(path, key)) for key, given in raw.items()}
        return _SKIP if any(value is _SKIP for value in values.values()) else values


def join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _under(path: str, field: str) -> str:
    """A field a class's own check names (its own key, or already its whole path) under `path`."""
    if not path or field == path or field.startswith((f"{path}.", f"{path}[")):
        return field
    return join(path, field)


def _within(path: str, field: str) -> str:
    """A field a reader names: its path, or one under it; any other name reads as the path."""
    return field if field.startswith((f"{path}.", f"{path}[")) else path


def _item_path(path: str, index: int, given: Any, label: Label | None) -> str:
    name = given.get(label.key) if label is not None and isinstance(given, Mapping) else None
    return f"{path}.{name}" if isinstance(name, str) and name else f"{path}[{index}]"


# ---- scalars


def _scalar(kind: Any, raw: Any, texts: bool) -> Any:
    if kind is bool:
        if isinstance(raw, bool):
            return raw
        raise _Refused(not_a(raw, "true or false"))
    if isinstance(raw, bool) and kind is not str:
        raise _Refused(not_a(raw, _WHAT.get(kind, "a value of its kind")))
    if kind is str:
        if isinstance(raw, str):
            return raw
        raise _Refused(not_a(raw, "a string"))
    if kind is int:
        return _int(raw, texts)
    if kind is float:
        return _float(raw, texts)
    if kind is Decimal:
        return _decimal(raw)
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        try:
            return kind(raw)
        except ValueError:
            raise _Refused(one_of(raw, [str(m.value) for m in kind])) from None
    raise TypeError(f"a config key of type {kind!r} cannot be read from a file")  # a declaration's mistake


_WHAT = {int: "a whole number", float: "a number", Decimal: "a decimal number"}


def _int(raw: Any, texts: bool) -> int:
    if isinstance(raw, int):
        return raw
    if texts and isinstance(raw, str):
        with contextlib.suppress(ValueError):
            return int(raw.strip())
    raise _Refused(not_a(raw, "a whole number"))


def _float(raw: Any, texts: bool) -> float:
    value: float | None = float(raw) if isinstance(raw, int | float) else None
    if value is None and texts and isinstance(raw, str):
        with contextlib.suppress(ValueError):
            value = float(raw)
    if value is None:
        raise _Refused(not_a(raw, "a number"))
    if not math.isfinite(value):
        raise _Refused(not_a(raw, "a finite number"))
    return value


def _decimal(raw: Any) -> Decimal:
    """A decimal from text (exact) or a TOML number (its shortest repr, so 0.1 is 0.1): finite,
    and within MAX_DIGITS digits either side of the point (a ratio or a quotient of two such
    stays exact, and 1e-999999 cannot overflow the checks that divide by it)."""
    if not isinstance(raw, str | int | float):
        raise _Refused(not_a(raw, "a decimal number"))
    text = raw if isinstance(raw, str) else repr(raw)  # quoted as the decimal's text
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise _Refused(not_a(text, "a decimal number")) from None
    if not value.is_finite():
        raise _Refused(not_a(text, "a finite decimal number"))
    if value and (len(value.as_tuple().digits) > MAX_DIGITS or abs(value.adjusted()) > MAX_DIGITS):
        raise _Refused(f"{quoted(text)} has more than {MAX_DIGITS} digits")
    return value


def read_value(hint: Any, raw: Any, path: str, *, texts: bool = False) -> Any:
    """One value read as `hint` says (for a key's own reader, Parse); InvalidArgument naming
    `path` when refused."""
    reading = Reading(texts=texts)
    value = reading._read(hint, raw, path)
    reading.done()
    return value


def load(
    cls: type[T],
    table: Mapping[str, Any],
    source: str | None = None,
    *,
    readers: Mapping[type, Reader] | None = None,
    texts: bool = False,
    also: Mapping[type, Collection[str]] | None = None,
) -> T:
    """`table` as a `cls` (Reading's arguments); InvalidArgument with every refusal, each naming
    the key and `source`."""
    reading = Reading(source, readers=readers, texts=texts, also=also)
    made = reading.table(cls, table)
    reading.done()
    return cast(T, made)
