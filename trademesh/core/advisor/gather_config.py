"""What the advisor's context gatherer reads and how fresh (trademesh.core.advisor.gather): a light
module, so the advisor's config (and a backtest's) does not load the gatherer."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from trademesh.core.platform.config.flags import setting
from trademesh.core.platform.service.command import positive_int

__all__ = ["GatherConfig", "history_ms"]


def history_ms(text: str) -> int:
    """--history-ms: 0 to 60000 ms."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of ms") from None
    if not 0 <= value <= 60_000:
        raise argparse.ArgumentTypeError(f"{value} is out of range: 0 to 60000")
    return value


@dataclass(frozen=True)
class GatherConfig:
    timeframe: str = "1m"  # the bars' timeframe ("" in a service config: the model's)
    # Closed bars in the context for its stages, and the quality gate's window.
    bars: int = setting(60, type=positive_int, help="closed bars in the context")
    # Bars kept behind them for the regime (the engine's regime.window_bars: the service sets it).
    regime_bars: int = 700
    book_ms: int = 200
    account_ms: int = 1000
    signals_ms: int = 1000
    gaps_ms: int = 1000
    status_ms: int = 1000
    instrument_ms: int = 60_000
    idle_s: float = 300.0  # a market without a signal this long is no longer followed
    # Markets followed at once beyond those kept (the active patches'): past it, the one without
    # a signal for the longest is no longer followed (no stream of requests follows without bound).
    most_markets: int = 64
    # The world kept by event time, to decide a signal on the world as of its time: a
    # signal older than this is decided on the latest (counted). 0: always on the latest (no
    # book subscription, no fills read).
    history_ms: int = setting(
        5000,
        type=history_ms,
        help="decide a signal on the world as of its event time when it is at most this old (its "
        "book top, bars, account); older, or 0: on the latest (default {default}; docs/advisor.md)",
    )
    window_s: float = 300.0  # reconnects and resyncs counted over this
