"""The bar aggregator's Prometheus metrics."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

from trademesh.core.bars.engine import BarsOutput

__all__ = ["BARS", "REPAIRS_PENDING", "REPAIR_FAILURES", "STREAMS_HELD", "STREAM_CHANGES", "record"]

TRADES = Counter("trademesh_bars_trades_total", "Trades merged into bars.", ["venue"])
DUPLICATES = Counter(
    "trademesh_bars_duplicate_trades_total", "Trades dropped as copies of one already counted.", ["venue"]
)
LATE = Counter(
    "trademesh_bars_late_trades_total",
    "Trades that came after their bar closed: not merged; their bars are repaired from the venue.",
    ["venue"],
)
INVALID = Counter(
    "trademesh_bars_invalid_trades_total",
    "Trades refused: bad price or size, or an event time far ahead of the bus entry.",
    ["venue"],
)
GAPS = Counter("trademesh_bars_gap_markers_total", "GAP notices read from the trade streams.", ["venue"])
BARS = Counter("trademesh_bars_published_total", "Bars published.", ["timeframe", "repaired"])
REPAIR_FAILURES = Counter(
    "trademesh_bars_repair_failures_total", "Attempts to fetch a venue's candles that failed.", ["venue"]
)
REPAIRS_PENDING = Gauge(
    "trademesh_bars_repairs_pending", "Repairs due (bars closed) and not yet done.", ["venue"]
)
STREAMS_HELD = Gauge(
    "trademesh_bars_streams_held", "Trade streams this replica aggregates now (their leases held)."
)
STREAM_CHANGES = Counter(
    "trademesh_bars_stream_changes_total",
    "Trade streams taken, given back or lost by this replica (docs/bars.md, Replicas).",
    ["change"],
)
EVENT_TIME = Gauge(
    "trademesh_bars_event_time_seconds", "The latest trade event time seen per venue.", ["venue"]
)


def record(venue: str, output: BarsOutput, max_ts_ns: int) -> None:
    counts = output.counts
    for metric, value in ((TRADES, counts.trades), (DUPLICATES, counts.duplicates), (LATE, counts.late),
                          (INVALID, counts.invalid), (GAPS, counts.gaps)):  # fmt: skip
        if value:
            metric.labels(venue).inc(value)
    for timeframe, bars in output.bars.items():
        BARS.labels(timeframe.label, "false").inc(len(bars))
    EVENT_TIME.labels(venue).set(max_ts_ns / 1e9)
