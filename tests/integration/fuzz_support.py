"""Fuzzing a gRPC server from its reflection alone: the methods it serves, and hypothesis
strategies that build any request of theirs (well-formed, odd, or raw bytes); with Pools
(tests.integration.fuzz_pools), fields draw the mesh's real values and known bad ones often."""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import descriptor_pool, message_factory, text_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.integration.fuzz_pools import Pools, hostile_text, with_lone_surrogates

__all__ = [
    "Answer",
    "Method",
    "body_strategy",
    "describe",
    "fuzz_methods",
    "json_values",
    "methods_of",
    "read_rss_kib",
    "refresh_ids",
    "sample",
]

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
        hostile_text(),
    )


def _scalar(field: FieldDescriptor, pools: Pools | None) -> st.SearchStrategy[Any]:
    """Any value of the field's type: odd ones, and with `pools` often a pooled one (real or bad)."""
    kind = field.type
    if kind in _INT_RANGES:
        low, high = _INT_RANGES[kind]
        values = st.one_of(
            st.integers(low, high), st.sampled_from([0, 1, -1, low, high]).filter(lambda v: low <= v <= high)
        )
        times = None if pools is None else pools.integer(field.name, low, high)
        return values if times is None else st.one_of(times, times, values)
    if kind in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        return st.sampled_from([0.0, -1.0, math.inf, math.nan, 1e300])
    if kind == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if kind == FieldDescriptor.TYPE_STRING:
        pooled = None if pools is None else pools.string(field.name)
        return _text() if pooled is None else st.one_of(pooled, pooled, pooled, _text())
    if kind == FieldDescriptor.TYPE_BYTES:
        return st.binary(max_size=64)
    if kind == FieldDescriptor.TYPE_ENUM:
        assert field.enum_type is not None
        known = [v.number for v in field.enum_type.values]
        return st.one_of(st.sampled_from(known), st.integers(-3, 1000))
    raise AssertionError(f"no strategy for {field.full_name}")


def _good_scalar(field: FieldDescriptor, pools: Pools) -> st.SearchStrategy[Any]:
    """A value a caller who knows the mesh would send: a real one where the pools have them."""
    kind = field.type
    if kind in _INT_RANGES:
        low, high = _INT_RANGES[kind]
        times = pools.integer(field.name, low, high, good=True)
        return st.integers(max(low, 0), min(high, 100)) if times is None else times
    if kind in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        return st.sampled_from([0.0, 0.5, 1.0])
    if kind == FieldDescriptor.TYPE_STRING:
        pooled = pools.string(field.name, good=True)
        return st.text(_PLAIN, min_size=1, max_size=12) if pooled is None else pooled
    if kind == FieldDescriptor.TYPE_ENUM:
        assert field.enum_type is not None
        known = [v.number for v in field.enum_type.values]
        return st.sampled_from([v for v in known if v != 0] or known)  # not the UNSPECIFIED zero
    return _scalar(field, None)  # bool, bytes: any value is a good one


_PLAIN = "abcdefghijklmnopqrstuvwxyz0123456789-_"
# How a message's fields are drawn: all of them good (the request gets past its checks to the
# work), one bad among good ones (each check met alone), or any (bad everywhere); for a request
# with seeds, also a seed with one field changed to another good value ("seed") or made bad
# ("seed-one").
_Mode = str
_MODES = ("good", "good", "one", "one", "any")
_SEEDED_MODES = ("seed", "seed", "seed-one", "seed-one", "seed-one", "good", "one", "any")
# Ids a seed holds that name a new thing each time (a seed sent twice would be a duplicate).
_FRESH = frozenset({"intent_id", "client_order_id", "signal_id"})


# Strategies every builder draws from, made once.
_UUIDS = st.uuids()
_BOOLEANS = st.booleans()
_NESTED_CHANGE = st.integers(0, 4)  # _change goes into a held message unless this draws 0
_MODE_STRATEGIES = {True: st.sampled_from(_SEEDED_MODES), False: st.sampled_from(_MODES)}


