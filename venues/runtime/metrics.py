"""Prometheus metrics of a venue process, refreshed by the runtime's once-a-second sampler."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import Counter, Gauge

if TYPE_CHECKING:
    from venues.runtime.runtime import VenueRuntime

__all__ = ["VenueMetrics"]

EVENTS = Counter("trademesh_venue_events_total", "Market events published.", ("venue", "channel"))
EVENTS_PER_S = Gauge("trademesh_venue_events_per_second", "Market events per second.", ("venue", "channel"))
SUBSCRIBERS = Gauge("trademesh_venue_subscribers", "Open client streams.", ("venue", "kind"))
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
SLOW_SUBSCRIBERS = Counter(
    "trademesh_venue_slow_subscribers_total", "Subscribers that overflowed their queue.", ("venue", "action")
)


class VenueMetrics:
    def __init__(self, venue: str) -> None:
        self.venue = venue
        self._counted: dict[str, int] = {}
        self._dropped = 0
        self._conflated = 0

    def update(self, runtime: VenueRuntime) -> None:
        self._update_events(runtime)
        depths = [s.depth for s in runtime.fanout.subscribers]
        SUBSCRIBERS.labels(self.venue, "market_data").set(len(depths))
        SUBSCRIBERS.labels(self.venue, "executions").set(len(runtime.executions.subscribers))
        QUEUE_DEPTH_MAX.labels(self.venue).set(max(depths, default=0))
        QUEUED_BATCHES.labels(self.venue).set(sum(depths))
        dropped = runtime.fanout.dropped + runtime.executions.dropped
        SLOW_SUBSCRIBERS.labels(self.venue, "disconnected").inc(dropped - self._dropped)
        SLOW_SUBSCRIBERS.labels(self.venue, "conflated").inc(runtime.fanout.conflated - self._conflated)
        self._dropped, self._conflated = dropped, runtime.fanout.conflated

    def _update_events(self, runtime: VenueRuntime) -> None:
        totals: dict[str, int] = {}
        rates: dict[str, float] = {}
        for stats in runtime.streams.all():
            channel = stats.key.channel.value
            totals[channel] = totals.get(channel, 0) + stats.events_total
            rates[channel] = rates.get(channel, 0.0) + stats.events_per_s
        for channel, total in totals.items():
            EVENTS.labels(self.venue, channel).inc(total - self._counted.get(channel, 0))
            EVENTS_PER_S.labels(self.venue, channel).set(rates[channel])
        self._counted = totals
