"""Repeated values of a request's lists dropped at the edge, before any handler sees them.

Every repeated string or enum field of our requests is a set in all but its type: symbols,
venues, channels, kinds, strategies, services, patch ids, screens, states. A value named twice
asks for nothing more, but each handler paid for it again: StartBacktest naming one strategy
10,000 times (within MAX_ITEMS) kept the backtest hub busy for minutes, each name resolved and
built anew. So the edge keeps each value's first occurrence, in order, and the handler gets the
set. Repeated numbers and messages are left as they are: a repeat may mean something there.
"""

from __future__ import annotations

from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

__all__ = ["drop_repeats"]

_SET_LIKE = frozenset({FieldDescriptor.TYPE_STRING, FieldDescriptor.TYPE_ENUM})
_MESSAGE = FieldDescriptor.TYPE_MESSAGE


def drop_repeats(message: Message) -> int:
    """Drops every repeat of a value in `message`'s repeated string and enum fields (nested
    messages included), each value's first place kept; how many values were dropped."""
    dropped = 0
    for field, value in message.ListFields():
        if field.type == _MESSAGE:
            dropped += _in_messages(field, value)
        elif field.is_repeated and field.type in _SET_LIKE and len(value) > 1:
            dropped += _deduplicated(value)
    return dropped


def _in_messages(field: FieldDescriptor, value: Any) -> int:
    entry = field.message_type
    if entry is not None and entry.GetOptions().map_entry:
        value_field = entry.fields_by_name["value"]
        # A map's keys are unique already; its values are no list.
        return sum(drop_repeats(v) for v in value.values()) if value_field.type == _MESSAGE else 0
    if field.is_repeated:
        return sum(drop_repeats(item) for item in value)
    return drop_repeats(value)


def _deduplicated(values: Any) -> int:
    unique = list(dict.fromkeys(values))
    dropped = len(values) - len(unique)
    if dropped:
        del values[:]
        values.extend(unique)
    return dropped
