"""What a venue's own execution history says about a chaos run (docs/chaos.md): its positions,
the protection resting at it, and the entry orders each intent placed.

Pure: the venue's executions (TradeFlow StreamExecutions, in its sequence), its instruments'
minimums and the times the inspector was away (killed until it served again, or frozen) in;
findings out. The chaos test (tests/integration/test_chaos.py) asserts on them and the chaos
bench (bench/chaos.py) prints them; tests/unit/test_chaos_history.py holds the rules below to
histories made by hand.

- A position is the net of the venue's fills of a symbol (a spot sim: the account's holdings
  moved on this venue). It is **protected** while reduce-only orders rest at the venue on its
  closing side that cover it whole: stops (the stop-loss) and limits (the take-profit), each
  kind's remaining size at least the position's. `pair` asks both, `stop` the stop alone.
- A position the venue could not protect whole is **dust**: below the instrument's minimum
  size, or worth less than `DUST_NOTIONALS` times its minimum notional (the take-profit is a
  limit order that minimum applies to, at a price a few percent from the fill's). Its windows
  are listed apart and bound nothing.
- An **unprotected window** runs from the execution that left a position unprotected (a fill
  that opened or grew it: cause `fill`; an order that ended or shrank while it stood: cause
  `removal`) to the one that protected it again, or to the end of the run. Its counted time
  leaves out the time the inspector was away (nothing can place a stop then), except when the
  protection was removed while it was away, `IN_FLIGHT_NS` or more after it went (a cancel it
  sent before it went lands within that). Removed by the venue (a cancel without the
  inspector's reason, a trim), the venue stripped it, and the whole window counts
  (`stripped`). Removed by the inspector's own cancel (its `status_reason` says "inspector:"),
  the inspector was back, acting before the serving line the absence ends at (it carries out
  what its journal's replay asks first): the whole window counts too, not stripped.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from trademesh.common.v1 import common_pb2 as common
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

__all__ = [
    "DUST_NOTIONALS",
    "IN_FLIGHT_NS",
    "Absence",
    "Entries",
    "History",
    "Minimum",
    "Window",
    "entries",
    "history",
    "states",
    "unprotected_windows",
]

S = 1_000_000_000
# A request the inspector sent just before it was killed or frozen is carried out by then.
IN_FLIGHT_NS = S
# How the inspector's cancels are said at the venue (trademesh.core.inspector.convert.venue_reason).
_INSPECTORS = "inspector:"
DUST_NOTIONALS = 2
_ACTIVE = (tf.ORDER_STATUS_OPEN, tf.ORDER_STATUS_PARTIALLY_FILLED)
_STOPS = (tf.ORDER_TYPE_STOP_MARKET, tf.ORDER_TYPE_STOP_LIMIT)
_ZERO = Decimal(0)


@dataclass(frozen=True)
class Minimum:
    """An instrument's smallest order: size and notional (ListInstruments)."""

    size: Decimal
    notional: Decimal


@dataclass(frozen=True)
class Absence:
    """The inspector away: killed at start_ns until it served again, or frozen (SIGSTOP) until
    SIGCONT."""

    start_ns: int
    end_ns: int
    what: str


@dataclass(frozen=True)
class Window:
    symbol: str
    start_ns: int
    end_ns: int
    cause: str  # "fill" or "removal"
    counted_ns: int  # its time less the inspector's absences, unless stripped
    stripped: bool  # protection removed while the inspector was away: the venue's doing
    open_at_end: bool  # still unprotected when the run ended
    largest: Decimal  # the largest |position| during it

    @property
    def length_ns(self) -> int:
        return self.end_ns - self.start_ns


@dataclass
class _Resting:
    side: common.Side.ValueType
    stop: bool  # a stop (the stop-loss); else a limit (the take-profit)
    remaining: Decimal


@dataclass
class _Market:
    """One symbol at the venue: the position and the reduce-only orders resting."""

    position: Decimal = _ZERO
    price: Decimal = _ZERO  # the last fill's
    resting: dict[str, _Resting] = field(default_factory=dict)

    def cover(self, stop: bool) -> Decimal:
        closing = common.SIDE_SELL if self.position > 0 else common.SIDE_BUY
        return sum(
            (r.remaining for r in self.resting.values() if r.stop == stop and r.side == closing), _ZERO
        )

    def state(self, minimum: Minimum, kind: str) -> str:
        """ "flat", "dust", "protected" or "unprotected"."""
        size = abs(self.position)
        if size == 0:
            return "flat"
        if size < minimum.size or size * self.price < DUST_NOTIONALS * minimum.notional:
            return "dust"
        covered = self.cover(stop=True) >= size and (kind == "stop" or self.cover(stop=False) >= size)
        return "protected" if covered else "unprotected"

    def apply(self, execution: tf.Execution) -> bool:
        """The execution applied; whether it moved the position."""
        order, fill = execution.order, execution.fill
        moved = execution.HasField("fill") and Decimal(fill.size) != 0
        if moved:
            signed = Decimal(fill.size) if fill.side == common.SIDE_BUY else -Decimal(fill.size)
            self.position += signed
            self.price = Decimal(fill.price)
        protective = order.reduce_only and order.type in (*_STOPS, tf.ORDER_TYPE_LIMIT)
        if protective and order.status in _ACTIVE:
            remaining = Decimal(order.size) - Decimal(order.filled_size or "0")
            self.resting[order.order_id] = _Resting(order.side, order.type in _STOPS, remaining)
        else:
            self.resting.pop(order.order_id, None)
        return moved


