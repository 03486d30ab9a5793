"""Source modules: where a patch's data comes in (trades, books, bars, external values, the
strategy's own position, the market's regime).

The engine feeds each source the events of its routes as they arrive; a source keeps only
what its next step needs: the latest trade or book (coalescing: a burst of events gives one
evaluation), or the queue of closed bars (every bar counts: one evaluation each).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import Generic, TypeVar

from trademesh.core.detector.engine.io import (
    Event,
    ExternalValue,
    PositionValue,
    RegimeValue,
    Route,
    Source,
    position_key,
)
from trademesh.core.detector.engine.kernel import UNCHANGED, Inline, Kernel
from trademesh.core.detector.engine.module import (
    Category,
    Inputs,
    KernelModule,
    ModuleSpec,
    Outputs,
    Param,
    ParamKind,
    Port,
)
from trademesh.core.detector.engine.values import BarValue, BookValue, PortType, TradeValue
from trademesh.core.detector.modules.bar_builder import BarBuilder
from trademesh.core.domain.model import Timeframe
from trademesh.core.domain.regime import Regime
from trademesh.core.platform.errors import InvalidArgument, shown

__all__ = [
    "REGIME_CODES",
    "REGIME_TIMEFRAME",
    "BarsSource",
    "BookSource",
    "ExternalFlagSource",
    "ExternalSource",
    "RegimeSource",
    "StrategyPositionSource",
    "TradeBarsSource",
    "TradesSource",
]

Params = Mapping[str, int | float | bool | str]
_TIMEFRAMES = tuple(timeframe.label for timeframe in Timeframe)


def _venue() -> Param:
    return Param("venue", ParamKind.TEXT, "", "The venue; empty: the strategy's (or every venue)")


def _symbol() -> Param:
    return Param("symbol", ParamKind.TEXT, "", "The symbol; empty: the strategy's")


def _timeframe() -> Param:
    return Param("timeframe", ParamKind.CHOICE, "1m", "The bar interval", choices=_TIMEFRAMES)


# The next closed bar, written out for the generated walk.
_NEXT_BAR = ("r = {closed}.popleft() if {closed} else U",)


class _KernelSource(Source, KernelModule):
    """A source written as its kernel (no inputs: it answers what it was fed)."""

    def step(self, inputs: Inputs, now_ns: int) -> Outputs:
        return super().step(Inputs(), now_ns)  # a source has no inputs to look at


_E = TypeVar("_E", TradeValue, BookValue, PositionValue, RegimeValue)


class _LatestSource(_KernelSource, Generic[_E]):
    """A source of the latest event of one type: a burst of them gives one evaluation."""

    event_type: type[_E]

    def __init__(self, params: Params) -> None:
        super().__init__(params)
        self._pending: _E | None = None

    def feed(self, event: Event) -> bool:
        if not isinstance(event, self.event_type):
            return False
        self._pending = event
        return True

    def _take(self) -> _E | None:
        """The latest event fed since the last step; None when none came."""
        event, self._pending = self._pending, None
        return event


class _MarketSource(_KernelSource):
    kind = ""

    def routes(self) -> tuple[Route, ...]:
        return ((self.kind, str(self.params["venue"]), str(self.params["symbol"])),)

    def unready(self) -> str | None:
        return None if self.params["symbol"] else "symbol is not set"


class TradesSource(_LatestSource[TradeValue], _MarketSource):
    spec = ModuleSpec(
        type="trades",
        category=Category.SOURCE,
        description="The trades of a symbol; after a burst, the latest.",
        outputs=(Port("trade", PortType.TRADE, "The latest trade"),),
        params=(_venue(), _symbol()),
    )
    kind = "trade"

    event_type = TradeValue

    def kernel(self, connected: frozenset[str]) -> Kernel:
        def latest() -> object:
            trade = self._take()
            return UNCHANGED if trade is None else trade

        return Kernel(latest)


class BookSource(_LatestSource[BookValue], _MarketSource):
    spec = ModuleSpec(
        type="book",
        category=Category.SOURCE,
        description="A symbol's book (top `depth` levels) and best prices; after a burst, the latest.",
        outputs=(
            Port("book", PortType.BOOK, "The top `depth` levels of each side"),
            Port("bid", PortType.NUMBER, "Best bid price"),
            Port("ask", PortType.NUMBER, "Best ask price"),
            Port("mid", PortType.NUMBER, "Mid price"),
        ),
        params=(_venue(), _symbol(), Param("depth", ParamKind.INT, 10, "Levels per side", 1, 1000)),
    )
    kind = "book"

    event_type = BookValue

    def kernel(self, connected: frozenset[str]) -> Kernel:
        depth = int(self.params["depth"])

        def latest() -> object:
            book = self._take()
            if book is None:
                return UNCHANGED
            top = BookValue(book.symbol, book.ts_event_ns, book.bids[:depth], book.asks[:depth])
            bid = top.bids[0][0] if top.bids else None
            ask = top.asks[0][0] if top.asks else None
            mid = None if bid is None or ask is None else (bid + ask) / 2
            return top, bid, ask, mid

        return Kernel(latest, whole=True)


class _ClosedBarsSource(_MarketSource):
    """A source of closed bars: each one counts (one evaluation each, in order)."""

    def __init__(self, params: Params) -> None:
        super().__init__(params)
        self._closed: deque[BarValue] = deque()

    def backlog(self) -> bool:
        return bool(self._closed)

    def kernel(self, connected: frozenset[str]) -> Kernel:
        return Kernel(self._next, inline=Inline(_NEXT_BAR, {"closed": self._closed}))

    def _next(self) -> object:
        closed = self._closed
        return closed.popleft() if closed else UNCHANGED


class TradeBarsSource(_ClosedBarsSource):
    spec = ModuleSpec(
        type="trade_bars",
        category=Category.SOURCE,
        description=(
            "Bars built here from the symbol's trades, by the bar service's rules: a bar closes when "
            "a trade `lateness_ms` past its end arrives, or at a clock tick that far past it."
        ),
        outputs=(Port("bar", PortType.BAR, "Each closed bar"),),
        params=(
            _venue(),
            _symbol(),
            _timeframe(),
            Param("lateness_ms", ParamKind.INT, 1000, "How late a trade may come", 0, 60_000),
        ),
    )
    kind = "trade"

    def __init__(self, params: Params) -> None:
        super().__init__(params)
        lateness_ns = int(params["lateness_ms"]) * 1_000_000
        timeframe = Timeframe.from_label(str(params["timeframe"]))
        self.builder = BarBuilder(str(params["symbol"]), timeframe, lateness_ns)

    def feed(self, event: Event) -> bool:
        if isinstance(event, TradeValue):
            closed = self.builder.add(event)
            if closed:  # mostly not: a bar closes once per timeframe
                self._closed += closed
        return bool(self._closed)

    def on_tick(self, now_ns: int) -> bool:
        self._closed += self.builder.close_until(now_ns - self.builder.lateness_ns)
        return bool(self._closed)

    def ticked(self) -> Event | None:
        return self._closed[-1] if self._closed else None

    def warm_routes(self) -> tuple[Route, ...]:
        """History comes as closed bars (a venue's candles, the recorder's bars) besides trades."""
        return (*self.routes(), ("bar", str(self.params["venue"]), str(self.params["symbol"])))

    def warm(self, event: Event) -> bool:
        if isinstance(event, BarValue):
            if event.timeframe_s == self.builder.timeframe.value:
                self._closed.append(event)
            return bool(self._closed)
        return self.feed(event)


class BarsSource(_ClosedBarsSource):
    spec = ModuleSpec(
        type="bars",
        category=Category.SOURCE,
        description="Closed bars from the bar service, of one timeframe.",
        outputs=(Port("bar", PortType.BAR, "Each closed bar"),),
        params=(_venue(), _symbol(), _timeframe()),
    )
    kind = "bar"

    def __init__(self, params: Params) -> None:
        super().__init__(params)
        self.timeframe_s = Timeframe.from_label(str(params["timeframe"])).value

    def feed(self, event: Event) -> bool:
        if isinstance(event, BarValue) and event.timeframe_s == self.timeframe_s:
            self._closed.append(event)
        return bool(self._closed)


class _External(_KernelSource):
    flag = False

    def __init__(self, params: Params) -> None:
        super().__init__(params)
        self._pending: list[float | bool] = []

    def routes(self) -> tuple[Route, ...]:
        return (("external", "", str(self.params["name"])),)

    def unready(self) -> str | None:
        return None if self.params["name"] else "name is not set"

    def feed(self, event: Event) -> bool:
        if not isinstance(event, ExternalValue) or isinstance(event.value, bool) is not self.flag:
            return False
        self._pending[:] = [event.value if self.flag else float(event.value)]
        return True

    def kernel(self, connected: frozenset[str]) -> Kernel:
        def latest() -> object:
            return self._pending.pop() if self._pending else UNCHANGED

        return Kernel(latest)


class ExternalSource(_External):
    spec = ModuleSpec(
        type="external",
        category=Category.SOURCE,
        description="A named number the service feeds in (e.g. Inspector's risk state).",
        outputs=(Port("value", PortType.NUMBER, "The latest value"),),
        params=(Param("name", ParamKind.TEXT, "", "The external value's name"),),
    )


class ExternalFlagSource(_External):
    spec = ModuleSpec(
        type="external_flag",
        category=Category.SOURCE,
        description="A named true/false the service feeds in (e.g. Inspector's risk limit reached).",
        outputs=(Port("value", PortType.BOOLEAN, "The latest value"),),
        params=(Param("name", ParamKind.TEXT, "", "The external value's name"),),
    )
    flag = True


class StrategyPositionSource(_LatestSource[PositionValue]):
    spec = ModuleSpec(
        type="strategy_position",
        category=Category.SOURCE,
        description=(
            "The strategy's own position in the market, as the inspector holds it: its share "
            "(signed: long above 0), the position's average entry price, open, long, short."
        ),
        outputs=(
            Port("size", PortType.NUMBER, "The strategy's share of the position (long above 0)"),
            Port("entry_price", PortType.NUMBER, "The position's average entry price (none when flat)"),
            Port("open", PortType.BOOLEAN, "The strategy holds a position"),
            Port("long", PortType.BOOLEAN, "It is long"),
            Port("short", PortType.BOOLEAN, "It is short"),
        ),
        params=(
            _venue(),
            _symbol(),
            Param("strategy", ParamKind.TEXT, "", "The strategy; empty: the patch's"),
        ),
    )

    event_type = PositionValue

    def routes(self) -> tuple[Route, ...]:
        key = position_key(str(self.params["strategy"]), str(self.params["symbol"]))
        return (("position", str(self.params["venue"]), key),)

    def unready(self) -> str | None:
        missing = [name for name in ("symbol", "strategy") if not self.params[name]]
        return f"{' and '.join(missing)} not set" if missing else None

    def kernel(self, connected: frozenset[str]) -> Kernel:
        def latest() -> object:
            position = self._take()
            if position is None:
                return UNCHANGED
            size = position.size
            return size, position.entry_price, size != 0, size > 0, size < 0

        return Kernel(latest, whole=True)


# The bars whose regime the source reads: Overwatch's default timeframe, the one its classifier
# was measured on (docs/overwatch.md, "Why 1m by default"); the live feed and the backtest read
# that timeframe's regimes.
REGIME_TIMEFRAME = Timeframe.M1
# A regime as a number on a cable: the wire's code (trademesh.overwatch.v1.Regime), so a
# `compare` on `regime.regime` reads as the proto does (trend_up is 2).
REGIME_CODES: Mapping[Regime, float] = {
    Regime.UNKNOWN: 1.0,
    Regime.TREND_UP: 2.0,
    Regime.TREND_DOWN: 3.0,
    Regime.RANGE: 4.0,
    Regime.HIGH_VOLATILITY: 5.0,
    Regime.THIN_LIQUIDITY: 6.0,
}
# The regimes a strategy may name: every one Overwatch reads (`unknown` is `known` = false).
_NAMED = tuple(regime.value for regime in Regime if regime is not Regime.UNKNOWN)


def allowed_regimes(text: str) -> frozenset[Regime]:
    """The regimes a `regimes` parameter names ("trend_up, range"); InvalidArgument naming the
    parameter and the first name that is none."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    for name in names:
        if name not in _NAMED:
            raise InvalidArgument.field(
                "regimes", f"{shown(name)} is not a regime (regimes: {', '.join(_NAMED)})"
            )
    return frozenset(Regime(name) for name in names)


