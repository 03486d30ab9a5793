"""Fuzzing a gRPC server from its reflection alone: the methods it serves, and hypothesis
strategies that build any request of theirs (well-formed, odd, or raw bytes)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import descriptor_pool, message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase
from hypothesis import strategies as st

__all__ = ["Method", "body_strategy", "json_values", "methods_of", "read_rss_kib"]

_INT_RANGES = {
    FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SINT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SINT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_FIXED32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1),
    FieldDescriptor.TYPE_FIXED64: (0, 2**64 - 1),
}
_MAX_DEPTH = 3


@dataclass(frozen=True)
class Method:
    path: str  # /package.Service/Method
    descriptor: MethodDescriptor

    @property
    def server_streaming(self) -> bool:
        return bool(self.descriptor.server_streaming)

    @property
    def client_streaming(self) -> bool:
        return bool(self.descriptor.client_streaming)


def methods_of(address: str) -> list[Method]:
    """Every method the server at `address` serves, with its descriptors, from reflection only."""
    channel = grpc.insecure_channel(address)
    try:
        database = ProtoReflectionDescriptorDatabase(channel)
        pool = descriptor_pool.DescriptorPool(database)
        found: list[Method] = []
        for name in sorted(database.get_services()):
            service = pool.FindServiceByName(name)
            found += [Method(f"/{name}/{m.name}", m) for m in service.methods]
        return found
    finally:
        channel.close()


def _text() -> st.SearchStrategy[str]:
    return st.one_of(
        st.text(max_size=20),
        st.sampled_from(["BTC/USDT", "ETH/USDT", "sim", "0", "-1", "1e400", "NaN", "\x00", "../../etc"]),
        st.text(min_size=200, max_size=400),
    )


def _scalar(field: FieldDescriptor) -> st.SearchStrategy[Any]:
    kind = field.type
    if kind in _INT_RANGES:
        low, high = _INT_RANGES[kind]
        return st.one_of(
            st.integers(low, high), st.sampled_from([0, 1, -1, low, high]).filter(lambda v: low <= v <= high)
        )
    if kind in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        return st.sampled_from([0.0, -1.0, math.inf, math.nan, 1e300])
    if kind == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if kind == FieldDescriptor.TYPE_STRING:
        return _text()
    if kind == FieldDescriptor.TYPE_BYTES:
        return st.binary(max_size=64)
    if kind == FieldDescriptor.TYPE_ENUM:
        assert field.enum_type is not None
        known = [v.number for v in field.enum_type.values]
        return st.one_of(st.sampled_from(known), st.integers(-3, 1000))
    raise AssertionError(f"no strategy for {field.full_name}")


def _value(field: FieldDescriptor, depth: int) -> st.SearchStrategy[Any]:
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        assert field.message_type is not None
        return _message(field.message_type, depth + 1)
    return _scalar(field)


def _message(descriptor: Descriptor, depth: int) -> st.SearchStrategy[Any]:
    cls = message_factory.GetMessageClass(descriptor)
    if depth > _MAX_DEPTH:
        return st.just(cls())
    fields = [f for f in descriptor.fields if f.type != FieldDescriptor.TYPE_GROUP]
    parts = {f.name: _field(f, depth) for f in fields}

    @st.composite
    def build(draw: st.DrawFn) -> Any:
        message = cls()
        for field in fields:
            value = draw(parts[field.name])
            if value is not None:
                _assign(message, field, value)
        return message

    return build()


def _field(field: FieldDescriptor, depth: int) -> st.SearchStrategy[Any]:
    value = _value(field, depth)
    if field.is_repeated:
        return st.one_of(st.none(), st.lists(value, max_size=4))
    return st.one_of(st.none(), value)


def _assign(message: Any, field: FieldDescriptor, value: Any) -> None:
    entry = field.message_type
    if entry is not None and entry.GetOptions().map_entry:
        target = getattr(message, field.name)
        for item in value:
            key = item.key
            if entry.fields_by_name["value"].type == FieldDescriptor.TYPE_MESSAGE:
                target[key].CopyFrom(item.value)
            else:
                target[key] = item.value
    elif field.is_repeated:
        getattr(message, field.name).extend(value)
    elif field.type == FieldDescriptor.TYPE_MESSAGE:
        getattr(message, field.name).CopyFrom(value)
    else:
        setattr(message, field.name, value)


def body_strategy(method: Method) -> st.SearchStrategy[bytes]:
    """A request body: a message of the method's input type (any values), or raw bytes."""
    typed = _message(method.descriptor.input_type, 0).map(lambda m: m.SerializeToString())
    return st.one_of(typed, typed, st.binary(max_size=256))


def json_values() -> st.SearchStrategy[Any]:
    """Any JSON value: odd strings and numbers, nested lists and objects."""
    scalars = st.one_of(
        st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False), _text()
    )
    return st.recursive(
        scalars,
        lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(_text(), inner, max_size=4)),
        max_leaves=10,
    )


def read_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")
