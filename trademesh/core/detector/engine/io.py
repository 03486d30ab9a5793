"""The two module kinds the engine talks to beyond `step`: sources (fed from outside the
patch) and sinks (whose emissions leave it).

A source is fed each event it routes to as the event arrives (cheap: it keeps what it needs)
and gives its value at the patch's next evaluation. A sink collects what it emits during a
step; the patch takes it after the step and stamps it with its own identity and time.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from trademesh.core.detector.engine.module import Module
from trademesh.core.detector.engine.values import BarValue, BookValue, SignalValue, TradeValue
from trademesh.core.domain.contracts.signal import Direction
from trademesh.core.domain.regime import Regime

__all__ = [
    "Event",
    "ExternalValue",
    "PositionDraft",
    "PositionValue",
    "RegimeValue",
    "Route",
    "SignalDraft",
    "Sink",
    "Source",
    "position_key",
]


@dataclass(frozen=True, slots=True)
class ExternalValue:
    """A named value the shell feeds in (Inspector's risk state, a kill switch)."""

    name: str
    value: float | bool
    ts_event_ns: int


@dataclass(frozen=True, slots=True)
class PositionValue:
    """A strategy's own position in a market, as the inspector holds it (its share: signed,
    long above 0; the position's average entry price, None when flat)."""

    strategy: str
    venue: str
    symbol: str
    size: float
    entry_price: float | None
    ts_event_ns: int


@dataclass(frozen=True, slots=True)
class RegimeValue:
    """A market's regime as Overwatch classified it (live: its stream `regimes.1m`; a backtest:
    the same engine over the run's bars): the regime, since when it held, and the time it was
    known (the close of the bar that confirmed it)."""

    venue: str
    symbol: str
    regime: Regime
    since_ns: int
    ts_event_ns: int


def position_key(strategy: str, symbol: str) -> str:
    """The route key of a strategy's position in a symbol."""
    return f"{strategy}|{symbol}"


Event = TradeValue | BookValue | BarValue | ExternalValue | PositionValue | RegimeValue
# (kind, venue, key): kind is "trade", "book", "bar", "external", "position" or "regime"; key the
# symbol (a regime's too), the external value's name, or the strategy and symbol (position_key);
# venue "" takes every venue.
Route = tuple[str, str, str]


_KINDS: dict[type, str] = {TradeValue: "trade", BookValue: "book", BarValue: "bar"}


def event_route(venue: str, event: Event) -> Route:
    kind = _KINDS.get(type(event))
    if kind is not None:
        return (kind, venue, event.symbol)  # type: ignore[union-attr]
    if isinstance(event, TradeValue | BookValue | BarValue):  # a subclass
        return (_KINDS[next(t for t in _KINDS if isinstance(event, t))], venue, event.symbol)
    if isinstance(event, PositionValue):
        return ("position", event.venue, position_key(event.strategy, event.symbol))
    if isinstance(event, RegimeValue):
        return ("regime", event.venue, event.symbol)
    return ("external", "", event.name)


def event_time(event: Event) -> int:
    return event.close_time_ns if isinstance(event, BarValue) else event.ts_event_ns


class Source(Module):
    def routes(self) -> tuple[Route, ...]:
        """The events this source takes."""
        raise NotImplementedError

    def feed(self, event: Event) -> bool:
        """Take one event; True when the source has a value for the next evaluation."""
        raise NotImplementedError

    def warm_routes(self) -> tuple[Route, ...]:
        """The events this source takes as history (Engine.warm): its live routes by default."""
        return self.routes()

    def warm(self, event: Event) -> bool:
        """Take one event of history; as `feed` by default."""
        return self.feed(event)

    def on_tick(self, now_ns: int) -> bool:
        """The clock moved; True when that gave the source a value (a bar closed by time)."""
        return False

    def ticked(self) -> Event | None:
        """What the last tick that gave the source a value brought (the bar it closed): the
        event a signal then names (`ts_event_ns`), as an event fed names itself."""
        return None

    def backlog(self) -> bool:
        """Values left after a step that each need an evaluation of their own (closed bars)."""
        return False

    def unready(self) -> str | None:
        """Why the source cannot run (a parameter left empty), None when it can."""
        return None


@dataclass(frozen=True, slots=True)
class SignalDraft:
    venue: str
    symbol: str
    signal: SignalValue


@dataclass(frozen=True, slots=True)
class PositionDraft:
    venue: str
    symbol: str
    action: str  # open, close, reduce, flip
    side: Direction
    fraction: float


class Sink(Module):
    def __init__(self, params: Mapping[str, int | float | bool | str]) -> None:
        super().__init__(params)
        # What the steps since the last take emitted; always this same list (the compiled
        # plan checks it without a call).
        self.pending: list[SignalDraft | PositionDraft] = []

    def take(self) -> list[SignalDraft | PositionDraft]:
        out = self.pending[:]
        self.pending.clear()
        return out

    def unready(self) -> str | None:
        """Why the sink cannot run (a parameter left empty), None when it can."""
        return None
