"""Bars read from the bus through the engine: the changes they made, the live ones apart."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from trademesh.bus.v1 import bus_pb2 as bus
from trademesh.core.domain.convert import TIMEFRAME_TO_PB
from trademesh.core.domain.model import Timeframe
from trademesh.core.domain.regime import Regime
from trademesh.core.overwatch import metrics
from trademesh.core.overwatch.convert import candle_of, close_time_ns
from trademesh.core.overwatch.engine import Overwatch, RegimeChange
from trademesh.core.overwatch.feed import Read
from trademesh.core.platform.errors import InvalidArgument, ResourceExhausted

__all__ = ["Classified", "classify"]

log = logging.getLogger(__name__)


@dataclass
class Classified:
    """What one round of reads changed: `live` changes are news (published to the bus); `warm`
    ones replayed the history already on the streams (the board has them; the bus had them)."""

    live: list[RegimeChange] = field(default_factory=list)
    warm: list[RegimeChange] = field(default_factory=list)
    bars: int = 0


def classify(engine: Overwatch, timeframe: Timeframe, reads: Iterable[Read]) -> Classified:
    """Every bar of the timeframe in the reads through the engine, its close time as its time.
    A bad bar is counted and skipped: one venue's bad bar must not stop every market."""
    wanted = TIMEFRAME_TO_PB[timeframe]
    out = Classified()
    started, stale = time.perf_counter(), engine.stale_bars
    for read in reads:
        for bar in read.bars:
            if bar.timeframe != wanted:
                continue
            change = _one(engine, read, bar)
            out.bars += 1
            if change is not None:
                (out.warm if read.warm else out.live).append(change)
            metrics.BARS.labels(timeframe.label, str(read.warm).lower()).inc()
    metrics.CLASSIFY_SECONDS.inc(time.perf_counter() - started)
    metrics.STALE.inc(engine.stale_bars - stale)
    for warm, changes in (("true", out.warm), ("false", out.live)):
        for change in changes:
            metrics.CHANGES.labels(change.regime.value, warm).inc()
            _show(change)
    return out


def _show(change: RegimeChange) -> None:
    """The market's regime series moved from its previous regime to its new one."""
    key = change.key
    with contextlib.suppress(KeyError):  # no series of the previous regime: nothing to remove
        metrics.REGIME.remove(key.venue, key.symbol, key.timeframe, change.previous.value)
    metrics.REGIME.labels(key.venue, key.symbol, key.timeframe, change.regime.value).set(1)


def _one(engine: Overwatch, read: Read, bar: bus.Bar) -> RegimeChange | None:
    try:
        candle = candle_of(bar)
        markets = len(engine)
        change = engine.on_bar(bar.venue, bar.symbol, candle, close_time_ns(candle))
        if len(engine) > markets:  # a market's first bar: on the board, warming up
            metrics.REGIME.labels(bar.venue, bar.symbol, candle.timeframe.label, Regime.UNKNOWN.value).set(1)
        return change
    except InvalidArgument as exc:
        metrics.REFUSED.labels("invalid").inc()
        log.warning("overwatch: %s entry %s: a bar of %s %s refused: %s", read.stream, read.entry_id,
                    bar.venue, bar.symbol, exc)  # fmt: skip
    except ResourceExhausted as exc:
        metrics.REFUSED.labels("max_markets").inc()
        log.warning("overwatch: a bar of %s %s refused: %s", bar.venue, bar.symbol, exc)
    return None
