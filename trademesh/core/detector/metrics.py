"""The detector's Prometheus metrics
(served on the service's metrics port, trademesh.core.platform.service.lifecycle).

The hot path: from the venue's receive stamp (`ts_recv_ns`) of a timestamp's events to the
shell's clock right after `evaluate_due` returned for that timestamp (trademesh.core.detector.runner
releases market data one timestamp at a time, after its hold). Observed once per timestamp,
for its newest event and for its oldest. The stream part (the venue's stamp of a batch's newest
event to the detector having the batch decoded) and the detector's own part (from having the
batch to the end of the evaluation: the hold, conversion, feed, evaluation) tell the venue and
transport from the detector's work. Counting costs one call per timestamp or batch, never one
per event.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

__all__ = [
    "EVALUATIONS",
    "EVENTS",
    "HOT_PATH",
    "HOT_PATH_NEWEST",
    "HOT_PATH_OLDEST",
    "LATE_EVENTS",
    "MARKET_EVENTS",
    "PROCESSING",
    "REGIMES",
    "SCREEN_PATCHES",
    "SCREEN_RESULTS",
    "SIGNALS",
    "SLOW_STEPS",
    "STREAM",
    "WITHHELD",
]

# Fine below 10 ms (the goal), coarse up to 10 s (a stall).
_BUCKETS = (
    0.0001, 0.00025, 0.0005, 0.00075, 0.001, 0.0015, 0.002, 0.0025, 0.003, 0.004, 0.005, 0.006,
    0.0075, 0.01, 0.0125, 0.015, 0.02, 0.025, 0.03, 0.04, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0,
    2.5, 5.0, 10.0,
)  # fmt: skip

HOT_PATH = Histogram(
    "trademesh_detector_hot_path_seconds",
    "From the venue's receive stamp of a batch's newest (or oldest) event to the end of the "
    "evaluation that took it, once per batch.",
    ["event"],
    buckets=_BUCKETS,
)
HOT_PATH_NEWEST = HOT_PATH.labels("newest")
HOT_PATH_OLDEST = HOT_PATH.labels("oldest")
STREAM = Histogram(
    "trademesh_detector_stream_seconds",
    "From the venue's receive stamp of a batch's newest event to the detector having the batch.",
    buckets=_BUCKETS,
)
PROCESSING = Histogram(
    "trademesh_detector_processing_seconds",
    "From the detector having a batch (decoded) to the end of the evaluation that took it.",
    buckets=_BUCKETS,
)
MARKET_EVENTS = Counter(
    "trademesh_detector_market_events_total", "Market events received from the venues' streams."
)
EVENTS = Counter(
    "trademesh_detector_events_total",
    "Engine events fed (each trade; one book per symbol and batch, the latest).",
)
EVALUATIONS = Counter("trademesh_detector_evaluations_total", "Patch evaluations run (bursts and ticks).")
SIGNALS = Counter("trademesh_detector_signals_total", "Signals emitted.")
SLOW_STEPS = Counter(
    "trademesh_detector_slow_module_steps_total",
    "Module steps that took longer than the module budget (--module-budget-us): a missed deadline.",
)
LATE_EVENTS = Counter(
    "trademesh_detector_late_events_total",
    "Market events that came after their time had been released (later than the hold): fed at "
    "the time already reached, where a backtest feeds them at their own.",
)
REGIMES = Counter(
    "trademesh_detector_regimes_total",
    "Regime changes heard from Overwatch's stream regimes.1m (start: each market's latest at start; "
    "live: the changes after it), and entries skipped as no Envelope of regime changes (skipped).",
    ["read"],
)
SCREEN_RESULTS = Counter(
    "trademesh_detector_screen_results_total",
    "Results heard from the Screener's streams screens.<name> of the screens the screen-driven "
    "strategies follow (start: those retained, read at start; live: after it), and entries skipped "
    "as no Envelope of a screen result (skipped).",
    ["read"],
)
SCREEN_PATCHES = Counter(
    "trademesh_detector_screen_patches_total",
    "Patches of screen-driven strategies started (a symbol entered the set), retired (it left, its "
    "position flat) and kept leaving (it left with a position open: entries muted until flat); and "
    "signals muted (the entries of leaving patches).",
    ["strategy", "change"],
)

WITHHELD = Counter(
    "trademesh_detector_withheld_total",
    "Signals and position requests not emitted: their market is delisted (md.{<venue>}.instruments).",
)
