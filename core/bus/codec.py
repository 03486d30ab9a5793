"""The bus entry format: one protobuf Envelope in the entry's single field "d"."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping

from google.protobuf.message import DecodeError

from core.errors import Corrupt
from trademesh.bus.v1 import bus_pb2 as bus
from trademesh.marketdata.v1 import marketdata_pb2 as md

__all__ = ["FIELD", "decode", "encode_market"]

# The entry's one field (short: it is stored in every entry).
FIELD = b"d"


def encode_market(source: str, events: Iterable[md.MarketEvent], now_ns: int | None = None) -> bytes:
    envelope = bus.Envelope(source=source, ts_publish_ns=now_ns if now_ns is not None else time.time_ns())
    envelope.market.events.extend(events)
    return envelope.SerializeToString()


def decode(fields: Mapping[bytes, bytes]) -> bus.Envelope:
    """An entry's Envelope; Corrupt when the entry is not one (a poison message)."""
    data = fields.get(FIELD)
    if data is None:
        raise Corrupt(
            f"bus entry has no {FIELD.decode()!r} field (fields: {sorted(k.decode() for k in fields)})"
        )
    envelope = bus.Envelope()
    try:
        envelope.ParseFromString(data)
    except DecodeError as exc:
        raise Corrupt(f"bus entry is not an Envelope: {exc}") from exc
    if envelope.WhichOneof("body") is None:
        raise Corrupt("bus entry's Envelope has no body")
    return envelope
