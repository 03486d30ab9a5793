"""Overwatch's Prometheus metrics. The cost per bar is a rate of two counters:
rate(trademesh_overwatch_classify_seconds_total) / rate(trademesh_overwatch_bars_total)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

__all__ = [
    "BARS", "CHANGES", "CLASSIFY_SECONDS", "MARKETS", "OVERVIEW_GATHERINGS", "OVERVIEW_LISTENERS", "REFUSED",
    "REGIME", "STALE", "STREAMS", "WATCHERS",
]  # fmt: skip

BARS = Counter(
    "trademesh_overwatch_bars_total", "Closed bars classified (the warm-up's too).", ["timeframe", "warm"]
)
STALE = Counter(
    "trademesh_overwatch_stale_bars_total",
    "Bars dropped as not after their market's last one (a redelivery, a replay's overlap).",
)
REFUSED = Counter(
    "trademesh_overwatch_refused_bars_total",
    "Bars refused: not a valid bar, or a new market past max_markets.",
    ["reason"],
)
CHANGES = Counter(
    "trademesh_overwatch_changes_total",
    "Regime changes (the warm-up's too), by new regime.",
    ["regime", "warm"],
)
CLASSIFY_SECONDS = Counter(
    "trademesh_overwatch_classify_seconds_total",
    "Wall seconds spent classifying bars (the engine's on_bar): over bars_total, the cost per bar.",
)
MARKETS = Gauge("trademesh_overwatch_markets", "Markets with a regime on the board.")
STREAMS = Gauge("trademesh_overwatch_bar_streams", "Bar streams followed.")
# A state set: 1 on each market's current regime, its other regimes' series removed, so there is
# one series per market (at most max_markets); "unknown" while the market warms up. Dashboards
# count markets by regime and list them per venue (ops/grafana/dashboards/venue.json).
REGIME = Gauge(
    "trademesh_overwatch_regime",
    "1 for each market's current regime (one series per market; unknown while it warms up).",
    ["venue", "symbol", "timeframe", "regime"],
)
WATCHERS = Gauge("trademesh_overwatch_watchers", "Open StreamRegimes calls.")
# One gathering each --overview-every-s while any StreamOverview is open, whatever their number
# (trademesh.core.overwatch.overview_feed): its rate is the overview's cost, not the subscribers'.
OVERVIEW_GATHERINGS = Counter(
    "trademesh_overwatch_overview_gatherings_total",
    "Overviews gathered (the inspector, ledger and detectors asked once, for every StreamOverview).",
)
OVERVIEW_LISTENERS = Gauge("trademesh_overwatch_overview_listeners", "Open StreamOverview calls.")
