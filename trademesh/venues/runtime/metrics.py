"""Prometheus metrics of a venue process, refreshed by the runtime's once-a-second sampler.

The streams' states and their reconnect, resync and checksum counts are summed per channel, not
per symbol: an alert names the venue and channel, and Admin.GetStatus names the symbols."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from prometheus_client import Counter, Gauge

from trademesh.venues.runtime.stats import StreamState, StreamStats

if TYPE_CHECKING:
    from trademesh.venues.runtime.runtime import VenueRuntime

__all__ = ["BUS_PUBLISHED", "STREAM_STATES", "VenueMetrics", "stream_state"]

EVENTS = Counter("trademesh_venue_events_total", "Market events published.", ("venue", "channel"))
EVENTS_PER_S = Gauge("trademesh_venue_events_per_second", "Market events per second.", ("venue", "channel"))
SUBSCRIBERS = Gauge("trademesh_venue_subscribers", "Open client streams, by feed.", ("venue", "feed"))
QUEUE_DEPTH_MAX = Gauge(
    "trademesh_venue_subscriber_queue_depth_max",
    "Deepest market-data subscriber queue, in batches.",
    ("venue",),
)
# Not "..._sum": Prometheus reserves that suffix for histograms and summaries (promtool).
QUEUED_BATCHES = Gauge(
    "trademesh_venue_subscriber_queued_batches",
    "Batches queued over all market-data subscribers.",
    ("venue",),
)
# The direct path (trademesh/venues/runtime/direct.py): its work, as the services board counts ingest's.
BUS_PUBLISHED = Counter(
    "trademesh_venue_bus_published_total",
    "Bus entries the venue wrote itself (--bus-direct): market event batches, executions, funding "
    "payments, gap markers.",
    ("venue",),
)
SLOW_SUBSCRIBERS = Counter(
    "trademesh_venue_slow_subscribers_total", "Subscribers that overflowed their queue.", ("venue", "action")
)
STREAMS = Gauge(
    "trademesh_venue_streams",
    "Upstream streams by state, as Admin.GetStatus shows them (stale and incomplete: connected, but "
    "silent too long or without the venue's snapshot).",
    ("venue", "channel", "state"),
)
RECONNECTS = Counter(
    "trademesh_venue_stream_reconnects_total", "Upstream stream reconnects.", ("venue", "channel")
)
RESYNCS = Counter(
    "trademesh_venue_stream_resyncs_total", "Books resynchronised from a new snapshot.", ("venue", "channel")
)
CHECKSUM_MISMATCHES = Counter(
    "trademesh_venue_stream_checksum_mismatches_total",
    "Book checksums that did not match the venue's (each followed by a resync).",
    ("venue", "channel"),
)
DEAD_MAN_TRIPS = Counter(
    "trademesh_venue_dead_man_trips_total", "Dead-man switch trips: heartbeats stopped.", ("venue",)
)
FILLS = Counter("trademesh_venue_fills_total", "Executions carrying a fill, published.", ("venue",))
LIQUIDATIONS = Counter(
    "trademesh_venue_liquidation_fills_total",
    "Fills of the account's positions closed by the venue's liquidation (Fill.liquidation).",
    ("venue", "symbol"),
)

STREAM_STATES = ("connecting", "connected", "stale", "incomplete", "disconnected", "stopped", "failed")
# Counters whose series exist at 0 from the first sample: increase() sees their first step.
_STREAM_COUNTS = (
    (RECONNECTS, "reconnects"), (RESYNCS, "resyncs"), (CHECKSUM_MISMATCHES, "checksum_mismatches"),
)  # fmt: skip


def stream_state(stats: StreamStats) -> str:
    """The state Admin.GetStatus shows (trademesh.venues.runtime.services: _stream_state)."""
    if stats.state is StreamState.CONNECTED and stats.stale:
        return "stale"
    if stats.state is StreamState.CONNECTED and stats.incomplete:
        return "incomplete"
    return stats.state.value


class VenueMetrics:
    def __init__(self, venue: str) -> None:
        self.venue = venue
        self._counted: dict[tuple[str, str], int] = {}
        self._dropped = 0
        self._conflated = 0
        self._trips = 0
        self._fills = FILLS.labels(venue)
        DEAD_MAN_TRIPS.labels(venue)

    def update(self, runtime: VenueRuntime) -> None:
        self.update_streams(runtime.streams.all())
        self.update_dead_man(runtime.deadman.trips)
        depths = [s.depth for s in runtime.fanout.subscribers]
        SUBSCRIBERS.labels(self.venue, "market_data").set(len(depths))
        SUBSCRIBERS.labels(self.venue, "executions").set(len(runtime.executions.subscribers))
        QUEUE_DEPTH_MAX.labels(self.venue).set(max(depths, default=0))
        QUEUED_BATCHES.labels(self.venue).set(sum(depths))
        dropped = runtime.fanout.dropped + runtime.executions.dropped
        SLOW_SUBSCRIBERS.labels(self.venue, "disconnected").inc(dropped - self._dropped)
        SLOW_SUBSCRIBERS.labels(self.venue, "conflated").inc(runtime.fanout.conflated - self._conflated)
        self._dropped, self._conflated = dropped, runtime.fanout.conflated

    def fill(self, symbol: str, liquidation: bool) -> None:
        self._fills.inc()
        if liquidation:
            LIQUIDATIONS.labels(self.venue, symbol).inc()

    def update_dead_man(self, trips: int) -> None:
        DEAD_MAN_TRIPS.labels(self.venue).inc(trips - self._trips)
        self._trips = trips

    def update_streams(self, streams: Iterable[StreamStats]) -> None:
        totals: dict[tuple[str, str], int] = {}
        rates: dict[str, float] = {}
        states: dict[tuple[str, str], int] = {}
        for stats in streams:
            channel = stats.key.channel.value
            rates[channel] = rates.get(channel, 0.0) + stats.events_per_s
            for name in ("events_total", *(field for _, field in _STREAM_COUNTS)):
                totals[(channel, name)] = totals.get((channel, name), 0) + getattr(stats, name)
            key = (channel, stream_state(stats))
            states[key] = states.get(key, 0) + 1
        for channel, rate in rates.items():
            EVENTS_PER_S.labels(self.venue, channel).set(rate)
            self._count(EVENTS, channel, totals[(channel, "events_total")], "events_total")
            for metric, field in _STREAM_COUNTS:
                self._count(metric, channel, totals[(channel, field)], field)
            for shown in STREAM_STATES:
                STREAMS.labels(self.venue, channel, shown).set(states.get((channel, shown), 0))

    def _count(self, metric: Counter, channel: str, total: int, field: str) -> None:
        metric.labels(self.venue, channel).inc(total - self._counted.get((channel, field), 0))
        self._counted[(channel, field)] = total
