"""The advisor's Prometheus metrics
(served on the service's metrics port, trademesh.core.platform.service.lifecycle)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

__all__ = [
    "AS_OF_LATEST",
    "CONTEXT",
    "DEADLINE_MISSES",
    "DECISIONS",
    "FOLLOWED_MARKETS",
    "FOLLOWED_VENUES",
    "IN_FLIGHT",
    "LLM",
    "SIGNAL_TO_DECISION",
    "STALE",
]

# Fine around the 5 ms goal, coarse up to a slow LLM's 30 s.
_BUCKETS = (
    0.0005, 0.001, 0.002, 0.003, 0.004, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0, 30.0,
)  # fmt: skip

DECISIONS = Counter("trademesh_advisor_decisions_total", "Decisions published, by outcome.", ["outcome"])
SIGNAL_TO_DECISION = Histogram(
    "trademesh_advisor_signal_to_decision_seconds",
    "From the signal (its ts_signal_ns, or when the advisor read it) to its decision on the bus.",
    ["since"],
    buckets=_BUCKETS,
)
CONTEXT = Histogram(
    "trademesh_advisor_context_seconds", "Gathering a signal's context through the tools.", buckets=_BUCKETS
)
LLM = Histogram(
    "trademesh_advisor_llm_seconds", "One LLM synthesis, every model and retry.", buckets=_BUCKETS
)
DEADLINE_MISSES = Counter(
    "trademesh_advisor_llm_deadline_misses_total",
    "Decisions made without the LLM's answer: it did not come within the deadline (--deadline-ms).",
)
IN_FLIGHT = Gauge("trademesh_advisor_llm_in_flight", "Decisions waiting for the LLM.")
STALE = Counter(
    "trademesh_advisor_stale_signals_total", "Signals older than the age limit when read: not decided."
)
AS_OF_LATEST = Counter(
    "trademesh_advisor_as_of_latest_total",
    "Signals whose context part was the latest, not as of their event time, by why: old (older "
    "than the history kept), book (no book top kept by then), account (the fills between not all "
    "known), account_time (an account answer without the venue's time: stamped when it came).",
    ["why"],
)
FOLLOWED_MARKETS = Gauge(
    "trademesh_advisor_followed_markets",
    "Markets whose context the advisor keeps now: those the active patches trade, and at most a "
    "bounded number of others signals asked about, each dropped when idle.",
)
FOLLOWED_VENUES = Gauge(
    "trademesh_advisor_followed_venues", "Venues whose parts (account, status, books) the advisor keeps now."
)
