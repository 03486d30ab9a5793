"""The bus entry format: one protobuf Envelope in the entry's single field "d" (an inspector's
journal, whose entries are bare JournalEntry messages, is read wrapped in one: decode_entry)."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping

from google.protobuf.message import DecodeError, Message

from trademesh.bus.v1 import bus_pb2 as bus
from trademesh.core.platform.bus.names import parse_journal_stream
from trademesh.core.platform.errors import Corrupt
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.overwatch.v1 import overwatch_pb2 as ow
from trademesh.screener.v1 import screener_pb2 as sc
from trademesh.supervisor.v1 import supervisor_pb2 as sv
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

__all__ = [
    "FIELD",
    "decode",
    "decode_entry",
    "encode_account",
    "encode_bars",
    "encode_funding",
    "encode_instruments",
    "encode_market",
    "encode_regimes",
    "encode_screen_result",
    "encode_supervisor_audit",
    "wrap_executions",
    "wrap_market",
]

# The entry's one field (short: it is stored in every entry).
FIELD = b"d"


def _envelope(source: str, now_ns: int | None) -> bus.Envelope:
    """An Envelope from `source`, published at `now_ns` (now when None)."""
    return bus.Envelope(source=source, ts_publish_ns=now_ns if now_ns is not None else time.time_ns())


def encode_market(source: str, events: Iterable[md.MarketEvent], now_ns: int | None = None) -> bytes:
    envelope = _envelope(source, now_ns)
    envelope.market.events.extend(events)
    return envelope.SerializeToString()


def encode_bars(source: str, bars: Iterable[bus.Bar], now_ns: int | None = None) -> bytes:
    envelope = _envelope(source, now_ns)
    envelope.bars.bars.extend(bars)
    return envelope.SerializeToString()


def encode_regimes(source: str, changes: Iterable[ow.RegimeChange], now_ns: int | None = None) -> bytes:
    envelope = _envelope(source, now_ns)
    envelope.regimes.changes.extend(changes)
    return envelope.SerializeToString()


def encode_supervisor_audit(
    source: str, entries: Iterable[sv.AuditEntry], now_ns: int | None = None
) -> bytes:
    envelope = _envelope(source, now_ns)
    envelope.supervisor_audit.entries.extend(entries)
    return envelope.SerializeToString()


def encode_screen_result(source: str, result: sc.ScreenResult, now_ns: int | None = None) -> bytes:
    envelope = _envelope(source, now_ns)
    envelope.screen_result.CopyFrom(result)
    return envelope.SerializeToString()


def encode_funding(
    source: str, venue: str, payments: Iterable[tf.FundingPayment], now_ns: int | None = None
) -> bytes:
    envelope = _envelope(source, now_ns)
    envelope.funding.venue = venue
    envelope.funding.payments.extend(payments)
    return envelope.SerializeToString()


def encode_instruments(source: str, changes: bus.InstrumentChanges, now_ns: int | None = None) -> bytes:
    envelope = _envelope(source, now_ns)
    envelope.instruments.CopyFrom(changes)
    return envelope.SerializeToString()


def encode_account(source: str, account: bus.AccountSnapshot, now_ns: int | None = None) -> bytes:
    envelope = _envelope(source, now_ns)
    envelope.account.CopyFrom(account)
    return envelope.SerializeToString()


def wrap_market(source: str, market_events: bytes, now_ns: int | None = None) -> bytes:
    """An Envelope around an already-encoded MarketEvents (or a venue's SubscribeResponse,
    whose fields match): ingest passes a venue's batches to the bus without parsing them."""
    head = _envelope(source, now_ns)
    return head.SerializeToString() + _MARKET_TAG + _varint(len(market_events)) + market_events


def wrap_executions(source: str, executions: bytes, now_ns: int | None = None) -> bytes:
    """An Envelope around an already-encoded Executions (or a venue's StreamExecutionsResponse,
    whose fields match)."""
    head = _envelope(source, now_ns)
    return head.SerializeToString() + _EXECUTIONS_TAG + _varint(len(executions)) + executions


# Envelope.market: field 10, length-delimited; Envelope.executions: field 17.
_MARKET_TAG = bytes([10 << 3 | 2])
_EXECUTIONS_TAG = bytes([(17 << 3 | 2) & 0x7F | 0x80, (17 << 3 | 2) >> 7])


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def decode(fields: Mapping[bytes, bytes]) -> bus.Envelope:
    """An entry's Envelope; Corrupt when the entry is not one (a poison message)."""
    envelope = bus.Envelope()
    _parse(envelope, fields, "bus entry", "an Envelope")
    if envelope.WhichOneof("body") is None:
        raise Corrupt("bus entry's Envelope has no body")
    return envelope


def decode_entry(stream: str, fields: Mapping[bytes, bytes]) -> bus.Envelope:
    """An entry of `stream` as an Envelope (what a consumer handles): an inspector's journal
    entry (`inspector.journal.{<instance>}`: a bare risk.v1.JournalEntry) wrapped in one
    (bus.v1.InspectorJournal, published at the entry's time), any other stream's its own
    (decode). Corrupt when it is neither."""
    instance = parse_journal_stream(stream)
    if instance is None:
        return decode(fields)
    envelope = bus.Envelope(source=f"inspector/{instance}")
    envelope.journal.instance = instance
    entry = envelope.journal.entries.add()
    _parse(entry, fields, "journal entry", "a JournalEntry")
    if entry.WhichOneof("input") is None:
        raise Corrupt("journal entry has no input")
    envelope.ts_publish_ns = entry.now_ns
    return envelope


def _parse(message: Message, fields: Mapping[bytes, bytes], what: str, kind: str) -> None:
    """The entry's one field parsed into `message`; Corrupt (naming `what`) when it has none or
    it is not `kind`."""
    data = fields.get(FIELD)
    if data is None:
        raise Corrupt(
            f"{what} has no {FIELD.decode()!r} field (fields: {sorted(k.decode() for k in fields)})"
        )
    try:
        message.ParseFromString(data)
    except DecodeError as exc:
        raise Corrupt(f"{what} is not {kind}: {exc}") from exc
