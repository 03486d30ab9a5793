"""A MarketData/Subscribe stream opened on a venue's fan-out: what its first message holds (GAP notices
for streams that stopped or cannot be resumed, book snapshots, REFUSED notices) and where it
starts (now, or after a resume point still held).

Served over gRPC (trademesh.venues.runtime.services) and, in process, to the venue's own bus writer
(trademesh.venues.runtime.direct): both get the same stream for the same request.
"""

from __future__ import annotations

from trademesh.core.domain.model import Channel, StreamKey
from trademesh.core.platform.rpc.fanout import Overflow
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.venues.runtime import validate
from trademesh.venues.runtime.fanout import MarketInterest, MarketSubscriber
from trademesh.venues.runtime.history import ResumePoint
from trademesh.venues.runtime.runtime import VenueRuntime
from trademesh.venues.runtime.stats import StreamState

__all__ = ["open_market_stream"]


def open_market_stream(rt: VenueRuntime, request: md.SubscribeRequest) -> MarketSubscriber:
    """A subscriber of the runtime's fan-out for `request` (validated: InvalidArgument,
    FailedPrecondition); the caller unsubscribes it when done."""
    rt.require_serving()
    asked = validate.subscribe_request(request, rt.instruments)
    # Before the books are read for its first message: a feed that was not encoding flushes what
    # it holds into them first (VenueRuntime.listen), so its snapshots and the deltas after follow.
    rt.listen()
    keys, inactive = rt.split_active(asked.keys)
    timeframe = asked.timeframe
    routes = frozenset(
        (k.symbol, k.channel, timeframe if k.channel is Channel.CANDLES else None) for k in keys
    )
    conflate = request.overflow_policy == md.OVERFLOW_POLICY_CONFLATE
    interest = MarketInterest(routes, Overflow.CONFLATE if conflate else Overflow.DISCONNECT)
    resume = _resume_point(rt, request)
    refused = _refused(rt, asked.unknown, inactive)
    initial = refused
    if resume is None:
        initial = _silent(rt, interest) + b"".join(rt.feed.snapshot_chunk(s) for s in interest.book_symbols)
        if request.HasField("resume"):
            initial = _lost(rt, request.resume, interest) + initial
        initial += refused
    return rt.fanout.subscribe(interest, initial, resume)


def _refused(
    rt: VenueRuntime, unknown: list[tuple[str, str]], inactive: list[tuple[StreamKey, str]]
) -> bytes:
    """A REFUSED notice per symbol not listed and per stream not carried: the subscriber
    learns what it will not get, and gets the rest (one bad symbol breaks no stream)."""
    chunks = [rt.feed.refused_chunk(symbol, None, why) for symbol, why in unknown]
    chunks += [rt.feed.refused_chunk(key.symbol, key.channel, why) for key, why in inactive]
    return b"".join(chunks)


def _resume_point(rt: VenueRuntime, request: md.SubscribeRequest) -> ResumePoint | None:
    """The point to resume from, when asked for and still held."""
    if not request.HasField("resume"):
        return None
    point = ResumePoint(request.resume.epoch, request.resume.position)
    return point if rt.fanout.history.can_resume(point) else None


def _silent(rt: VenueRuntime, interest: MarketInterest) -> bytes:
    """A GAP notice first for each asked stream that has stopped for good, gone stale, or whose
    book never got the venue's snapshot."""
    chunks = []
    for symbol, value in sorted({(s, c.value) for s, c, _ in interest.routes}):
        channel = Channel(value)
        stats = rt.streams.get(StreamKey(symbol, channel))
        if stats.state is StreamState.FAILED:
            chunks.append(rt.feed.gap_chunk(symbol, channel, f"stream stopped: {stats.detail}"))
        elif stats.state is StreamState.CONNECTED and stats.stale:
            chunks.append(rt.feed.gap_chunk(symbol, channel, f"stream stale: {stats.detail}"))
        if stats.incomplete and stats.state is not StreamState.FAILED:
            chunks.append(rt.feed.gap_chunk(symbol, channel, stats.incomplete_notice()))
    return b"".join(chunks)


def _lost(rt: VenueRuntime, asked: md.ResumePoint, interest: MarketInterest) -> bytes:
    """GAP notices for a stream that cannot be resumed (another process, or too long ago)."""
    reason = (
        f"cannot resume from position {asked.position} of epoch {asked.epoch}: this venue process "
        f"(epoch {rt.fanout.history.epoch}) no longer holds it; events may be missing"
    )
    streams = sorted({(symbol, channel.value) for symbol, channel, _ in interest.routes})
    return b"".join(rt.feed.gap_chunk(s, Channel(c), reason) for s, c in streams)
