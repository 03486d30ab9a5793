"""Limits every request is held to at the edge, whatever its type: string lengths, list sizes.

Every string field of every request is at most MAX_STRING_CHARS characters (symbols, ids,
names, decimal strings and addresses are all far shorter), and every repeated field holds at
most MAX_ITEMS values; a request over either is INVALID_ARGUMENT with a field violation naming
the field. So no handler sees a megabyte-long symbol, and no error echoes one. The few fields
that hold a whole document (a strategy file's TOML text) are named in LONG_STRINGS with their
own limit.
"""

from __future__ import annotations

from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from core.errors import FieldViolation

__all__ = ["LONG_STRINGS", "MAX_ITEMS", "MAX_STRING_CHARS", "violations_of"]

MAX_STRING_CHARS = 256
# Fields holding a whole document, by full name: their own limit (the request's byte limit,
# core.rpc.server.MAX_REQUEST_BYTES, still applies).
LONG_STRINGS = {"trademesh.patch.v1.CreatePatchRequest.strategy_toml": 256 * 1024}
MAX_ITEMS = 10_000
# A message nested deeper than this is refused as a whole (no contract of ours nests so deep).
_MAX_DEPTH = 16
_STRING = FieldDescriptor.TYPE_STRING
_MESSAGE = FieldDescriptor.TYPE_MESSAGE


def violations_of(message: Message, path: str = "", depth: int = 0) -> list[FieldViolation]:
    """What in `message` breaks the limits (empty when nothing does)."""
    if depth > _MAX_DEPTH:
        return [FieldViolation(path or "(request body)", f"nests deeper than {_MAX_DEPTH} messages")]
    found: list[FieldViolation] = []
    for field, value in message.ListFields():
        where = f"{path}.{field.name}" if path else field.name
        if _is_map(field):
            found += _map_violations(field, value, where, depth)
        elif field.is_repeated:
            found += _list_violations(field, value, where, depth)
        else:
            found += _value_violations(field, value, where, depth)
    return found


def _is_map(field: FieldDescriptor) -> bool:
    entry = field.message_type
    return field.type == _MESSAGE and entry is not None and entry.GetOptions().map_entry


def _list_violations(field: FieldDescriptor, values: Any, where: str, depth: int) -> list[FieldViolation]:
    if len(values) > MAX_ITEMS:
        return [FieldViolation(where, f"holds {len(values)} values; at most {MAX_ITEMS}")]
    found: list[FieldViolation] = []
    for index, value in enumerate(values):
        found += _value_violations(field, value, f"{where}[{index}]", depth)
    return found


def _map_violations(field: FieldDescriptor, values: Any, where: str, depth: int) -> list[FieldViolation]:
    if len(values) > MAX_ITEMS:
        return [FieldViolation(where, f"holds {len(values)} entries; at most {MAX_ITEMS}")]
    assert field.message_type is not None  # a map field's entry type
    value_field = field.message_type.fields_by_name["value"]
    found: list[FieldViolation] = []
    for key, value in values.items():
        if isinstance(key, str) and len(key) > MAX_STRING_CHARS:
            found.append(_too_long(f"{where} key", key))
        else:
            found += _value_violations(value_field, value, f"{where}[{key!r}]", depth)
    return found


def _value_violations(field: FieldDescriptor, value: Any, where: str, depth: int) -> list[FieldViolation]:
    if field.type == _STRING and len(value) > MAX_STRING_CHARS:
        limit = LONG_STRINGS.get(field.full_name, MAX_STRING_CHARS)
        if len(value) > limit:
            return [_too_long(where, value, limit)]
    if field.type == _MESSAGE:
        return violations_of(value, where, depth + 1)
    return []


def _too_long(where: str, value: str, limit: int = MAX_STRING_CHARS) -> FieldViolation:
    return FieldViolation(where, f"is {len(value)} characters long; at most {limit}")
