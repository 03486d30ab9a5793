"""Prometheus metrics of the bridge (the bus consumer exports its own lag and pending counts)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

__all__ = ["BOOK_HOLES", "EVENTS", "QUEUE_DEPTH_MAX", "SLOW_SUBSCRIBERS", "SUBSCRIBERS"]

EVENTS = Counter("trademesh_bridge_events_total", "Market events and bars taken from the bus.")
SUBSCRIBERS = Gauge("trademesh_bridge_subscribers", "Open Subscribe streams.")
QUEUE_DEPTH_MAX = Gauge(
    "trademesh_bridge_subscriber_queue_depth_max", "Deepest subscriber queue, in messages."
)
SLOW_SUBSCRIBERS = Counter(
    "trademesh_bridge_slow_subscribers_total", "Subscribers that overflowed their queue.", ("action",)
)
BOOK_HOLES = Counter(
    "trademesh_bridge_book_holes_total", "Book deltas on the bus that did not follow the bridge's book."
)
