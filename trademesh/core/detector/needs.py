"""What a patch's bar sources need to start (how many closed bars of which venue, symbol and
timeframe), and which bars they warm from: the live detector fetches them
(trademesh.core.detector.history), a backtest chooses them among its recorded bars; both select alike
(warm_bars). Pure: no I/O, so a backtest meets it without gRPC."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import NamedTuple

from trademesh.core.detector.engine.engine import Engine
from trademesh.core.detector.engine.io import Event, event_time
from trademesh.core.detector.engine.values import BarValue
from trademesh.core.domain.model import Timeframe

__all__ = ["BarNeed", "bar_needs", "patch_history", "warm_bars"]

_BAR_SOURCES = ("trade_bars", "bars")


class BarNeed(NamedTuple):
    """How many closed bars of a symbol and timeframe a bar source of a patch needs to start."""

    venue: str
    symbol: str
    timeframe: Timeframe
    bars: int


def bar_needs(engine: Engine, patch_id: str) -> list[BarNeed]:
    """What each bar source of the patch needs (a backtest reads it from recorded bars)."""
    patch = engine.patch(patch_id)
    needs = []
    for module_id, need in engine.history_needed(patch_id).items():
        node = patch.graph.nodes[module_id]
        if node.spec.type not in _BAR_SOURCES or need <= 0:
            continue
        venue = str(node.params.get("venue") or patch.venue)
        symbol = str(node.params.get("symbol") or patch.symbol)
        timeframe = Timeframe.from_label(str(node.params.get("timeframe", "1m")))
        needs.append(BarNeed(venue, symbol, timeframe, need))
    return needs


def warm_bars(bars: Sequence[BarValue], count: int, timeframe: Timeframe, now_ns: int) -> list[BarValue]:
    """The bars a source needing `count` warms from: opened in the window of `count` + 2 bars
    before `now_ns` and closed by it, the last `count` of them. Live (the venue's candles) and a
    backtest (the recorded bars) select alike."""
    start = now_ns - (count + 2) * timeframe.ns
    chosen = [b for b in bars if b.open_time_ns >= start and b.open_time_ns + timeframe.ns <= now_ns]
    return chosen[-count:]


def patch_history(
    engine: Engine, patch_id: str, history: Iterable[tuple[str, Event]], now_ns: int
) -> list[tuple[str, Event]]:
    """What the patch warms from among `history` (a backtest's recorded bars, fetched once for
    every patch): for each of its bar sources, the bars the live `history.bar_history` fetches. Never
    more: a patch warmed with more bars than live (another patch of the symbol needing more)
    starts from other indicator values."""
    history = list(history)
    chosen: list[tuple[str, Event]] = []
    for need in bar_needs(engine, patch_id):
        bars = [
            event
            for venue, event in history
            if venue == need.venue
            and isinstance(event, BarValue)
            and event.symbol == need.symbol
            and event.timeframe_s == need.timeframe.value
        ]
        chosen += [(need.venue, bar) for bar in warm_bars(bars, need.bars, need.timeframe, now_ns)]
    chosen.sort(key=lambda item: event_time(item[1]))
    return chosen
