"""A venue's market feed without the fan-out, for unit tests of what a venue emits."""

from __future__ import annotations

from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.venues.runtime.fanout import MarketRoute
from trademesh.venues.runtime.feed import MarketFeed
from trademesh.venues.runtime.stats import StreamTable

__all__ = ["Sink", "new_feed", "taken"]


class Sink:
    """Stands in for the fan-out: keeps every event the feed flushes."""

    def __init__(self) -> None:
        self.events: list[md.MarketEvent] = []

    def dispatch(self, pending: dict[MarketRoute, bytes]) -> None:
        for chunk in pending.values():
            self.events.extend(md.SubscribeResponse.FromString(chunk).events)

    def kinds(self) -> list[str]:
        return [str(e.WhichOneof("payload")) for e in self.events]


def new_feed(venue: str = "test") -> tuple[MarketFeed, Sink]:
    """A feed of `venue` whose flushes land in the returned sink."""
    feed, sink = MarketFeed(venue, StreamTable()), Sink()
    feed.attach(sink)  # type: ignore[arg-type]
    return feed, sink


def taken(feed: MarketFeed, sink: Sink) -> list[md.MarketEvent]:
    """What the feed has, flushed and taken out of the sink."""
    feed.flush()
    events, sink.events = sink.events, []
    return events
