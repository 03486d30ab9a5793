"""Gap markers: what a venue's writer to the bus (ingest, or the venue itself) writes into a stream
when events may be missing from it: GAP notices in a market stream, a gap entry in exec.{<venue>}."""

from __future__ import annotations

import time

from trademesh.bus.v1 import bus_pb2 as bus
from trademesh.core.domain.convert import CHANNEL_TO_PB
from trademesh.core.domain.model import Channel
from trademesh.marketdata.v1 import marketdata_pb2 as md

__all__ = ["execution_gap_marker", "gap_markers", "opens_with_gap_notice"]


def gap_markers(
    venue: str, symbols: list[str], channel: Channel, since_ns: int, reason: str, now_ns: int | None = None
) -> bytes:
    """An encoded MarketEvents with one GAP notice per symbol: events in (since_ns, now] may be missing."""
    now = now_ns if now_ns is not None else time.time_ns()
    batch = bus.MarketEvents()
    for symbol in symbols:
        event = batch.events.add(venue=venue, symbol=symbol, ts_event_ns=now, ts_recv_ns=now)
        event.notice.kind = md.NOTICE_KIND_GAP
        event.notice.channel = CHANNEL_TO_PB[channel]
        event.notice.reason = reason
        event.notice.since_ns = since_ns
    return batch.SerializeToString()


def opens_with_gap_notice(batch: bus.MarketEvents) -> bool:
    """Whether the first event is a GAP notice: how a venue that cannot resume a stream answers
    (its GAP notices come first). A GAP later in the message is not that answer: a message may
    join several of the venue's dispatches, and one of them may carry the venue's own GAP."""
    if not batch.events:
        return False
    first = batch.events[0]
    return first.HasField("notice") and first.notice.kind == md.NOTICE_KIND_GAP


def execution_gap_marker(venue: str, epoch: int, position: int, reason: str) -> bytes:
    """An encoded Executions saying executions may be missing before this point."""
    marker = bus.Executions(venue=venue, epoch=epoch, position=position, gap=True, gap_reason=reason)
    return marker.SerializeToString()
