"""Ingest's Prometheus metrics: the venues this replica follows, and their handovers."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

__all__ = ["VENUES_HELD", "VENUE_CHANGES"]

VENUES_HELD = Gauge(
    "trademesh_ingest_venues_held", "Venues this ingest replica follows now (their leases held)."
)
VENUE_CHANGES = Counter(
    "trademesh_ingest_venue_changes_total",
    "Venues taken, given back (a replica joined), lost (another replica holds the lease) or "
    "dropped (the venue left the mesh or moved) by this replica (docs/scaling.md).",
    ["change"],
)
