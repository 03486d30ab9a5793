"""The detector's engine core in a backtest: the strategies' patches built as the live detector
builds them (trademesh.core.detector.strategy_file), recorded market events turned into engine events
by the live feed's converter (trademesh.core.detector.market.MarketConverter), and the patches warmed from
the first events until they can run, as the live runner warms them from live data.

The engine is asked as the live runner (trademesh.core.detector.runner) asks it: each timestamp's
events in `market_order` (trademesh.core.detector.sequence), converted, fed and evaluated at that time;
the ticks on the grid of `tick_hz` in the same time, each before its own timestamp's events.
Live holds what arrives for its hold and then steps the same way, so the two give the same
signals while nothing comes later than the hold. The module timer is fixed (0), so no step is
ever reported slow: a backtest's output never depends on the machine.

The recorded trades and book events of a symbol that none of the patches' sources takes (live
or as warm-up history) are not converted: the engine would route them nowhere (a strategy on the
bar service's bars takes neither). The live runner converts them all, as a patch started later
may want a book its feed has kept since the start; so does a run with a screen-driven strategy
(trademesh.core.backtest.screens), whose patches start mid-run.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from trademesh.bus.v1 import bus_pb2 as bus
from trademesh.core.detector.replay import (
    BarValue,
    Catalog,
    Engine,
    EngineConfig,
    Evaluation,
    Event,
    MarketConverter,
    PatchState,
    Source,
    Strategy,
    build_patches,
    in_market_order,
    patch_history,
)
from trademesh.core.detector.replay import patch_id as id_of
from trademesh.core.domain.convert import TIMEFRAME_FROM_PB
from trademesh.core.platform.errors import FailedPrecondition, TrademeshError
from trademesh.marketdata.v1 import marketdata_pb2 as md

__all__ = ["DetectStage", "bar_value", "no_timer", "retarget"]

_NS = 1_000_000_000
# A bar's seconds by its wire timeframe (an Enum's value is a Python call: read once here).
_BAR_S = {pb: timeframe.value for pb, timeframe in TIMEFRAME_FROM_PB.items()}
# A recorded event's payload -> the engine's kind of what it converts to (a notice resets a book).
_KIND_OF: dict[str | None, str] = {
    "trade": "trade", "book_snapshot": "book", "book_delta": "book", "notice": "book",
}  # fmt: skip


def no_timer() -> int:
    """The module and stage timers of a run: fixed, so nothing in it depends on the machine."""
    return 0


def bar_value(bar: bus.Bar) -> BarValue:
    """A bar of the bar service as the engine's closed bar (as trademesh.core.detector.history makes one)."""
    timeframe_s = _BAR_S[bar.timeframe]
    prices = float(bar.open), float(bar.high), float(bar.low), float(bar.close)
    volumes = float(bar.volume or 0), float(bar.quote_volume or 0)
    return BarValue(bar.symbol, timeframe_s, bar.open_time_ns, *prices, *volumes, bar.trade_count)


def retarget(strategy: Strategy, venue: str, symbols: Sequence[str]) -> Strategy:
    """The strategy on the backtest's venue and symbols instead of its file's (a screen-driven
    one on the venue only: its screen names its symbols)."""
    if strategy.screen is not None:
        return dataclasses.replace(strategy, venues=(venue,))
    return dataclasses.replace(strategy, venues=(venue,), symbols=tuple(symbols))


