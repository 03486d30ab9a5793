"""Text no service can store, refused at the edge in every request (trademesh.core.platform.text says which).

A NUL in a patch's name was accepted, could not be saved, and wedged the detector's store;
a NUL in a ledger trace id became INTERNAL. The edge checks every string of every request
(nested messages, lists, map keys and values) once the request decoded, after its limits
(trademesh.core.platform.rpc.limits: a string over its length is refused before it is scanned), so no handler
sees such text and no service can forget the check. Protobuf's parser already refuses bytes
that are not UTF-8 (a lone surrogate cannot be sent); NUL is valid UTF-8 and is caught here.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from trademesh.core.platform.errors import FieldViolation
from trademesh.core.platform.text import unstorable

__all__ = ["unstorable_fields"]

_STRING = FieldDescriptor.TYPE_STRING
_MESSAGE = FieldDescriptor.TYPE_MESSAGE


def unstorable_fields(message: Message) -> list[FieldViolation]:
    """A violation for every string in `message` that PostgreSQL cannot store (empty: none)."""
    found: list[FieldViolation] = []
    for where, text in _strings(message, ""):
        why = unstorable(text)
        if why is not None:
            found.append(FieldViolation(where, why))
    return found


def _strings(message: Message, path: str) -> Iterator[tuple[str, str]]:
    for field, value in message.ListFields():
        where = f"{path}.{field.name}" if path else field.name
        if _is_map(field):
            yield from _map_strings(field, value, where)
        elif field.is_repeated:
            for index, item in enumerate(value):
                yield from _value_strings(field, item, f"{where}[{index}]")
        else:
            yield from _value_strings(field, value, where)


def _map_strings(field: FieldDescriptor, values: Any, where: str) -> Iterator[tuple[str, str]]:
    assert field.message_type is not None  # a map field's entry type
    value_field = field.message_type.fields_by_name["value"]
    for key, value in values.items():
        if isinstance(key, str):
            yield f"{where} key", key
        yield from _value_strings(value_field, value, f"{where}[{key!r}]")


def _value_strings(field: FieldDescriptor, value: Any, where: str) -> Iterator[tuple[str, str]]:
    if field.type == _STRING:
        yield where, value
    elif field.type == _MESSAGE:
        yield from _strings(value, where)


def _is_map(field: FieldDescriptor) -> bool:
    entry = field.message_type
    return field.type == _MESSAGE and entry is not None and entry.GetOptions().map_entry
