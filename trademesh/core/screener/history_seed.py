"""The Screener's windows seeded from history before the bus is read (docs/screener.md,
"Warm-up"): for each venue and timeframe the screens read, every symbol the recorder holds bars
of (History.GetCoverage through the gateway), its last bars closed by the start (GetBars:
recorded, imported or downloaded alike; trademesh.core.platform.warm_history). The bar streams read
after it give the rest: a bar of an open time seeded replaces the seeded one (MarketState.add_bar),
so history and the bus agree where they meet. No gateway configured, or one that cannot answer
(a line in the log): the windows fill from the bus alone, as before."""

from __future__ import annotations

import logging
from functools import partial

from trademesh.core.domain.model import Timeframe
from trademesh.core.platform.errors import InvalidArgument
from trademesh.core.platform.warm_history import HeldHistory, bus_bar, gathered
from trademesh.core.screener import metrics
from trademesh.core.screener.convert import candle_of
from trademesh.core.screener.state import MarketState

__all__ = ["seed_from_history"]

log = logging.getLogger(__name__)


async def seed_from_history(history: HeldHistory, state: MarketState, now_ns: int) -> int:
    """The held bars of each (venue, timeframe) the screens read into `state`: each symbol's
    last `keep` bars closed by `now_ns`. The bars seeded."""
    if history.gateway is None:
        return 0
    seeded = 0
    for (venue, timeframe), keep in sorted(state.keep.items(), key=lambda item: (item[0][0], item[0][1].ns)):
        end = timeframe.open_time_ns(now_ns)  # the bars closed by now open before it
        start = end - keep * timeframe.ns
        held = await history.series(timeframe, venue)
        if held is None:
            return seeded  # the gateway away: said once; the bus has the rest
        symbols = [s.symbol for s in held if s.end_ns > start]
        label = timeframe.label
        if not symbols:
            log.info("screener: history holds no %s bars of %s since the windows' start", label, venue)
            continue
        calls = [partial(_seed, history, state, venue, symbol, timeframe, start, end) for symbol in symbols]
        count = sum(await gathered(calls))
        seeded += count
        log.info("screener: %d %s bars of %d %s symbols from history", count, label, len(symbols), venue)
    return seeded


async def _seed(
    history: HeldHistory,
    state: MarketState,
    venue: str,
    symbol: str,
    timeframe: Timeframe,
    start: int,
    end: int,
) -> int:
    candles = await history.bars(venue, symbol, timeframe, start, end)
    count = 0
    for candle in candles or ():
        try:
            bar = candle_of(bus_bar(venue, symbol, candle))
        except InvalidArgument:
            metrics.UNDECODABLE.inc()
            continue
        count += state.add_bar(venue, symbol, bar)
    return count
