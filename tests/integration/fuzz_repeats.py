"""Requests naming one value thousands of times (issue 57, item 8): a good request (a seed, or
the empty one) with one repeated field at a time (or one in the first message of a list) holding
a single value REPEATS times: the seed's own first value or message when it has one, else a real
value of the field's kind. StartBacktest naming one strategy 10,000 times kept the backtest hub
from answering anything for minutes; these are sent every run, and the oracle is that each is
refused cleanly or answered while the service keeps answering others (tests.integration.test_fuzz).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor

from tests.integration.fuzz_pools import Pools
from tests.integration.fuzz_support import Method, refresh_ids

__all__ = ["REPEATS", "repeated_bodies"]

# Within the edge's MAX_ITEMS (10,000): the repeats reach the handler, or its own bound.
REPEATS = 5_000
_MAX_DEPTH = 2
_MESSAGE = FieldDescriptor.TYPE_MESSAGE


def repeated_bodies(method: Method, pools: Pools) -> list[bytes]:
    """The method's requests with one repeated field at a time holding one value REPEATS times."""
    descriptor = method.descriptor.input_type
    cls = message_factory.GetMessageClass(descriptor)
    seeds = pools.seeds.get(descriptor.full_name, [])
    base = cls.FromString(seeds[0]) if seeds else cls()
    found = []
    for path in _lists(descriptor, 0):
        request = cls()
        request.CopyFrom(base)
        refresh_ids(request, lambda: uuid.uuid4().hex)
        _repeat(request, path, pools)
        found.append(request.SerializeToString())
    return found


def _lists(descriptor: Descriptor, depth: int) -> Iterator[list[FieldDescriptor]]:
    """The path to every repeated field (maps aside), nested ones to _MAX_DEPTH."""
    for field in descriptor.fields:
        entry = field.message_type
        if entry is not None and entry.GetOptions().map_entry:
            continue
        if field.is_repeated:
            yield [field]
        if field.type == _MESSAGE and entry is not None and depth < _MAX_DEPTH:
            for path in _lists(entry, depth + 1):
                yield [field, *path]


def _repeat(message: Any, path: list[FieldDescriptor], pools: Pools) -> None:
    for field in path[:-1]:
        held = getattr(message, field.name)
        if field.is_repeated:  # a list of messages: its first (the seed's, or a new one)
            held = held[0] if len(held) else held.add()
        message = held
    field = path[-1]
    values = getattr(message, field.name)
    if field.type == _MESSAGE:
        one = values[0] if len(values) else values.add()
        copies = [type(one).FromString(one.SerializeToString()) for _ in range(REPEATS)]
        del values[:]
        values.extend(copies)
        return
    one = values[0] if len(values) else _real_value(field, pools)
    del values[:]
    values.extend([one] * REPEATS)


def _real_value(field: FieldDescriptor, pools: Pools) -> Any:
    if field.type == FieldDescriptor.TYPE_STRING:
        for name in (field.name, field.name.rstrip("s")):
            real = pools._real(name)  # the pools' own values of a field of that name
            if real:
                return real[0]
        return "x"
    if field.type == FieldDescriptor.TYPE_ENUM:
        kind = field.enum_type
        numbers = [] if kind is None else [v.number for v in kind.values if v.number]
        return numbers[0] if numbers else 0
    if field.type == FieldDescriptor.TYPE_BOOL:
        return True
    if field.type in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        return 1.0
    return 1