@dataclass(frozen=True)
class History:
    """The windows of a run, by kind: `pair` (stop-loss and take-profit) and `stop`; and the
    dust windows (positions too small to protect)."""

    pair: list[Window]
    stop: list[Window]
    dust: list[Window]

    def violations(self, bound_ns: int, kind: str = "pair") -> list[Window]:
        """The windows whose counted time is past the bound."""
        return [w for w in (self.pair if kind == "pair" else self.stop) if w.counted_ns > bound_ns]


def history(
    executions: Sequence[tf.Execution],
    minimums: Mapping[str, Minimum],
    absences: Sequence[Absence],
    end_ns: int,
) -> History:
    """The windows of the executions (in the venue's sequence) up to end_ns."""
    pair = unprotected_windows(executions, minimums, absences, end_ns, "pair")
    stop = unprotected_windows(executions, minimums, absences, end_ns, "stop")
    dust = unprotected_windows(executions, minimums, absences, end_ns, "dust")
    return History(pair, stop, dust)


def states(executions: Iterable[tf.Execution], minimums: Mapping[str, Minimum]) -> dict[str, str]:
    """Each symbol's position now: "flat", "dust", "protected" or "unprotected" (its pair)."""
    markets: dict[str, _Market] = {}
    for execution in executions:
        markets.setdefault(execution.order.symbol, _Market()).apply(execution)
    return {symbol: market.state(minimums[symbol], "pair") for symbol, market in markets.items()}


def unprotected_windows(
    executions: Sequence[tf.Execution],
    minimums: Mapping[str, Minimum],
    absences: Sequence[Absence],
    end_ns: int,
    kind: str,
) -> list[Window]:
    """Each window a position spent unprotected (`kind` "pair" or "stop") or as dust ("dust")."""
    wanted = "dust" if kind == "dust" else "unprotected"
    markets: dict[str, _Market] = {}
    opened: dict[str, tuple[int, str, Decimal]] = {}  # symbol -> (start, cause, largest)
    windows: list[Window] = []
    for execution in executions:
        ts = execution.ts_event_ns
        if ts > end_ns:
            break
        symbol = execution.order.symbol
        market = markets.setdefault(symbol, _Market())
        moved = market.apply(execution)
        state = market.state(minimums[symbol], "stop" if kind == "stop" else "pair")
        if state == wanted:
            first = (ts, _cause(execution, moved), _ZERO)
            start, cause, largest = opened.get(symbol, first)
            opened[symbol] = (start, cause, max(largest, abs(market.position)))
        elif symbol in opened:
            windows.append(_window(symbol, *opened.pop(symbol), ts, absences, at_end=False))
    for symbol, (start, cause, largest) in opened.items():
        windows.append(_window(symbol, start, cause, largest, end_ns, absences, at_end=True))
    return sorted(windows, key=lambda w: w.start_ns)


def _cause(execution: tf.Execution, moved: bool) -> str:
    if moved:
        return "fill"
    return "inspector's removal" if execution.order.status_reason.startswith(_INSPECTORS) else "removal"


def _window(
    symbol: str, start: int, cause: str, largest: Decimal, end: int, absences: Sequence[Absence], at_end: bool
) -> Window:
    during = any(a.start_ns + IN_FLIGHT_NS <= start < a.end_ns for a in absences)
    stripped = during and cause == "removal"
    back = during and cause == "inspector's removal"  # it acted: it was not away
    away = 0 if stripped or back else _overlap(start, end, absences)
    return Window(symbol, start, end, cause, end - start - away, stripped, at_end, largest)


def _overlap(start: int, end: int, absences: Iterable[Absence]) -> int:
    """How much of [start, end) the absences cover (they may overlap one another)."""
    covered, reached = 0, start
    for a in sorted(absences, key=lambda a: a.start_ns):
        low, high = max(a.start_ns, reached), min(a.end_ns, end)
        if high > low:
            covered += high - low
            reached = high
    return covered


@dataclass(frozen=True)
class Entries:
    """The venue's entry orders (every order not reduce-only) against the intents known."""

    by_intent: dict[str, list[str]]  # intent id -> the venue's order ids of its entry
    unattributed: list[str]  # entry orders no known intent placed (venue order ids)

    @property
    def doubles(self) -> dict[str, list[str]]:
        """The intents with more than one entry order at the venue."""
        return {intent: orders for intent, orders in self.by_intent.items() if len(orders) > 1}


def entries(
    executions: Iterable[tf.Execution], intent_of: Mapping[str, str], ignored: Iterable[str] = ()
) -> Entries:
    """`intent_of` maps an entry's client order id to its intent; orders whose client order id
    is in `ignored` (the harness's own probes) are left out."""
    skip = set(ignored)
    seen: dict[str, str] = {}  # venue order id -> client order id
    for execution in executions:
        order = execution.order
        if not order.reduce_only and order.client_order_id not in skip:
            seen.setdefault(order.order_id, order.client_order_id)
    by_intent: dict[str, list[str]] = {}
    unattributed: list[str] = []
    for order_id, client_id in seen.items():
        intent = intent_of.get(client_id)
        if intent is None:
            unattributed.append(order_id)
        else:
            by_intent.setdefault(intent, []).append(order_id)
    return Entries(by_intent, unattributed)