class _Builder:
    """Strategies for messages of any type; with pools, in the modes above. One per body_strategy.

    Every strategy it makes is cached (messages by type, depth and mode; fields and values by
    field, depth and mode; the fields a seed's change picks from by type), so that drawing an
    example only draws: a strategy made anew per draw costs hypothesis more than the draw itself.
    A time a pool draws is near now as of the strategy's making (a body_strategy's examples are
    drawn within seconds of it)."""

    def __init__(self, pools: Pools | None) -> None:
        self.pools = pools
        self._cache: dict[tuple[str, int, _Mode], st.SearchStrategy[Any]] = {}
        self._values: dict[tuple[str, int, _Mode], st.SearchStrategy[Any]] = {}
        self._fields: dict[tuple[str, int, _Mode], st.SearchStrategy[Any]] = {}
        self._changed: dict[str, st.SearchStrategy[FieldDescriptor] | None] = {}

    def message(self, descriptor: Descriptor, depth: int, mode: _Mode) -> st.SearchStrategy[Any]:
        key = (descriptor.full_name, depth, mode)
        if key not in self._cache:
            self._cache[key] = st.deferred(lambda: self._build(descriptor, depth, mode))
        return self._cache[key]

    def _build(self, descriptor: Descriptor, depth: int, mode: _Mode) -> st.SearchStrategy[Any]:
        cls = message_factory.GetMessageClass(descriptor)
        if depth > _MAX_DEPTH:
            return st.just(cls())
        fields = [f for f in descriptor.fields if f.type != FieldDescriptor.TYPE_GROUP]
        seeds = [] if self.pools is None or depth else list(self.pools.seeds.get(descriptor.full_name, []))
        modes = _MODE_STRATEGIES[bool(seeds)]
        seeded = st.sampled_from(seeds) if seeds else None
        bad_field = st.sampled_from(fields) if fields else None

        @st.composite
        def build(draw: st.DrawFn) -> Any:
            chosen = draw(modes) if mode == "mixed" else mode
            if chosen.startswith("seed"):
                assert seeded is not None
                message = cls.FromString(draw(seeded))
                refresh_ids(message, lambda: str(draw(_UUIDS)))
                if chosen == "seed-one" or draw(_BOOLEANS):
                    self._change(draw, message, depth, "one" if chosen == "seed-one" else "good")
                return message
            bad = draw(bad_field) if chosen == "one" and bad_field is not None else None
            message = cls()
            for field in fields:
                if chosen == "any":
                    value = draw(self._field(field, depth, "any"))
                elif field is bad:
                    value = draw(self._value(field, depth, "one"))  # always set: it is the bad one
                    value = [value] if field.is_repeated else value
                else:
                    value = draw(self._field(field, depth, "good"))
                if value is not None:
                    _assign(message, field, value)
            return message

        return build()

    def _change(self, draw: st.DrawFn, message: Any, depth: int, mode: _Mode) -> None:
        """One field of `message` (of a message it holds, when that is the one drawn) drawn anew:
        a bad value in mode "one", another good one in mode "good"."""
        fields = self._changeable(message.DESCRIPTOR)
        if fields is None:
            return
        field = draw(fields)
        nested = field.type == FieldDescriptor.TYPE_MESSAGE and not field.is_repeated
        if nested and message.HasField(field.name) and draw(_NESTED_CHANGE):
            self._change(draw, getattr(message, field.name), depth + 1, mode)
            return
        value = draw(self._value(field, depth, mode))
        message.ClearField(field.name)
        _assign(message, field, [value] if field.is_repeated else value)

    def _changeable(self, descriptor: Descriptor) -> st.SearchStrategy[FieldDescriptor] | None:
        """The field of a seed of this type that _change draws anew, each as often as its weight."""
        if descriptor.full_name not in self._changed:
            fields = [f for f in descriptor.fields if f.type != FieldDescriptor.TYPE_GROUP]
            weighted = [f for f in fields for _ in range(self._weight(f))]
            self._changed[descriptor.full_name] = st.sampled_from(weighted) if weighted else None
        return self._changed[descriptor.full_name]

    def _weight(self, field: FieldDescriptor) -> int:
        """How often a seed's field is the one changed: a venue or a symbol most (what a request
        makes a service follow), the other fields the pools know next (decimals, times, ids)."""
        if field.type == FieldDescriptor.TYPE_STRING and field.name.startswith(("venue", "symbol")):
            return 8
        return 2 if self._pooled(field) else 1

    def _value(self, field: FieldDescriptor, depth: int, mode: _Mode) -> st.SearchStrategy[Any]:
        key = (field.full_name, depth, mode)
        if key not in self._values:
            self._values[key] = self._make_value(field, depth, mode)
        return self._values[key]

    def _make_value(self, field: FieldDescriptor, depth: int, mode: _Mode) -> st.SearchStrategy[Any]:
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            assert field.message_type is not None
            return self.message(field.message_type, depth + 1, "good" if mode == "good" else mode)
        if mode == "good" and self.pools is not None:
            return _good_scalar(field, self.pools)
        bad = None
        if mode == "one" and self.pools is not None and field.type == FieldDescriptor.TYPE_STRING:
            bad = self.pools.string(field.name, bad=True)
        return _scalar(field, self.pools) if bad is None else bad

    def _field(self, field: FieldDescriptor, depth: int, mode: _Mode) -> st.SearchStrategy[Any]:
        key = (field.full_name, depth, mode)
        if key not in self._fields:
            self._fields[key] = self._make_field(field, depth, mode)
        return self._fields[key]

    def _make_field(self, field: FieldDescriptor, depth: int, mode: _Mode) -> st.SearchStrategy[Any]:
        value = self._value(field, depth, mode)
        if mode == "good":  # mostly set: a request missing what it needs stops at its first check
            if field.is_repeated:
                return st.one_of(st.lists(value, min_size=1, max_size=3), st.just([]))
            return st.one_of(value, value, value, st.none())
        if field.is_repeated:
            return st.one_of(st.none(), st.lists(value, max_size=4))
        if self._pooled(field):
            return st.one_of(st.none(), value, value)  # a pooled field is mostly set
        return st.one_of(st.none(), value)

    def _pooled(self, field: FieldDescriptor) -> bool:
        if self.pools is None:
            return False
        if field.type == FieldDescriptor.TYPE_STRING:
            return self.pools.string(field.name) is not None
        return field.type in _INT_RANGES and field.name.endswith("_ns")