class DetectStage:
    def __init__(self, strategies: Sequence[Strategy], start_ns: int, tick_hz: float = 10.0) -> None:
        self.engine = Engine(Catalog.builtin(), no_timer, EngineConfig(tick_hz=tick_hz))
        self.tick_ns = int(_NS / tick_hz)
        self.next_tick_ns = start_ns - start_ns % self.tick_ns + self.tick_ns
        self._converters: dict[str, MarketConverter] = {}
        self._wanted: dict[str, frozenset[tuple[str, str]]] = {}  # venue -> (kind, symbol) taken
        self.warming: list[str] = []
        self.failed: dict[str, str] = {}  # patch id -> why it could not start
        # Every symbol's trades and books converted, as the live runner converts them: a
        # screen-driven strategy starts patches mid-run, whose book must have been kept.
        self.every_symbol = any(strategy.screen is not None for strategy in strategies)
        for strategy in strategies:
            self.warming += [patch.id for patch in build_patches(self.engine, strategy, start_ns)]

    def feed(
        self, venue: str, events: Sequence[md.MarketEvent], now_ns: int, bars: Sequence[bus.Bar] = ()
    ) -> Evaluation:
        """One timestamp's recorded events (and bars closed then) in, evaluated at that time."""
        converter = self._converters.get(venue)
        if converter is None:
            converter = self._converters[venue] = MarketConverter()
        wanted = self._wanted.get(venue)
        if wanted is None:
            wanted = self._wanted[venue] = self._taken(venue)
        engine_events: list[Event] = []
        if events and self.every_symbol:  # a book kept from the start for a patch started later
            engine_events = converter.convert(in_market_order(events))
        elif events and wanted:
            taken = [e for e in events if (_KIND_OF.get(e.WhichOneof("payload"), ""), e.symbol) in wanted]
            engine_events = converter.convert(in_market_order(taken))
        engine_events += [bar_value(bar) for bar in bars]
        feed = self.engine.feed
        for event in engine_events:
            feed(venue, event)
        if self.warming:
            self._warm(venue, engine_events, now_ns)
        return self.engine.evaluate_due(now_ns)

    def _taken(self, venue: str) -> frozenset[tuple[str, str]]:
        """The (kind, symbol) of the trades and books of `venue` some patch's source takes, live
        or as history (another payload converts to nothing)."""
        taken: set[tuple[str, str]] = set()
        for patch in self.engine.patches.values():
            for module in patch.modules.values():
                if isinstance(module, Source):
                    for kind, wanted, symbol in (*module.routes(), *module.warm_routes()):
                        if kind in ("trade", "book") and wanted in ("", venue):
                            taken.add((kind, symbol))
        return frozenset(taken)

    def start(
        self, strategy: Strategy, symbol: str, now_ns: int, history: Sequence[tuple[str, Event]]
    ) -> str:
        """A screen-driven strategy's patch on `symbol` (a new one where a retired one was), warmed
        from `history` as the live detector warms one from the venue's candles, active when that
        is enough, else warmed from the run's events."""
        venue = strategy.venues[0]
        made = id_of(strategy, venue, symbol)
        old = self.engine.patches.get(made)
        if old is not None and old.state is PatchState.ARCHIVED:
            self.engine.delete_patch(made, now_ns)
        if made not in self.engine.patches:
            build_patches(self.engine, dataclasses.replace(strategy, symbols=(symbol,), screen=None), now_ns)
        self._wanted.clear()  # what the sources take changed
        if self.engine.patch(made).state is PatchState.ACTIVE:
            return made
        try:
            self.engine.warm(made, patch_history(self.engine, made, history, now_ns))
            self.engine.patch(made).activate(now_ns)
        except FailedPrecondition:
            self.warming.append(made)
        except TrademeshError as exc:
            self.failed[made] = str(exc)
        return made

    def retire(self, made: str, now_ns: int) -> None:
        """A screen-driven strategy's patch retired (archived, as live)."""
        patch = self.engine.patches.get(made)
        if made in self.warming:
            self.warming.remove(made)
        if patch is not None and patch.state is not PatchState.ARCHIVED:
            patch.archive(now_ns)
            self._wanted.clear()

    def next_tick(self, now_ns: int) -> int | None:
        """When the next tick is due; None while no tick could move anything (no patch the
        clock drives): then none is run, and ticking resumes on the grid after `now_ns`."""
        if self.engine.ticks_matter():
            return self.next_tick_ns
        if self.next_tick_ns <= now_ns:
            self.next_tick_ns = now_ns - now_ns % self.tick_ns + self.tick_ns
        return None

    def tick(self) -> Evaluation:
        """The next clock tick (the caller runs it once the simulated time has reached it)."""
        evaluation = self.engine.tick(self.next_tick_ns)
        self.next_tick_ns += self.tick_ns
        return evaluation

    def warm_from_history(self, history: Sequence[tuple[str, Event]], now_ns: int) -> None:
        """As the live detector starts its patches: each warmed from the closed bars by
        `now_ns` that it would fetch live (the venue's candles live; the recorded bars here,
        trademesh.core.detector.needs.patch_history), activated when that is enough, else warmed from
        the run's first events (`feed`)."""
        for patch_id in list(self.warming):
            try:
                self.engine.warm(patch_id, patch_history(self.engine, patch_id, history, now_ns))
                self.engine.patch(patch_id).activate(now_ns)
            except FailedPrecondition:
                continue
            except TrademeshError as exc:
                self.failed[patch_id] = str(exc)
            self.warming.remove(patch_id)

    def _warm(self, venue: str, events: list[Event], now_ns: int) -> None:
        for patch_id in list(self.warming):
            try:
                self.engine.warm(patch_id, [(venue, event) for event in events])
                self.engine.patch(patch_id).activate(now_ns)
            except FailedPrecondition:
                continue  # not warm yet
            except TrademeshError as exc:  # it cannot start: said in the results
                self.failed[patch_id] = str(exc)
            self.warming.remove(patch_id)
