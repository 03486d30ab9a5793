"""The edges of every request, sent every run: a good request (a seed, or the empty one) with one
field at a time (or a field of the first message of a list) set to each edge value of its kind,
whatever hypothesis draws besides. Text gets
a NUL (PostgreSQL cannot store it), a lone surrogate and 100,000 characters; a venue a name nobody
serves, a symbol one no venue lists; a decimal NaN, Infinity and -1e30; an integer the ends of its
range and 0 (INT64_MAX and INT64_MIN for every time); an enum a value it does not have.

The random fuzz meets each of these now and then; the defects they found (a store wedged by a
NUL, INTERNAL for an until_ns of INT64_MAX, an intent allowed with conviction NaN) must be met
every run.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor

from tests.integration.fuzz_pools import (
    DECIMAL_FIELDS,
    INT64_MAX,
    INT64_MIN,
    SURROGATE_MARK,
    Pools,
    with_lone_surrogates,
)
from tests.integration.fuzz_support import Method, refresh_ids

__all__ = ["edge_bodies"]

_TEXT = ("a\x00b", f"a{SURROGATE_MARK}b", "x" * 100_000)
_BY_NAME = {"venue": ("nope",), "symbol": ("DOGE/USDT",)}
_DECIMAL = ("NaN", "Infinity", "-1e30")
_INTEGERS = {
    FieldDescriptor.TYPE_INT64: (INT64_MAX, INT64_MIN, 0),
    FieldDescriptor.TYPE_SINT64: (INT64_MAX, INT64_MIN, 0),
    FieldDescriptor.TYPE_SFIXED64: (INT64_MAX, INT64_MIN, 0),
    FieldDescriptor.TYPE_UINT64: (2**64 - 1, 0),
    FieldDescriptor.TYPE_FIXED64: (2**64 - 1, 0),
    FieldDescriptor.TYPE_INT32: (2**31 - 1, -(2**31), 0),
    FieldDescriptor.TYPE_SINT32: (2**31 - 1, -(2**31), 0),
    FieldDescriptor.TYPE_SFIXED32: (2**31 - 1, -(2**31), 0),
    FieldDescriptor.TYPE_UINT32: (2**32 - 1, 0),
    FieldDescriptor.TYPE_FIXED32: (2**32 - 1, 0),
}
_UNKNOWN_ENUM = 99
_MAX_DEPTH = 2


def edge_bodies(method: Method, pools: Pools) -> list[bytes]:
    """The method's edge requests: its first seed (or the empty request) with one field at a time
    set to each of its edge values, in it or in a message it holds."""
    descriptor = method.descriptor.input_type
    cls = message_factory.GetMessageClass(descriptor)
    seeds = pools.seeds.get(descriptor.full_name, [])
    base = cls.FromString(seeds[0]) if seeds else cls()
    found = []
    for path, value in _edges(descriptor, 0):
        request = cls()
        request.CopyFrom(base)
        refresh_ids(request, lambda: uuid.uuid4().hex)
        _set(request, path, value)
        found.append(with_lone_surrogates(request.SerializeToString()))
    return found


def _edges(descriptor: Descriptor, depth: int) -> Iterator[tuple[list[FieldDescriptor], Any]]:
    """(the path to a field, an edge value of it) for every field, nested ones to _MAX_DEPTH."""
    for field in descriptor.fields:
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            entry = field.message_type
            if entry is None or entry.GetOptions().map_entry or depth >= _MAX_DEPTH:
                continue
            for path, value in _edges(entry, depth + 1):
                yield [field, *path], value
            continue
        for value in _values(field):
            yield [field], value


def _values(field: FieldDescriptor) -> tuple[Any, ...]:
    if field.type == FieldDescriptor.TYPE_STRING:
        name = field.name.rstrip("s") if field.is_repeated else field.name
        if name in DECIMAL_FIELDS:
            return _DECIMAL + _TEXT[:1]
        return _BY_NAME.get(name, ()) + _TEXT
    if field.type == FieldDescriptor.TYPE_ENUM:
        return (_UNKNOWN_ENUM,)
    if field.type in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        return (float("nan"), float("inf"), -1e30)
    return _INTEGERS.get(field.type, ())


def _set(message: Any, path: list[FieldDescriptor], value: Any) -> None:
    for field in path[:-1]:
        held = getattr(message, field.name)
        if field.is_repeated:  # a list of messages: its first (the seed's, or a new one)
            held = held[0] if len(held) else held.add()
        message = held
    field = path[-1]
    if field.is_repeated:
        target = getattr(message, field.name)
        del target[:]
        target.append(value)
    else:
        setattr(message, field.name, value)
