"""Screen-driven strategies in a backtest (docs/detector.md, "Screen-driven strategies"): each
screen a strategy follows is evaluated by the Screener's own engine (trademesh.core.screener.engine) on the
run's data, at every multiple of its cadence as `trademesh screener` evaluates it live, and each
strategy's roster (trademesh.core.detector.screens, the live detector's) says which patches start and
which retire; the run starts and retires them in its detector (trademesh.core.backtest.detect).

The screen's inputs:
- its bars, those of its timeframe the run reads (each at its close), kept as the Screener keeps
  them (trademesh.core.screener.state.MarketState), and before the start the recorded bars its windows
  need. The evaluation at T sees the bars closed before T: the step at T comes after what is due
  at T, and live, the bar service publishes the bar closing at T just after T, after the
  Screener's evaluation at T;
- a ticker, when it needs a ticker metric (spread, depth at the top), from the replayed venue's
  book top as of the evaluation: the run replays the recorded book, not the venue's ticker
  stream, and the two say the same best bid and ask.

A patch started mid-run warms as the live detector warms one: from the closed bars its sources
need by the evaluation's time (`BarHistory`: the run's bars of those timeframes, every symbol's,
kept from before the start), else from the run's events.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal

from trademesh.bus.v1 import bus_pb2 as bus
from trademesh.core.detector.replay import (
    BarValue,
    Catalog,
    Engine,
    Event,
    Patch,
    Ranking,
    RosterChange,
    ScreenRoster,
    Strategy,
    bar_needs,
    build_patches,
)
from trademesh.core.detector.replay import patch_id as id_of
from trademesh.core.domain.convert import TIMEFRAME_FROM_PB
from trademesh.core.domain.model import Timeframe
from trademesh.core.platform.errors import InvalidArgument, shown
from trademesh.core.screener.replay import TICKER_METRICS, MarketState, Screen, Ticker, candle_of, evaluate

__all__ = ["BarHistory", "ScreenStage", "book_ticker", "screens_of", "stand_ins"]

_STAND_IN = "BTC/USDT"  # the symbol a screen-driven strategy's patch is built on to read its needs

# (symbol) -> the book's top as a ticker (None: no book yet).
Tickers = Callable[[str], Ticker | None]
# (strategy id, symbol) -> whether the strategy's position there is open (None: not known yet).
Positions = Callable[[str, str], bool | None]


def screens_of(
    strategies: Sequence[Strategy], screens: Mapping[str, Screen], venue: str
) -> dict[str, Screen]:
    """The screens the strategies follow, by name; InvalidArgument naming the strategy's key when
    one is not there, or scans another venue than the run replays."""
    found = {}
    for strategy in strategies:
        if strategy.screen is None:
            continue
        name = strategy.screen.screen
        screen = screens.get(name)
        if screen is None:
            known = ", ".join(sorted(screens))
            raise InvalidArgument.field(
                "symbols.screen", f"strategy {strategy.id}: no screen {shown(name)} (screens: {known})"
            )
        if screen.venue != venue:
            raise InvalidArgument.field(
                "venue", f"screen {name} scans {shown(screen.venue)}; the run replays {shown(venue)}"
            )
        found[name] = screen
    return found


def stand_ins(strategies: Sequence[Strategy], venue: str) -> Engine:
    """Each screen-driven strategy's patch on a stand-in symbol, in an engine of its own: what its
    patches will listen to and need (their sources, their bars), known before any starts."""
    engine = Engine(Catalog.builtin(), timer=lambda: 0)
    for strategy in strategies:
        if strategy.screen is not None:
            one = dataclasses.replace(strategy, venues=(venue,), symbols=(_STAND_IN,), screen=None)
            build_patches(engine, one, 0)
    return engine


class BarHistory:
    """The closed bars of the timeframes the screen-driven strategies' sources warm from, the
    last `keep` of each symbol's: what a patch started mid-run warms from."""

    def __init__(self, venue: str, keep: Mapping[Timeframe, int]) -> None:
        self.venue = venue
        self.keep = {timeframe.value: count for timeframe, count in keep.items()}
        self._bars: dict[tuple[str, int], deque[BarValue]] = {}

    @classmethod
    def of(cls, venue: str, engine: Engine) -> BarHistory:
        """Kept as long as the stand-ins' bar sources need (trademesh.core.detector.needs.bar_needs)."""
        keep: dict[Timeframe, int] = {}
        for patch_id in engine.patches:
            for need in bar_needs(engine, patch_id):
                keep[need.timeframe] = max(keep.get(need.timeframe, 0), need.bars)
        return cls(venue, keep)

    @property
    def timeframes(self) -> list[Timeframe]:
        return sorted((Timeframe(seconds) for seconds in self.keep), key=lambda t: t.value)

    def add(self, bars: Iterable[bus.Bar]) -> None:
        for bar in bars:
            seconds = TIMEFRAME_FROM_PB[bar.timeframe].value
            keep = self.keep.get(seconds)
            if keep is None:
                continue
            held = self._bars.get((bar.symbol, seconds))
            if held is None:
                held = self._bars[(bar.symbol, seconds)] = deque(maxlen=keep + 2)
            held.append(_bar_value(bar, seconds))

    def history(self, symbol: str) -> list[tuple[str, Event]]:
        return [(self.venue, bar) for (s, _), held in self._bars.items() if s == symbol for bar in held]


