"""Overwatch's markets warmed from history before the bus is read (docs/overwatch.md, "Warm-up"):
every market of its timeframe the recorder holds bars of (History.GetCoverage through the
gateway), its last bars closed by the start (GetBars: recorded, imported or downloaded alike;
trademesh.core.platform.warm_history), as many as the classifier's longest memory, through the engine
as warm-up (their changes are history: not published one by one; the leader, once warm,
publishes what the bus is owed, trademesh.core.overwatch.resume). The bar streams read after it give the
rest: a streamed bar not after a market's last seeded one is skipped (`Seeded.after`), not
counted stale. No gateway configured, or one that cannot answer (a line in the log): the markets
warm from the streams alone, as before."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial

from trademesh.core.domain.model import Timeframe
from trademesh.core.domain.regime import ClassifierConfig
from trademesh.core.overwatch.classify import Classified, classify
from trademesh.core.overwatch.engine import Overwatch
from trademesh.core.overwatch.feed import Read
from trademesh.core.platform.warm_history import HeldHistory, bus_bar, gathered

__all__ = ["HISTORY_STREAM", "Seeded", "seed_from_history", "warm_bars_needed"]

log = logging.getLogger(__name__)

# What a seeded read names as its stream (log lines of a refused bar).
HISTORY_STREAM = "history"


def warm_bars_needed(config: ClassifierConfig) -> int:
    """Bars a market is warmed with: its warm-up and its long-run levels' memory."""
    return max(config.warmup_bars, config.vol_long_bars, config.volume_long_bars)


@dataclass
class Seeded:
    """The last bar seeded of each (venue, symbol): the streams' bars up to it were had."""

    last: dict[tuple[str, str], int] = field(default_factory=dict)
    classified: Classified = field(default_factory=Classified)

    def after(self, reads: Sequence[Read]) -> list[Read]:
        """`reads` without the bars of a market at or before its last seeded bar."""
        if not self.last:
            return list(reads)
        out = []
        for read in reads:
            bars = tuple(
                bar for bar in read.bars if bar.open_time_ns > self.last.get((bar.venue, bar.symbol), -1)
            )
            if bars:
                out.append(Read(read.stream, read.entry_id, bars, read.warm))
        return out


async def seed_from_history(
    history: HeldHistory, engine: Overwatch, timeframe: Timeframe, config: ClassifierConfig, now_ns: int
) -> Seeded:
    """Each held market's last bars closed by `now_ns` through `engine` as warm-up."""
    seeded = Seeded()
    if history.gateway is None:
        return seeded
    end = timeframe.open_time_ns(now_ns)  # the bars closed by now open before it
    start = end - warm_bars_needed(config) * timeframe.ns
    held = await history.series(timeframe)
    if held is None:
        return seeded  # the gateway away: said once; the streams have the rest
    markets = [(s.venue, s.symbol) for s in held if s.end_ns > start]
    if not markets:
        log.info("overwatch: history holds no %s bars since the warm-up's start", timeframe.label)
        return seeded
    calls = [partial(history.bars, venue, symbol, timeframe, start, end) for venue, symbol in markets]
    reads = []
    for (venue, symbol), candles in zip(markets, await gathered(calls), strict=True):
        if not candles:
            continue
        bars = tuple(bus_bar(venue, symbol, candle) for candle in candles)
        reads.append(Read(HISTORY_STREAM, "0-0", bars, warm=True))
        seeded.last[(venue, symbol)] = bars[-1].open_time_ns
    seeded.classified = classify(engine, timeframe, reads)
    log.info(
        "overwatch: %d %s bars of %d markets from history",
        seeded.classified.bars, timeframe.label, len(seeded.last),
    )  # fmt: skip
    return seeded
