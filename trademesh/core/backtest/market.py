"""The replayed venue of a backtest: the sim venue's matching engine fed by recorded market data.

A ReplayedMarket wraps a SimExchange (trademesh/core/domain/matching/exchange.py) whose clock is
the venue time of the simulation. Recorded MarketEvents, as venues stream them, drive the book's
synthetic liquidity; our orders are the book's user orders, matched by the sim's price-time
engine, with its fees, balances and partial fills. Pure: no I/O, no wall clock, no randomness;
time is given (the events' ts_event_ns, the callers' now_ns).

The book model (how recorded levels, recorded trades and our orders share the engine's book,
the queue rules BACK and FRONT), the latency model, refusals, stops and what is not modelled:
docs/backtest-market.md, "The replayed venue".
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import NamedTuple

from trademesh.core.domain.matching.engine import OrderBook
from trademesh.core.domain.matching.exchange import NullListener, SimExchange
from trademesh.core.domain.matching.funding import FundingTerms
from trademesh.core.domain.matching.margin_account import MarginTerms
from trademesh.core.domain.matching.mirror import Mirror as _Mirror
from trademesh.core.domain.matching.mirror import QueueRule
from trademesh.core.domain.matching.order_manager import FeeSchedule, covers, covers_on_arrival
from trademesh.core.domain.model import (
    Amendment,
    Balance,
    Execution,
    FundingPayment,
    Instrument,
    InstrumentKind,
    LeverageSetting,
    MarginMode,
    Order,
    OrderRequest,
    OrderStatus,
    Position,
    Side,
)
from trademesh.core.platform.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from trademesh.marketdata.v1 import marketdata_pb2 as md

__all__ = ["QUEUE_RULES", "Answer", "Latency", "QueueRule", "ReplayedMarket", "queue_rule"]

_BUY, _SELL = Side.BUY, Side.SELL
# What the venue answers a placement with when it refuses it.
_REFUSALS = (InvalidArgument, FailedPrecondition, NotFound)
# What it answers an amendment in place with when it refuses it (then: cancel, and place anew).
_AMEND_REFUSALS = (*_REFUSALS, AlreadyExists)


# The recorded venues whose makers' cancels are known; every other venue's is BACK.
QUEUE_RULES: Mapping[str, QueueRule] = {"sim": QueueRule.FRONT}


def queue_rule(venue: str) -> QueueRule:
    """The queue rule of a recording of `venue`: FRONT for the sim's, BACK for any other."""
    return QUEUE_RULES.get(venue, QueueRule.BACK)