def _bar_value(bar: bus.Bar, seconds: int) -> BarValue:
    prices = float(bar.open), float(bar.high), float(bar.low), float(bar.close)
    volumes = float(bar.volume or 0), float(bar.quote_volume or 0)
    return BarValue(bar.symbol, seconds, bar.open_time_ns, *prices, *volumes, bar.trade_count)


class ScreenStage:
    def __init__(
        self,
        venue: str,
        strategies: Sequence[Strategy],
        screens: Mapping[str, Screen],
        universe: Sequence[str],
        start_ns: int,
    ) -> None:
        self.venue = venue
        self.strategies = {s.id: s for s in strategies if s.screen is not None}
        self.screens = dict(screens)
        self.universe = tuple(universe)
        self.state = MarketState(self.screens.values())
        # The strategies' positions: the run's view of them (Backtest: the inspector's, as heard
        # back); not known until it says.
        self.positions: Positions = lambda strategy, symbol: None
        self.rosters = {
            s.id: ScreenRoster(venue, s.screen, self._position_of(s.id))
            for s in self.strategies.values()
            if s.screen is not None
        }
        probes = stand_ins(list(self.strategies.values()), venue)
        self.probes: list[Patch] = list(probes.patches.values())
        self.history = BarHistory.of(venue, probes)
        # Each screen's first evaluation: the first multiple of its cadence at or after the start.
        self.due = {name: screen.next_due_ns(start_ns - 1) for name, screen in self.screens.items()}
        self.evaluations = 0

    @property
    def timeframes(self) -> list[Timeframe]:
        """The bars' timeframes the run reads for the screens and the patches they start."""
        wanted = {screen.bars.timeframe for screen in self.screens.values()} | set(self.history.timeframes)
        return sorted(wanted, key=lambda t: t.value)

    def warm_bars(self) -> dict[Timeframe, int]:
        """Bars before the start, per timeframe: the screens' windows and the patches' warm-ups."""
        wanted: dict[Timeframe, int] = {}
        for screen in self.screens.values():
            count = screen.meter().bars_needed(screen.measured)
            wanted[screen.bars.timeframe] = max(wanted.get(screen.bars.timeframe, 0), count)
        for timeframe in self.history.timeframes:
            wanted[timeframe] = max(wanted.get(timeframe, 0), self.history.keep[timeframe.value])
        return wanted

    def on_bars(self, bars: Sequence[bus.Bar]) -> None:
        """The run's bars (each at its close): the screens' state, the patches' history."""
        self.history.add(bars)
        for bar in bars:
            try:
                candle = candle_of(bar)
            except InvalidArgument:
                continue  # as the Screener's feed skips a bar it cannot read
            self.state.add_bar(self.venue, bar.symbol, candle)

    def next_due(self) -> int | None:
        return min(self.due.values(), default=None)

    def evaluate_due(self, now_ns: int, tickers: Tickers) -> list[tuple[Strategy, RosterChange]]:
        """The screens due by `now_ns`, each at its own time; the rosters' changes."""
        out: list[tuple[Strategy, RosterChange]] = []
        for name, at in sorted(self.due.items(), key=lambda item: (item[1], item[0])):
            if at > now_ns:
                continue
            screen = self.screens[name]
            if any(metric in TICKER_METRICS for metric in screen.measured):
                self._tickers(tickers)
            result = evaluate(screen, self.state.inputs(screen), at)
            self.evaluations += 1
            ranking = Ranking(name, screen.venue, at, result.symbols, result.top_n, result.hold_ns)
            for strategy_id, roster in self.rosters.items():
                if roster.screen.screen == name:
                    change = roster.on_results([ranking])
                    if change:
                        out.append((self.strategies[strategy_id], change))
            self.due[name] = screen.next_due_ns(at)
        return out

    def settle(self, now_ns: int) -> list[tuple[Strategy, RosterChange]]:
        """The leaving patches whose position is flat now."""
        out = []
        for strategy_id, roster in self.rosters.items():
            if roster.leaving:
                change = roster.settle(now_ns)
                if change:
                    out.append((self.strategies[strategy_id], change))
        return out

    @property
    def leaving(self) -> bool:
        return any(roster.leaving for roster in self.rosters.values())

    def muted(self) -> frozenset[str]:
        """The patches of the symbols that left their screen's set with a position open."""
        return frozenset(
            id_of(self.strategies[strategy_id], roster.venue, symbol)
            for strategy_id, roster in self.rosters.items()
            for symbol in roster.leaving
        )

    def _position_of(self, strategy_id: str) -> Callable[[str], bool | None]:
        return lambda symbol: self.positions(strategy_id, symbol)

    def _tickers(self, tickers: Tickers) -> None:
        for symbol in self.universe:
            ticker = tickers(symbol)
            if ticker is not None:
                self.state.add_ticker(self.venue, symbol, ticker)


def book_ticker(
    ts_ns: int, bid: tuple[Decimal, Decimal] | None, ask: tuple[Decimal, Decimal] | None
) -> Ticker | None:
    """The replayed book's top as the Screener's ticker (None while a side is empty)."""
    if bid is None or ask is None:
        return None
    return Ticker(ts_ns=ts_ns, bid=bid[0], ask=ask[0], bid_size=bid[1], ask_size=ask[1])