class RegimeSource(_LatestSource[RegimeValue]):
    spec = ModuleSpec(
        type="regime",
        category=Category.SOURCE,
        description=(
            "The market's regime on 1m bars, as Overwatch classifies it (docs/overwatch.md): "
            "whether it is one of `regimes`, its code, and whether one has been heard yet."
        ),
        outputs=(
            Port("allowed", PortType.BOOLEAN, "The regime is one of `regimes`"),
            Port(
                "regime",
                PortType.NUMBER,
                "Its code: 1 unknown, 2 trend_up, 3 trend_down, 4 range, 5 high_volatility, "
                "6 thin_liquidity (trademesh.overwatch.v1.Regime)",
            ),
            Port("known", PortType.BOOLEAN, "A regime has been heard and it is not unknown"),
        ),
        params=(
            _venue(),
            _symbol(),
            Param(
                "regimes",
                ParamKind.TEXT,
                "",
                f"The regimes it allows, separated by commas: {', '.join(_NAMED)}",
            ),
        ),
    )

    event_type = RegimeValue

    def __init__(self, params: Params) -> None:
        super().__init__(params)
        self.allowed = allowed_regimes(str(params["regimes"]))
        self._last: list[object] = [None, None, None]  # what each output answered last

    def routes(self) -> tuple[Route, ...]:
        return (("regime", str(self.params["venue"]), str(self.params["symbol"])),)

    def unready(self) -> str | None:
        missing = [name for name in ("symbol", "regimes") if not str(self.params[name]).strip()]
        return f"{' and '.join(missing)} not set" if missing else None

    def kernel(self, connected: frozenset[str]) -> Kernel:
        allowed, last = self.allowed, self._last

        def latest() -> object:
            heard = self._take()
            if heard is None:
                return UNCHANGED
            regime = heard.regime
            now = (regime in allowed, REGIME_CODES[regime], regime is not Regime.UNKNOWN)
            # Only what changed: a regime that stays allowed (trend_up -> range, both named)
            # does not wake the gate downstream.
            out = tuple(UNCHANGED if old == new else new for old, new in zip(last, now, strict=True))
            last[:] = now
            return UNCHANGED if all(value is UNCHANGED for value in out) else out

        return Kernel(latest)