@dataclass(frozen=True)
class Latency:
    """order_ns: from our submitting an order or cancel to its reaching the venue;
    report_ns: from the venue's execution to its report reaching us."""

    order_ns: int = 0
    report_ns: int = 0

    def __post_init__(self) -> None:
        for name in ("order_ns", "report_ns"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise InvalidArgument.field(
                    name, f"must be a non-negative number of nanoseconds, got {value!r}"
                )


class _Arrival(NamedTuple):
    """An order (request set) or a cancel (request None) on its way to the venue; or, with an
    amendment, the order `client_order_id` changed in place (`request`: the new order placed
    after the old one's cancel instead, should the venue refuse the amendment, as the live
    executor does)."""

    client_order_id: str
    request: OrderRequest | None
    amendment: Amendment | None = None


class Answer(NamedTuple):
    """The venue's answer to a placement or to an amendment in place: the order as it is now, and
    for an amendment the client order id it went by before ("" for a placement)."""

    order: Order
    amended_from: str = ""


# When an execution's report reaches us, if known (ReplayedMarket.hear); None: the model's.
Hearing = Callable[[Execution], "int | None"]
# When the venue's answer to a placement reaches us, by client order id (ReplayedMarket.answer);
# None: not heard.
Answering = Callable[[str], "int | None"]


class _Reports(NullListener):
    """The exchange's listener: the user's executions, each due at its venue time plus the
    report latency, or when `heard` says (never before the one before it: the queue stays in
    due order, as a venue's stream delivers in its order)."""

    def __init__(self, report_ns: int) -> None:
        self.report_ns = report_ns
        self.queue: deque[tuple[int, Execution]] = deque()
        self.heard: Hearing | None = None
        self._last_due = 0

    def on_execution(self, execution: Execution) -> None:
        due = execution.ts_event_ns + self.report_ns
        if self.heard is not None:
            heard = self.heard(execution)
            if heard is not None:
                due = max(heard, execution.ts_event_ns)
            due = self._last_due = max(due, self._last_due)
        self.queue.append((due, execution))


class ReplayedMarket:
    """One venue of a backtest: recorded market events in, our orders' executions out, after
    the configured latencies (the module docstring's model)."""

    def __init__(
        self,
        venue: str,
        instruments: Sequence[Instrument],
        fees: FeeSchedule,
        balances: Mapping[str, Decimal],
        latency: Latency | None = None,
        *,
        start_ns: int = 0,
        defer: bool = True,
        queue: QueueRule = QueueRule.BACK,
        funding: Mapping[str, FundingTerms] | None = None,
        margin: MarginTerms | None = None,
    ) -> None:
        """`defer`: keep the recorded levels none of our orders can meet off the engine's book
        until something reads it (trademesh.core.domain.matching.offbook; the same outcome, less work); False
        applies every event to the engine at once. `queue`: where a recorded decrease comes off
        a level's queue (`queue_rule(venue)` gives the recorded venue's; BACK, the conservative
        rule, unless said). `funding`: each perpetual's funding terms (the sim config's; the
        sim's default for one not named); `margin`: how perpetuals are margined and liquidated
        (the sim config's; None: unmargined), liquidation checked on each trade and bar."""
        self.venue = venue
        self.latency = latency if latency is not None else Latency()
        self._venue_ns = start_ns
        self._reports = _Reports(self.latency.report_ns)
        self._exchange = SimExchange(
            venue,
            instruments,
            maker_fee_rate=fees.maker,
            taker_fee_rate=fees.taker,
            balances=balances,
            clock=self._clock,
            listener=self._reports,
            funding=funding,
            margin=margin,
        )
        self.queue = queue
        self._mirrors = {
            i.symbol: _Mirror(self._exchange, i.symbol, defer=defer, queue=queue) for i in instruments
        }
        # (arrival ns, submission sequence, arrival): a heap, earliest first.
        self._arrivals: list[tuple[int, int, _Arrival]] = []
        self._sequence = 0
        self._client_ids: set[str] = set()
        self._client_seq = 0
        # The recorded operation whose trades were replayed last, the stops they trigger held
        # back until its last trade is in: (symbol, venue time, taker side as recorded).
        self._held: tuple[str, int, int] | None = None
        self._answering: Answering | None = None
        # (due ns, submission sequence, the answer): a heap, earliest first.
        self._answers: list[tuple[int, int, Answer]] = []
        # The symbols filled on bars (fill_on_bars): the arrivals waiting for each one's next bar.
        self._on_bars: dict[str, list[_Arrival]] = {}
        self._symbol_of: dict[str, str] = {}  # client order id -> symbol (a bar symbol's cancels)
        self._units: dict[str, tuple[Decimal, tuple[int, int]]] = {}  # a bar symbol's (_bar_units)
        self._holdings: tuple[int, list[tuple[str, Decimal]], list[tuple[str, Decimal]]] | None = None

    # ---- our orders

    def hear(self, heard: Hearing) -> None:
        """Our executions' reports reach us when `heard` says (a recorded run: when the live
        inspector heard its twin's: trademesh.core.backtest.twins), else after the report latency; never
        one before the one the venue made before it."""
        self._reports.heard = heard

    def answer(self, answering: Answering) -> None:
        """The venue's answer to each placement (the order as placed, its fills on arrival in it)
        reaches us when `answering` says (a recorded run: when the live inspector heard its
        twin's: trademesh.core.backtest.twins), apart from its executions, as a PlaceOrder answer comes
        apart from the execution stream; none when it says None (the default: no answers)."""
        self._answering = answering

    def answers_due(self, now_ns: int) -> list[tuple[int, Answer]]:
        """The answers that reach us by now_ns: (when, the answer), in time order."""
        answers = self._answers
        out = []
        while answers and answers[0][0] <= now_ns:
            due, _, answer = heapq.heappop(answers)
            out.append((due, answer))
        return out

    def submit(self, request: OrderRequest, now_ns: int, arrival_ns: int | None = None) -> str:
        """Send an order at now_ns; returns its client_order_id (one is made, "bt-<n>", when the
        request has none). It reaches the venue at now_ns + order latency, or at `arrival_ns`
        when given (a live twin's recorded arrival: trademesh.core.backtest.twins)."""
        client_order_id = request.client_order_id or self._new_client_id()
        if client_order_id != request.client_order_id:
            request = replace(request, client_order_id=client_order_id)
        self._client_ids.add(client_order_id)
        self._symbol_of[client_order_id] = request.symbol
        self._schedule(now_ns, _Arrival(client_order_id, request), arrival_ns)
        return client_order_id

    def cancel(self, client_order_id: str, now_ns: int, arrival_ns: int | None = None) -> None:
        """Send a cancel at now_ns (reaching the venue as an order does); NotFound when no order
        was submitted with this id."""
        if client_order_id not in self._client_ids:
            raise NotFound(f"no order was submitted with client_order_id {client_order_id!r}")
        self._schedule(now_ns, _Arrival(client_order_id, None), arrival_ns)

    def amend(
        self,
        client_order_id: str,
        change: Amendment,
        instead: OrderRequest,
        now_ns: int,
        arrival_ns: int | None = None,
    ) -> None:
        """Send an amendment in place of the order `client_order_id` at now_ns (reaching the venue
        as an order does; `change.client_order_id` renames it). Refused there, the old order is
        cancelled and `instead` placed. Its answer reaches us whether or not placements are
        answered: the renamed order's executions do not say the old id ended; the answer does
        (trademesh.core.inspector.convert.amended_away). NotFound when no order was submitted with the id."""
        if client_order_id not in self._client_ids:
            raise NotFound(f"no order was submitted with client_order_id {client_order_id!r}")
        self._client_ids.add(instead.client_order_id)
        self._symbol_of[instead.client_order_id] = instead.symbol
        self._schedule(now_ns, _Arrival(client_order_id, instead, change), arrival_ns)

    # ---- time

    def on_market(self, event: md.MarketEvent) -> None:
        """Apply one recorded event at its ts_event_ns, after the arrivals due by then."""
        venue = event.venue
        if venue and venue != self.venue:
            raise InvalidArgument.field("venue", f"event of venue {venue!r} given to {self.venue!r}")
        ts_ns = event.ts_event_ns
        if ts_ns < self._venue_ns:
            ts_ns = self._venue_ns
        kind = event.WhichOneof("payload")
        held = self._held
        if held is not None and (kind != "trade" or held != (event.symbol, ts_ns, event.trade.taker_side)):
            self._release_stops()
        if self._arrivals:
            self._arrive(ts_ns)
        mirror = self._mirrors.get(event.symbol)
        if mirror is None:
            return
        if kind == "mark_price":
            self._venue_ns = ts_ns
            self._stated_mark(event.symbol, event.mark_price.mark_price, ts_ns)
            return
        if self._on_bars and event.symbol in self._on_bars:
            return  # filled on its bars alone (on_bar): its recorded trades meet no order of ours
        self._venue_ns = ts_ns
        if kind == "book_snapshot":
            mirror.snapshot(event.book_snapshot)
        elif kind == "book_delta":
            mirror.delta(event.book_delta)
        elif kind == "trade":
            if mirror.trade(event.trade):
                self._held = (event.symbol, ts_ns, event.trade.taker_side)
            self._check_margin(event.symbol)

    def advance(self, now_ns: int) -> list[tuple[int, Execution]]:
        """Deliver the arrivals due by now_ns to the venue, then return the executions whose
        reports are due by now_ns: (arrival time, execution), in the venue's order."""
        if self._held is not None:
            self._release_stops()
        self._arrive(now_ns)
        queue = self._reports.queue
        out: list[tuple[int, Execution]] = []
        while queue and queue[0][0] <= now_ns:
            out.append(queue.popleft())
        return out

    def next_due_ns(self) -> int | None:
        """The earliest pending arrival at the venue, or report or answer to us; None when none is
        pending."""
        if self._held is not None:
            self._release_stops()
        pending = (self._arrivals, self._reports.queue, self._answers)
        due = [first[0][0] for first in pending if first]
        return min(due) if due else None

    # ---- bars (docs/backtest-market.md, "Fills on bars")

    def fill_on_bars(self, symbols: Sequence[str]) -> None:
        """Fill these symbols' orders on their bars (`on_bar`): the history holds no book of them
        (their recorded trades, if any, then meet no order of ours). Their orders and cancels
        that reach the venue wait for the next bar."""
        for symbol in symbols:
            if symbol in self._mirrors:
                self._on_bars.setdefault(symbol, [])

    def on_bar(self, symbol: str, prices: Sequence[Decimal], ts_ns: int) -> None:
        """One closed bar of a symbol filled on bars, at its close `ts_ns`: its open, high, low
        and close (`prices`) walked as NautilusTrader walks a bar, open, the extreme nearer the
        open, the other, close; at each price met, and at each of our orders' limit and trigger
        prices on the way, a trade there (our resting orders it reaches fill at their prices, the
        stops it reaches trigger), then the book a deep ask at it and a deep bid a tick below.
        The orders that reached the venue since the last bar are placed at the open, after the
        book moved there: a market buy fills at the open, a sell a tick below."""
        waiting = self._on_bars.get(symbol)
        if waiting is None:
            raise InvalidArgument.field("symbol", f"{symbol!r} is not filled on bars")
        if self._held is not None:
            self._release_stops()
        if self._arrivals:
            self._arrive(ts_ns)
        self._venue_ns = max(self._venue_ns, ts_ns)
        mirror = self._mirrors[symbol]
        tick, lots = self._bar_units(symbol)
        first, high, low, close = (_on_tick(price, tick) for price in prices)
        walk = (first, high, low, close) if high - first <= first - low else (first, low, high, close)
        self._on_bars[symbol] = []
        if not waiting and self._walk(mirror, symbol, None, walk, tick, lots):
            return
        if not self._walk(mirror, symbol, None, walk[:1], tick, lots):
            self._visit(mirror, symbol, first, tick, lots)
        if waiting:
            mirror.settle()
            for arrival in waiting:
                self._dispatch(arrival)
        for leg in range(1, 4):
            here = walk[leg - 1]
            if self._walk(mirror, symbol, here, walk[leg:], tick, lots):
                return
            there = walk[leg]
            for price in self._met(symbol, here, there):
                self._visit(mirror, symbol, price, tick, lots)
            self._visit(mirror, symbol, there, tick, lots)
            self._check_margin(symbol)

    def _bar_units(self, symbol: str) -> tuple[Decimal, tuple[int, int]]:
        """A bar symbol's tick, and the lots of its bar walk's levels and trades."""
        units = self._units.get(symbol)
        if units is None:
            instrument = self._exchange.instrument(symbol)
            lot = instrument.lot_size
            units = self._units[symbol] = (
                instrument.tick_size,
                (_whole(_BAR_DEPTH, lot), _whole(_BAR_TRADE, lot)),
            )
        return units

    def _walk(
        self,
        mirror: _Mirror,
        symbol: str,
        here: Decimal | None,
        rest: tuple[Decimal, ...],
        tick: Decimal,
        lots: tuple[int, int],
    ) -> bool:
        """The rest of a bar's visits at once (Mirror.walk_ticks) from `here` (the price its walk
        is at; None: none visited yet), where none of them can meet anything of ours: no order
        arriving, no price of our open orders strictly between the walk's lowest and highest
        (so none met on the way), no position at risk of liquidation; True when done, False when
        left to the visits one by one (nothing changed). The same ids, levels and last trade as
        those visits, our orders untouched."""
        if not mirror.off.active or self._exchange.at_risk(symbol):
            return False
        span = rest if here is None else (here, *rest)
        low, high = min(span), max(span)
        for price in self._exchange.open_prices(symbol):
            if low < price < high:
                return False
        ticks = [int(price / tick) for price in rest]
        if any(at * tick != price for at, price in zip(ticks, rest, strict=True)):
            return False
        return mirror.walk_ticks(ticks, *lots)

    def _met(self, symbol: str, here: Decimal, there: Decimal) -> list[Decimal]:
        """Our open orders' limit and trigger prices strictly between `here` and `there`, in
        the order a move from one to the other meets them."""
        low, high = (here, there) if here < there else (there, here)
        prices = {price for price in self._exchange.open_prices(symbol) if low < price < high}
        return sorted(prices, reverse=there < here) if prices else []

    def _visit(
        self, mirror: _Mirror, symbol: str, price: Decimal, tick: Decimal, lots: tuple[int, int]
    ) -> None:
        """The market at `price`: a trade there (the taker's side the move's: up a buyer, down a
        seller) against a deep level there, then the book a deep ask there and a deep bid a tick
        below, then the stops the trade triggered placed against that book. In ticks and lots
        (`lots`: the deep level's and the trade's), as the mirror reads a feed's strings: a
        price off the tick grid lists no level and trades nothing."""
        if price <= 0:
            raise InvalidArgument.field("asks[0].price", f"must be positive, got {_text(price)!r}")
        bid, ask = mirror.best()
        at = int(price / tick)
        exact = at if at * tick == price else None
        depth, size = lots
        if ask is not None and at >= ask:
            taker: Side | None = _BUY
        elif bid is not None and at <= bid:
            taker = _SELL
        else:
            taker = None  # within the spread (the first bar's open): nothing to trade through
        if taker is not None:
            # The price's liquidity on the taker's far side alone first (nothing of ours crossed),
            # the trade through it then: our orders it reaches first, at their prices.
            level = {} if exact is None else {exact: depth}
            mirror.snapshot_ticks(level, {}) if taker is _SELL else mirror.snapshot_ticks({}, level)
            if exact is not None and mirror.trade_ticks(exact, size, taker):
                self._held = (symbol, self._venue_ns, 0)
        if exact is None:
            mirror.snapshot_ticks({}, {})
        else:
            mirror.snapshot_ticks({exact - 1: depth} if exact > 1 else {}, {exact: depth})
        if self._held is not None:
            mirror.settle()  # the book's levels on the engine's book, where the stops meet them
            self._release_stops()

    # ---- funding

    def next_funding_ns(self) -> int | None:
        """The next funding time of the perpetuals (None without any)."""
        return self._exchange.next_funding_ns()

    def replay_funding_rates(self, rates: Mapping[str, Sequence[tuple[int, Decimal]]]) -> None:
        """The recorded funding rates of the perpetuals, paid where they cover a funding time."""
        for symbol, recorded in rates.items():
            self._exchange.replay_funding_rates(symbol, recorded)

    def funding_rate_recorded(self, symbol: str, ts_ns: int) -> bool:
        return self._exchange.funding_rate_recorded(symbol, ts_ns)

    def settle_funding(self, now_ns: int) -> list[FundingPayment]:
        """The funding due by now_ns, paid as the sim pays it (trademesh/core/domain/matching/funding.py):
        each open position pays size x mark x rate at its funding time, the mark the book's as of
        now (the venue's time moves to now_ns, as an arrival moves it)."""
        if self._held is not None:
            self._release_stops()
        self._venue_ns = max(self._venue_ns, now_ns)
        for mirror in self._mirrors.values():
            mirror.settle()
        paid = self._exchange.settle_funding()
        self._exchange.check_liquidations()
        return paid

    def _stated_mark(self, symbol: str, text: str, ts_ns: int) -> None:
        """A mark the venue stated (recorded): margin is reckoned at it, not at the book's mid,
        while it is fresh (SimExchange.replay_mark), and what it makes due is liquidated now."""
        if self._exchange.margined and self._exchange.instrument(symbol).kind is InstrumentKind.PERPETUAL:
            self._exchange.replay_mark(symbol, Decimal(text), ts_ns)
            self._check_margin(symbol)

    def _check_margin(self, symbol: str) -> None:
        """Liquidate what is due at the mark, the symbol's book made whole first; only while it
        holds a margined position (docs/derivatives.md, "Margin and liquidation")."""
        if self._exchange.at_risk(symbol):
            mirror = self._mirrors[symbol]
            if self._exchange.may_liquidate(symbol, *mirror.best()):
                mirror.settle()
                self._exchange.check_liquidations()

    @property
    def venue_ns(self) -> int:
        """The venue's time: that of the last event or arrival it handled."""
        return self._venue_ns

    # ---- leverage (docs/derivatives.md, "Margin and liquidation")

    @property
    def margined(self) -> bool:
        """Whether its perpetuals are margined and liquidated (it was given MarginTerms)."""
        return self._exchange.margined

    def set_leverage(self, symbol: str, leverage: Decimal, mode: MarginMode | None) -> LeverageSetting:
        """A perpetual's leverage (and margin mode) set at the venue now, as TradeFlow SetLeverage
        sets it (the engine's rules: trademesh.core.domain.matching.margin_account)."""
        self._release_stops()
        return self._exchange.set_leverage(symbol, leverage, mode)

    def leverage(self, symbol: str) -> LeverageSetting:
        return self._exchange.leverage(symbol)

    def leverages(self) -> list[LeverageSetting]:
        """Every margined perpetual's leverage in force."""
        return self._exchange.leverages()

    # ---- the venue's state

    def balances(self) -> list[Balance]:
        self._release_stops()
        return self._exchange.balances()

    def positions(self, symbol: str | None = None) -> list[Position]:
        self._release_stops()
        return self._exchange.positions(symbol)

    def holdings(self) -> tuple[list[tuple[str, Decimal]], list[tuple[str, Decimal]]]:
        """Each asset's total and each position's size, as balances() and positions() give
        them (in their order), read again only once the account changed (an equity sample's
        every bar: the account moves only with fills and funding)."""
        self._release_stops()
        version = self._exchange.account_changes
        if self._holdings is None or self._holdings[0] != version:
            totals = [(b.asset, b.total) for b in self._exchange.balances()]
            sizes = [(p.symbol, p.size) for p in self._exchange.positions()]
            self._holdings = (version, totals, sizes)
        return self._holdings[1], self._holdings[2]

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        self._release_stops()
        return self._exchange.open_orders(symbol)

    def order(self, client_order_id: str) -> Order:
        """The venue's view of an order (NotFound before it arrives, or when it was refused)."""
        self._release_stops()
        return self._exchange.get(client_order_id=client_order_id)

    def held_at(self, request: OrderRequest, arrival_ns: int) -> Decimal:
        """The size the venue would hold a reduce-only order at, arriving at `arrival_ns`: what
        the position leaves after the reduce-only orders that cover it then (the sim's trim,
        trademesh.core.domain.matching.order_manager): those open now whose cancel has not
        arrived by then, and those on their way that have. 0: it would be refused. Fills between
        now and then are not foreseen."""
        self._release_stops()
        position = sum((p.size for p in self._exchange.positions(request.symbol)), Decimal(0))
        if position == 0 or (position > 0) == (request.side is Side.BUY):
            return Decimal(0)
        due = [arrival for at, _, arrival in self._arrivals if at <= arrival_ns]
        if self._on_bars:  # those waiting for a bar symbol's next bar are placed first
            due = [*self._on_bars.get(request.symbol, ()), *due]
        cancelled = {a.client_order_id for a in due if a.request is None}
        open_now = self._exchange.open_orders(request.symbol)
        covered = sum(
            (o.remaining for o in open_now if covers(o, request) and o.client_order_id not in cancelled),
            Decimal(0),
        )
        for arrival in due:
            placed = arrival.request
            if placed is not None and arrival.client_order_id not in cancelled:
                covered += placed.size if covers_on_arrival(placed, request) else 0
        return max(Decimal(0), min(request.size, abs(position) - covered))

    def book(self, symbol: str) -> OrderBook:
        """The venue's book of a symbol (synthetic and our orders) as it is now (the next event
        may leave it behind: ask again); read it, never change it."""
        self._release_stops()
        mirror = self._mirrors.get(symbol)
        if mirror is not None:
            mirror.settle()
        return self._exchange.book(symbol)

    def top(self, symbol: str) -> tuple[tuple[int, int] | None, tuple[int, int] | None]:
        """The best bid and ask of a symbol's book, each (ticks, lots there, our orders
        included; None: an empty side), as book() would show them, without settling it."""
        self._release_stops()
        mirror = self._mirrors.get(symbol)
        if mirror is not None and mirror.off.active:
            return mirror.off.top()
        book = self._exchange.book(symbol)
        bid, ask = book.best_bid(), book.best_ask()
        return (
            None if bid is None else (bid, book.level_total(_BUY, bid)),
            None if ask is None else (ask, book.level_total(_SELL, ask)),
        )

    def best(self, symbol: str) -> tuple[int | None, int | None]:
        """The best bid and ask of a symbol's book in ticks (None: an empty side)."""
        self._release_stops()
        mirror = self._mirrors.get(symbol)
        if mirror is None:
            book = self._exchange.book(symbol)
            return book.best_bid(), book.best_ask()
        return mirror.best()

    # ---- internals

    def _clock(self) -> int:
        return self._venue_ns

    def _release_stops(self) -> None:
        """Place the stops that the last recorded operation's trades triggered, now that its
        last trade is in (the sim places a stop once the operation that triggered it is over)."""
        held = self._held
        if held is not None:
            self._held = None
            self._exchange.run_stops(held[0])

    def _new_client_id(self) -> str:
        while True:
            self._client_seq += 1
            candidate = f"bt-{self._client_seq}"
            if candidate not in self._client_ids:
                return candidate

    def _schedule(self, now_ns: int, arrival: _Arrival, arrival_ns: int | None) -> None:
        if arrival_ns is None:
            arrival_ns = now_ns + self.latency.order_ns
        elif arrival_ns < now_ns:
            raise InvalidArgument.field("arrival_ns", f"{arrival_ns} is before its sending, {now_ns}")
        self._sequence += 1
        heapq.heappush(self._arrivals, (arrival_ns, self._sequence, arrival))

    def _arrive(self, until_ns: int) -> None:
        """Hand the venue the orders and cancels that reach it by until_ns, in arrival order."""
        arrivals = self._arrivals
        if arrivals and arrivals[0][0] <= until_ns:
            for mirror in self._mirrors.values():
                mirror.settle()
        on_bars = self._on_bars
        while arrivals and arrivals[0][0] <= until_ns:
            arrival_ns, _, arrival = heapq.heappop(arrivals)
            self._venue_ns = max(self._venue_ns, arrival_ns)
            if on_bars:
                waiting = on_bars.get(self._symbol_of.get(arrival.client_order_id, ""))
                if waiting is not None:  # placed at the symbol's next bar's open (on_bar)
                    waiting.append(arrival)
                    continue
            self._dispatch(arrival)

    def _dispatch(self, arrival: _Arrival) -> None:
        if arrival.amendment is not None:
            self._amend(arrival)
        elif arrival.request is not None:
            self._place(arrival.request)
        else:
            self._cancel(arrival.client_order_id)

    def _place(self, request: OrderRequest) -> None:
        try:
            placed, _ = self._exchange.place(request)
        except _REFUSALS as exc:
            self._reports.on_execution(_refused(self.venue, request, str(exc), self._venue_ns))
            return
        answered = None if self._answering is None else self._answering(request.client_order_id)
        if answered is not None:
            self._push_answer(answered, Answer(placed))

    def _amend(self, arrival: _Arrival) -> None:
        change, instead = arrival.amendment, arrival.request
        assert change is not None and instead is not None
        try:
            amended, _ = self._exchange.amend(None, arrival.client_order_id, change)
        except _AMEND_REFUSALS:
            self._cancel(arrival.client_order_id)
            self._place(instead)
            return
        answered = None if self._answering is None else self._answering(instead.client_order_id)
        due = self._venue_ns + self._reports.report_ns if answered is None else answered
        self._push_answer(due, Answer(amended, arrival.client_order_id))

    def _push_answer(self, due_ns: int, answer: Answer) -> None:
        self._sequence += 1
        heapq.heappush(self._answers, (max(due_ns, self._venue_ns), self._sequence, answer))

    def _cancel(self, client_order_id: str) -> None:
        # It may have ended before the cancel arrived (or been refused): its executions say how.
        with suppress(FailedPrecondition, NotFound):
            self._exchange.cancel(client_order_id=client_order_id)


# The size of the book's levels and of the trades a bar's path stands for (docs/backtest.md,
# "Fills on bars"): far more than an order of ours, so a bar fills any of them whole.
_BAR_DEPTH = Decimal("1000000000")
_BAR_TRADE = Decimal("10000000000")


def _whole(size: Decimal, lot: Decimal) -> int:
    """The whole lots of a size (a feed's size off the lot grid counts its whole lots)."""
    return int(size // lot)


def _on_tick(price: Decimal, tick: Decimal) -> Decimal:
    """A bar's price on the instrument's tick grid (the nearest tick, half to even)."""
    return (price / tick).to_integral_value() * tick


def _text(price: Decimal) -> str:
    return format(price, "f")


def _refused(venue: str, request: OrderRequest, reason: str, ts_ns: int) -> Execution:
    order = Order(
        venue=venue,
        order_id="",
        client_order_id=request.client_order_id,
        symbol=request.symbol,
        side=request.side,
        type=request.type,
        time_in_force=request.time_in_force,
        price=request.price,
        size=request.size,
        post_only=request.post_only,
        reduce_only=request.reduce_only,
        status=OrderStatus.REJECTED,
        status_reason=reason,
        created_ns=ts_ns,
        updated_ns=ts_ns,
        trigger_price=request.trigger_price,
    )
    return Execution(ts_event_ns=ts_ns, order=order)
