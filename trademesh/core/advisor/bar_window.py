"""A market's closed bars as the advisor's context keeps them: the newest `bars` (60) for the
stages that read a few (features, stop and target, the request) and the quality gate's window,
and behind them as many as the regime reads (`regime_bars`, 700: trademesh.core.advisor.engine.regime).

The long window is read whole (`latest_bars` of every bar) when a market is followed and then
every WHOLE_EVERY_S; a refresh in between reads only the newest `bars` (and the few kept for
signals decided as of an earlier time) and keeps the older ones, the same Candle objects (the
regime reader then takes a new bar as one update, seeing the rest unchanged). Reading 700 bars
every few seconds per market costs the recorder's and the parsing's CPU for bars that do not
change; the periodic whole read brings in what did change among the older ones (a gap repaired
from the venue's candles long after).
"""

from __future__ import annotations

from trademesh.core.advisor.engine.context import GapMarker
from trademesh.core.domain.model import Candle

__all__ = ["WHOLE_EVERY_S", "Bars", "closed_by", "spliced"]

Bars = tuple[tuple[Candle, ...], tuple[GapMarker, ...]]  # closed bars, the repaired ones' gaps
WHOLE_EVERY_S = 300.0  # between two reads of the whole window


def spliced(kept: Bars, fetched: Bars, most: int) -> Bars | None:
    """The fetched newest bars behind the kept ones that open before the first of them, the last
    `most`, with the fetched repaired bars' gaps (the quality gate's window is within them). None
    when the fetched bars do not reach back to the last kept one: bars may be missing between
    (the window must be read whole)."""
    old, new = kept[0], fetched[0]
    if not new or not old:
        return fetched
    first = new[0].open_time_ns
    if first > old[-1].open_time_ns:
        return None
    older = tuple(c for c in old if c.open_time_ns < first)
    return (older + new)[-most:], fetched[1]


def closed_by(bars: Bars, as_of_ns: int | None, kept: int, window: int | None = None) -> Bars:
    """The last `kept` bars closed before `as_of_ns` and the repaired gaps of their last `window`
    (all `kept` without one); the last `kept` of them all without a time. Before, not at: a
    backtest steps a clock tick at T before the events and bars of T (trademesh.core.detector.sequence), so
    a signal of the tick at a bar's close is decided without that bar (an event exactly at a
    bar's close, the one case that differs, does not happen on a ns clock)."""
    candles, repaired = bars
    if as_of_ns is not None and candles:
        step = candles[0].timeframe.ns
        end = len(candles)  # oldest first: those closing after the time are the last few
        while end and candles[end - 1].open_time_ns + step >= as_of_ns:
            end -= 1
        candles = candles[:end]
    candles = candles[-kept:] if kept > 0 else ()
    if not candles:
        return (), ()
    first = candles[-min(len(candles), window or kept)].open_time_ns
    last = candles[-1].open_time_ns
    return candles, tuple(g for g in repaired if first <= g.start_ns <= last)
