"""The Screener's Prometheus metrics. The cost of an evaluation is a rate of two counters:
rate(trademesh_screener_evaluation_seconds_total) / rate(trademesh_screener_evaluations_total)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

__all__ = [
    "EVALUATIONS",
    "EVALUATION_SECONDS",
    "INSTRUMENTS",
    "SCREENS",
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
STREAMS = Gauge("trademesh_screener_streams", "Bus streams followed (bars and tickers).")
WATCHERS = Gauge("trademesh_screener_watchers", "Open StreamResults calls.")
