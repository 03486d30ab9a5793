"""Limits every request is held to at the edge, whatever its type: string lengths, list sizes.

Every string field of every request is at most MAX_STRING_CHARS characters (symbols, ids,
names, decimal strings and addresses are all far shorter), and every repeated field holds at
most MAX_ITEMS values; a request over either is INVALID_ARGUMENT with a field violation naming
the field. So no handler sees a megabyte-long symbol, and no error echoes one. The fields that
hold a document or free text (a strategy's or a policy set's TOML, a description, an operator's
reason) are named in LONG_STRINGS with a limit that fits their use (`string_limit`); every
request string field was decided one by one (tests/unit/test_rpc_limits.py walks them all).
"""

from __future__ import annotations

from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from trademesh.core.platform.errors import FieldViolation

__all__ = ["LONG_STRINGS", "MAX_ITEMS", "MAX_STRING_CHARS", "string_limit", "violations_of"]

MAX_STRING_CHARS = 256
_KIB = 1024
# An operator's reason (journaled, and on the risk event it causes): a sentence or a paragraph.
_REASON_CHARS = _KIB
# Fields holding a document or free text, by full name: their own limit (the request's byte
# limit, trademesh.core.platform.rpc.server.MAX_REQUEST_BYTES, still applies). docs/limits.md lists them.
LONG_STRINGS = {
    # A strategy file (the shipped ones are 1.2-1.8 KB; a patch of the module cap's size fits).
    "trademesh.patch.v1.CreatePatchRequest.strategy_toml": 256 * _KIB,
    # A patch's description, for people (the strategy file's, or Studio's editor).
    "trademesh.patch.v1.CreatePatchRequest.description": 4 * _KIB,
    "trademesh.patch.v1.UpdatePatchRequest.description": 4 * _KIB,
    # A policy file (the shipped one is 512 characters; a limit per symbol and a reservation per
    # strategy for a few hundred of each fit).
    "trademesh.risk.v1.UpdatePoliciesRequest.toml": 64 * _KIB,
    "trademesh.risk.v1.UpdatePoliciesRequest.reason": _REASON_CHARS,
    "trademesh.risk.v1.SetModeRequest.reason": _REASON_CHARS,
    "trademesh.risk.v1.CancelOrderRequest.reason": _REASON_CHARS,
    "trademesh.risk.v1.CancelAllOrdersRequest.reason": _REASON_CHARS,
}
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


def string_limit(field: FieldDescriptor) -> int:
    """The most characters a request's string field may hold."""
    return LONG_STRINGS.get(field.full_name, MAX_STRING_CHARS)


def _value_violations(field: FieldDescriptor, value: Any, where: str, depth: int) -> list[FieldViolation]:
    if field.type == _STRING and len(value) > MAX_STRING_CHARS:
        limit = string_limit(field)
        if len(value) > limit:
            return [_too_long(where, value, limit)]
    if field.type == _MESSAGE:
        return violations_of(value, where, depth + 1)
    return []


def _too_long(where: str, value: str, limit: int = MAX_STRING_CHARS) -> FieldViolation:
    return FieldViolation(where, f"is {len(value)} characters long; at most {limit}")
