"""Ingest's Prometheus metrics: the venues this replica follows, their handovers, what it publishes."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

__all__ = [
    "ACCOUNT_STREAM_LOSSES",
    "ACCOUNT_UPDATES",
    "INSTRUMENT_CHANGES",
    "INSTRUMENT_READS",
    "PUBLISHED",
    "VENUES_HELD",
    "VENUE_CHANGES",
]

VENUES_HELD = Gauge(
    "trademesh_ingest_venues_held", "Venues this ingest replica follows now (their leases held)."
)
VENUE_CHANGES = Counter(
    "trademesh_ingest_venue_changes_total",
    "Venues taken, given back (a replica joined), lost (another replica holds the lease) or "
    "dropped (the venue left the mesh or moved) by this replica (docs/scaling.md).",
    ["change"],
)
# Its work, as the services board counts it (docs/operations.md, "The services board").
PUBLISHED = Counter(
    "trademesh_ingest_published_total",
    "Bus entries published (market event batches, execution batches, gap markers), by venue.",
    ["venue"],
)
INSTRUMENT_READS = Counter(
    "trademesh_ingest_instrument_reads_total",
    "Reads of a venue's instrument list (MarketData.ListInstruments) into md.{<venue>}.instruments, "
    "by venue and result (read, failed).",
    ["venue", "result"],
)
INSTRUMENT_CHANGES = Counter(
    "trademesh_ingest_instrument_changes_total",
    "Instrument changes published on md.{<venue>}.instruments, by venue and change (listed, "
    "delisted, changed).",
    ["venue", "change"],
)
ACCOUNT_UPDATES = Counter(
    "trademesh_ingest_account_updates_total",
    "Entries published on account.{<venue>} (the venue's StreamAccount), by venue and update "
    "(snapshot, change).",
    ["venue", "update"],
)
ACCOUNT_STREAM_LOSSES = Counter(
    "trademesh_ingest_account_stream_losses_total",
    "A venue's StreamAccount lost (or refused: a venue without an account), by venue.",
    ["venue"],
)
