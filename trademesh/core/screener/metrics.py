"""The Screener's Prometheus metrics. The cost of an evaluation is a rate of two counters:
rate(trademesh_screener_evaluation_seconds_total) / rate(trademesh_screener_evaluations_total)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

__all__ = [
    "DELISTED",
    "EVALUATIONS",
    "EVALUATION_SECONDS",
    "INSTRUMENTS",
    "SCREENS",
    "SEEDED_TICKERS",
    "SEED_FAILURES",
    "STREAMS",
    "UNDECODABLE",
    "WATCHERS",
]

EVALUATIONS = Counter("trademesh_screener_evaluations_total", "Screens evaluated.", ["screen"])
EVALUATION_SECONDS = Counter(
    "trademesh_screener_evaluation_seconds_total",
    "Wall seconds spent evaluating screens (the engine's evaluate): over evaluations_total, the cost of one.",
    ["screen"],
)
INSTRUMENTS = Counter(
    "trademesh_screener_instruments_total",
    "Instruments of a screen's universe per evaluation, by outcome: ranked, left_out (a metric "
    "missing), filtered_out.",
    ["screen", "outcome"],
)
UNDECODABLE = Counter(
    "trademesh_screener_undecodable_entries_total", "Bus entries skipped as not bars nor market events."
)
SCREENS = Gauge("trademesh_screener_screens", "Screens loaded.")
STREAMS = Gauge(
    "trademesh_screener_streams", "Bus streams followed (bars, tickers, funding rates, instrument changes)."
)
WATCHERS = Gauge("trademesh_screener_watchers", "Open StreamResults calls.")
DELISTED = Gauge(
    "trademesh_screener_delisted_symbols",
    "Symbols a screen venue delisted (md.{<venue>}.instruments): left out of its screens.",
    ["venue"],
)
SEEDED_TICKERS = Counter(
    "trademesh_screener_seeded_tickers_total",
    "Tickers taken from a venue's GetTickers (every price at once) while it had no fresh ticker on the bus.",
    ["venue"],
)
SEED_FAILURES = Counter(
    "trademesh_screener_seed_failures_total",
    "GetTickers calls to a screen venue without a fresh ticker that failed (not running, not serving it).",
    ["venue"],
)