def refresh_ids(message: Any, fresh: Callable[[], str]) -> None:
    """A seed's ids of new things (an intent's, an order's: _FRESH) made new by `fresh`, in it and
    the messages it holds: a seed sent again would be a duplicate, refused as one."""
    for field in message.DESCRIPTOR.fields:
        if field.name in _FRESH and not field.is_repeated and getattr(message, field.name):
            setattr(message, field.name, fresh())
        elif (
            not field.is_repeated
            and field.type == FieldDescriptor.TYPE_MESSAGE
            and message.HasField(field.name)
        ):
            refresh_ids(getattr(message, field.name), fresh)


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


def body_strategy(method: Method, pools: Pools | None = None) -> st.SearchStrategy[bytes]:
    """A request body: a message of the method's input type, or raw bytes. Without `pools` its
    fields hold any values; with them, most requests are good but for one field or none (real
    values from the pools), the rest bad anywhere (pooled bad values often)."""
    mode = "any" if pools is None else "mixed"
    typed = _Builder(pools).message(method.descriptor.input_type, 0, mode)
    body = typed.map(lambda m: with_lone_surrogates(m.SerializeToString()))
    return st.one_of(body, body, body, st.binary(max_size=256))


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


# ---------------------------------------------------------------- many calls at once


def sample(strategy: st.SearchStrategy[Any], count: int) -> list[Any]:
    """`count` values of `strategy`, as hypothesis generates them (no test run, no shrinking)."""
    found: list[Any] = []

    @settings(max_examples=count, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(strategy)
    def collect(value: Any) -> None:
        found.append(value)

    collect()
    return found


@dataclass(frozen=True)
class Answer:
    method: Method
    body: bytes
    code: grpc.StatusCode
    details: str
    reply: bytes = b""  # a unary call's answer

    def __str__(self) -> str:
        return f"{self.method.path} answered {self.code.name} ({self.details[:300]!r}) to {describe(self)}"


def describe(answer: Answer) -> str:
    """The request, readable: its fields as text, or its bytes when it does not parse."""
    cls = message_factory.GetMessageClass(answer.method.descriptor.input_type)
    try:
        message = cls.FromString(answer.body)
    except Exception:  # any bytes: that they do not parse is the point
        return repr(answer.body[:400])
    text = text_format.MessageToString(message, as_one_line=True, as_utf8=True)
    return text if len(text) <= 2000 else text[:2000] + f"... ({len(text)} characters)"


async def call(
    channel: grpc.aio.Channel, method: Method, body: bytes, auth: Any, stream_wait_s: float, unary_s: float
) -> tuple[grpc.StatusCode, str, bytes]:
    """The status of one call, its details and (a unary call's) answer; a stream still open
    `stream_wait_s` after it started, or after its first answer, counts as OK (it is cancelled
    then)."""
    identity = {"request_serializer": lambda b: b, "response_deserializer": lambda b: b}
    stream: Any = None
    try:
        if method.client_streaming:
            stream = channel.stream_stream(method.path, **identity)(iter([body]), metadata=auth)
        elif method.server_streaming:
            stream = channel.unary_stream(method.path, **identity)(body, metadata=auth)
        else:
            reply = await channel.unary_unary(method.path, **identity)(body, metadata=auth, timeout=unary_s)
            return grpc.StatusCode.OK, "", reply
        try:
            first = await asyncio.wait_for(stream.read(), stream_wait_s)
        except TimeoutError:
            return grpc.StatusCode.OK, "open", b""
        if first is grpc.aio.EOF:
            return await stream.code(), await stream.details() or "", b""
        return grpc.StatusCode.OK, "", b""
    except grpc.aio.AioRpcError as error:
        return error.code(), error.details() or "", b""
    finally:
        if stream is not None:
            stream.cancel()


async def fuzz_methods(
    address: str,
    bodies: list[tuple[Method, bytes]],
    auth: Any,
    concurrency: int = 8,
    stream_wait_s: float = 0.5,
    unary_s: float = 10.0,
) -> list[Answer]:
    """Every (method, body) sent to `address`, `concurrency` at a time in a random order (so that
    calls of different methods meet), each answer's status."""
    order = random.sample(bodies, len(bodies))
    gate = asyncio.Semaphore(concurrency)
    async with grpc.aio.insecure_channel(address, options=[("grpc.max_send_message_length", -1)]) as channel:

        async def one(method: Method, body: bytes) -> Answer:
            async with gate:
                code, details, reply = await call(channel, method, body, auth, stream_wait_s, unary_s)
            return Answer(method, body, code, details, reply)

        return await asyncio.gather(*(one(m, b) for m, b in order))
