"""The inspector's Prometheus metrics
(served on the service's metrics port, trademesh.core.platform.service.lifecycle)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

__all__ = [
    "ACCOUNT_LAG",
    "ACCOUNT_READS",
    "ACCOUNT_STREAM_LOSSES",
    "ACCOUNT_STREAM_UP",
    "DIVERGENCES",
    "FOLLOWED_MARKETS",
    "FOLLOWED_VENUES",
    "INTENT_TO_ACK",
    "QUOTE_AS_OF_LATEST",
    "RECONCILIATIONS",
    "REFUSED_MARKETS",
    "STATE",
    "VENUE_CALLS",
    "VERDICTS",
]

_BUCKETS = (
    0.0005, 0.001, 0.002, 0.003, 0.004, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
)  # fmt: skip

VERDICTS = Counter("trademesh_inspector_verdicts_total", "Intents checked, by action.", ["action"])
VENUE_CALLS = Counter(
    "trademesh_inspector_venue_calls_total", "Order calls to venues, by venue, call and outcome.",
    ["venue", "call", "outcome"],
)  # fmt: skip
INTENT_TO_ACK = Histogram(
    "trademesh_inspector_intent_to_ack_seconds",
    "From an intent read to its order acknowledged by the venue (ALLOW only).",
    buckets=_BUCKETS,
)
ACCOUNT_LAG = Histogram(
    "trademesh_inspector_account_lag_seconds",
    "From a venue's account change (its as_of_ns) to the change heard on its account stream, by venue.",
    ["venue"],
    buckets=_BUCKETS,
)
# By venue, for the alerts AccountStreamDown and AccountStreamLagHigh (docs/alerts.md): one
# venue's stream down is the others' business not at all.
ACCOUNT_STREAM_UP = Gauge(
    "trademesh_inspector_account_stream_up",
    "1 while a venue's account stream is live (its snapshot heard), 0 while it is not and the "
    "reconciliation asks the venue instead.",
    ["venue"],
)
ACCOUNT_STREAM_LOSSES = Counter(
    "trademesh_inspector_account_stream_losses_total",
    "A venue's account stream lost (failed, refused or ended by the venue), each before a retry.",
    ["venue"],
)
ACCOUNT_READS = Counter(
    "trademesh_inspector_account_reads_total",
    "A venue's positions or balances read for the reconciliation, by where from (stream or asked).",
    ["what", "source"],
)
STATE = Gauge("trademesh_inspector_state", "1 for the state the inspector is in.", ["state"])
QUOTE_AS_OF_LATEST = Counter(
    "trademesh_inspector_quote_as_of_latest_total",
    "Intents with a signal time checked against the latest quote, not the quote as of that time: "
    "the market's quotes kept by event time did not reach back to it.",
)
FOLLOWED_MARKETS = Gauge(
    "trademesh_inspector_followed_markets",
    "Markets whose prices the inspector follows now: those it holds a position or an order in, "
    "those the active patches trade, and at most a bounded number of others intents asked about.",
)
FOLLOWED_VENUES = Gauge(
    "trademesh_inspector_followed_venues", "Venues whose market stream the inspector holds open now."
)
RECONCILIATIONS = Counter(
    "trademesh_inspector_reconciliations_total",
    "Reconciliations run: every venue's positions and open orders compared with the book.",
)
DIVERGENCES = Gauge(
    "trademesh_inspector_divergences",
    "Divergences found by the reconciliation and standing now: check position, venues stood down "
    "(a position differs from the book); check ledger, assets whose venue balance differs from "
    "the ledger's books.",
    # Not "kind": service discovery gives every target a `kind` label, which would rename it.
    ["check"],
)
REFUSED_MARKETS = Counter(
    "trademesh_inspector_refused_markets_total",
    "Markets dropped from a venue's market stream: the venue does not list the symbol.",
)
