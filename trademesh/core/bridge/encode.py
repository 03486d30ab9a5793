"""Wire chunks of LiveData SubscribeResponse, built once per event and joined per subscriber.

Serialized protobuf messages concatenate: a SubscribeResponse is the byte join of its
fields' encodings, so an event is framed once (tag, length, bytes) and a subscriber's
message is a join of the frames that concern it, with no per-subscriber protobuf work.
"""

from __future__ import annotations

from google.protobuf.message import Message

from trademesh.bus.v1 import bus_pb2 as bus
from trademesh.livedata.v1 import livedata_pb2 as lv
from trademesh.marketdata.v1 import marketdata_pb2 as md

__all__ = ["bar_chunk", "event_chunk", "notice_event", "varint"]


def varint(value: int) -> bytes:
    """Protobuf's base-128 varint of a non-negative int."""
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _tag(field: str) -> bytes:
    number = lv.SubscribeResponse.DESCRIPTOR.fields_by_name[field].number
    return varint(number << 3 | 2)  # wire type 2: length-delimited


_EVENT_TAG = _tag("events")
_BAR_TAG = _tag("bars")


# The varints of the lengths most events have (up to 2 bytes), looked up instead of computed.
_SHORT = [varint(n) for n in range(1 << 14)]


def _frame(tag: bytes, message: Message) -> bytes:
    data = message.SerializeToString()
    size = len(data)
    return tag + (_SHORT[size] if size < 16384 else varint(size)) + data


def event_chunk(event: md.MarketEvent) -> bytes:
    data = event.SerializeToString()  # _frame's, inline: once per event the bridge passes on
    size = len(data)
    return _EVENT_TAG + (_SHORT[size] if size < 16384 else varint(size)) + data


def bar_chunk(bar: bus.Bar) -> bytes:
    return _frame(_BAR_TAG, bar)


def notice_event(
    venue: str,
    symbol: str,
    channel: md.Channel.ValueType,
    reason: str,
    since_ns: int,
    now_ns: int,
) -> md.MarketEvent:
    """A GAP notice from the bridge itself (conflation, a hole in a book on the bus)."""
    notice = md.StreamNotice(kind=md.NOTICE_KIND_GAP, channel=channel, reason=reason, since_ns=since_ns)
    return md.MarketEvent(venue=venue, symbol=symbol, ts_event_ns=now_ns, ts_recv_ns=now_ns, notice=notice)
