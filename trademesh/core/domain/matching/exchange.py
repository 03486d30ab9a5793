"""SimExchange: the sim venue's books, order manager and account behind one entry point.

Two kinds of callers share the books:
- the user API (Decimals in, trademesh.core.domain.model objects out), used by the TradeFlow servicer;
- the synthetic API (ints, no Decimal), used by the market generator at high rates.

Fills between synthetic and user orders are routed to the order manager, so the user gets
fills, fees and balance changes whoever the taker is.

Listener calls for one operation come in this order: on_trade for each trade (in matching
order), one batched on_levels with every level the operation changed, then the user's
executions. A user placement emits its OPEN execution before its trades. Level changes are
(side, price ticks, new total lots), 0 meaning the level is gone, each level at most once per
call; applied in order to an aggregated copy of the book they reproduce OrderBook.depth()
exactly. A cancel (user or synthetic) or a synthetic reduce makes its own on_levels call
with one change.

Stop orders wait outside the book (trademesh/core/domain/matching/stops.py) until a trade crosses
their trigger price, whoever's trade it is. Each operation that trades notes the range of its
prices; once the operation is over (its listener calls made), the stops that range triggers are
placed, as operations of their own, oldest first, each one's trades possibly triggering more. A
stop whose trigger the last trade had already crossed when it was placed waits for the next
trade. A caller that makes one operation of several synthetic orders (a replayed venue sends a
recorded taker's trades one by one: trademesh.core.backtest.market) holds the stops back with
submit_synthetic(..., stops=False) and places them with run_stops() once its last order is in.

Reduce-only orders never increase or flip a position, as on Binance USD-M: once an operation's
fills have moved a position, each reduce-only order working in the book is trimmed to what is
left of it (an order update with the new size) or, with nothing left, CANCELED
(_REDUCED_AWAY); and while a synthetic taker sweeps the book, each reduce-only maker fills no
more than the position at that fill (the engine's maker cap), so no reduce-only fill goes past
zero even within one sweep. A waiting stop keeps its size until it triggers (then trimmed to
the position, EXPIRED with none).

A user's limit price and stop trigger price are checked against the price band
(trademesh/core/domain/matching/price_band.py) before the order manager sees the order; the order
manager keeps closed orders for a bounded window.

Amending (TradeFlow.AmendOrder; the sim amends natively, in place, under the same order id): a
size decrease at the same price keeps the order's place in its queue (the book's reduce), any
other change (a new price, a larger size) loses it: the order leaves the book and is submitted
again at the back of its level, trading at once when its new price crosses (a post-only one is
then refused, unchanged). The lock follows the new price and size first, so an amendment the
funds cannot cover changes nothing. A waiting stop takes its new trigger, price and size and
keeps waiting; a triggered stop's trigger cannot change. A reduce-only amendment is trimmed
like a placement (to the position less what the other reduce-only orders cover). The order
update comes first, then any trades its new price made. A new client order id renames the
order: under its former id it ended (GetOrder, CancelOrder and PlaceOrder by that id find it
CANCELED, "amended in place: now <id>", as the caller that renamed it counts it), and a
repeated amendment (the new id already names it) answers the order as it is.

Linear perpetuals (BASE/QUOTE:QUOTE) and inverse ones (BASE/QUOTE:BASE,
trademesh/core/domain/matching/inverse.py) trade in the same books; their positions pay funding
at the funding times of their schedule when settle_funding() is called
(trademesh/core/domain/matching/funding.py). Given MarginTerms they are margined (orders lock
initial margin, positions hold it) and check_liquidations() closes the positions whose margin
ratio reached 1 at the mark (trademesh/core/domain/matching/margin_account.py;
docs/derivatives.md, "Margin and liquidation").

Not thread-safe and not re-entrant: call it from one thread (the event loop); a listener may
read the exchange (books, formatting) but must not place or cancel from inside a callback.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal, localcontext
from functools import partial
from typing import Protocol

from trademesh.core.domain.decimals import format_decimal
from trademesh.core.domain.matching.accounts import EXACT, Accounts
from trademesh.core.domain.matching.engine import (
    SYNTHETIC,
    USER,
    LevelChange,
    MakerCap,
    Match,
    MatchResult,
    OrderBook,
)
from trademesh.core.domain.matching.fees import FeeAsset
from trademesh.core.domain.matching.funding import FundingHistory, FundingSchedule, FundingTerms, funding_id
from trademesh.core.domain.matching.inverse import (
    InversePosition,
    contract_worth,
    funding_amount,
    is_inverse_perpetual,
)
from trademesh.core.domain.matching.margin_account import MarginAccount, MarginTerms
from trademesh.core.domain.matching.order_manager import FeeSchedule, OrderManager, reducible
from trademesh.core.domain.matching.price_band import PriceBand, reference_ticks
from trademesh.core.domain.matching.stops import StopBook
from trademesh.core.domain.model import (
    Amendment,
    Balance,
    Execution,
    FundingPayment,
    Instrument,
    InstrumentKind,
    LeverageSetting,
    Liquidity,
    MarginMode,
    Order,
    OrderRequest,
    OrderStatus,
    OrderType,
    Position,
    Side,
    TimeInForce,
)
from trademesh.core.domain.order_rules import require_unfilled
from trademesh.core.platform.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound

__all__ = ["STATED_MARK_FRESH_NS", "NullListener", "SimExchange", "SimListener"]

_POST_ONLY_REASON = "post-only order would take liquidity (it crosses the book)"
# A cancel's status_reason when the canceller gave none (trademesh.venues.runtime.cancels.BY_REQUEST).
_BY_REQUEST = "canceled by request"
# A resting reduce-only order's end when fills left no position for it to reduce.
_REDUCED_AWAY = "reduce-only order canceled: the position it reduces is closed"
# An open order's end when the engine liquidates its symbol's position.
_LIQUIDATING = "canceled: the position is being liquidated"
# How long a mark the venue stated (replay_mark) stands for the mark: the venues push theirs every
# second to every few (Binance USD-M 1 s or 3 s, OKX on a change); longer without one is a hole.
STATED_MARK_FRESH_NS = 60 * 1_000_000_000


class SimListener(Protocol):
    def on_trade(
        self, symbol: str, trade_id: str, price_ticks: int, lots: int, taker_side: Side, ts_ns: int
    ) -> None: ...

    def on_levels(self, symbol: str, changes: list[LevelChange]) -> None: ...

    def on_execution(self, execution: Execution) -> None: ...


class NullListener:
    def on_trade(
        self, symbol: str, trade_id: str, price_ticks: int, lots: int, taker_side: Side, ts_ns: int
    ) -> None:
        pass

    def on_levels(self, symbol: str, changes: list[LevelChange]) -> None:
        pass

    def on_execution(self, execution: Execution) -> None:
        pass


class _Scale:
    """Integer units of a decimal step (ticks of tick_size, lots of lot_size)."""

    __slots__ = ("div", "field", "mult", "places", "step")

    def __init__(self, step: Decimal, field: str) -> None:
        _, digits, exponent = step.as_tuple()
        if not isinstance(exponent, int) or step <= 0:  # the exponent is a str for NaN / infinity
            raise InvalidArgument.field(field, f"step must be a positive finite decimal, got {step}")
        self.step = step
        self.field = field
        self.mult = int("".join(map(str, digits))) * 10 ** max(exponent, 0)
        self.places = max(-exponent, 0)
        self.div = 10**self.places

    def units(self, value: Decimal) -> int:
        quotient = EXACT.divide(value, self.step)
        if quotient != quotient.to_integral_value():
            raise InvalidArgument.field(self.field, f"{value} is not a multiple of {self.step}")
        return int(quotient)

    def value(self, units: int) -> Decimal:
        return Decimal(units * self.mult).scaleb(-self.places, EXACT)

    def text(self, units: int) -> str:
        n = units * self.mult
        if n < 0:
            return "-" + self.text(-units)
        if not self.places:
            return str(n)
        whole, frac = divmod(n, self.div)
        if not frac:
            return str(whole)
        return f"{whole}.{str(frac).rjust(self.places, '0').rstrip('0')}"


class _Market:
    __slots__ = (
        "book",
        "cap",
        "funding",
        "instrument",
        "last_trade",
        "moved",
        "price",
        "size",
        "stops",
        "terms",
        "trade_seq",
    )

    def __init__(self, instrument: Instrument, terms: FundingTerms, opened_ns: int) -> None:
        _check_kind(instrument)
        self.instrument = instrument
        # Perpetuals only: the funding rate and the funding times to come.
        self.terms = terms
        self.funding: FundingSchedule | None = None
        if instrument.kind is InstrumentKind.PERPETUAL:
            self.funding = FundingSchedule(terms.interval_s, opened_ns)
        self.book = OrderBook(instrument.symbol)
        self.price = _Scale(instrument.tick_size, "price")
        self.size = _Scale(instrument.lot_size, "size")
        self.trade_seq = 0
        self.last_trade: int | None = None  # price in ticks
        self.stops = StopBook()
        # (lowest, highest) trade price in ticks since the stops were last checked; noted only
        # while stops wait, so a market without stops pays nothing for them.
        self.moved: tuple[int, int] | None = None
        # What a reduce-only maker may fill while a synthetic taker sweeps (set by the exchange).
        self.cap: MakerCap | None = None


class SimExchange:
    def __init__(
        self,
        venue: str,
        instruments: Sequence[Instrument],
        *,
        maker_fee_rate: Decimal,
        taker_fee_rate: Decimal,
        balances: Mapping[str, Decimal],
        clock: Callable[[], int],
        listener: SimListener | None = None,
        price_band_ratio: Decimal = Decimal(5),
        closed_orders_kept: int = 10_000,
        funding: Mapping[str, FundingTerms] | None = None,
        fee_asset: FeeAsset = FeeAsset.QUOTE,
        margin: MarginTerms | None = None,
    ) -> None:
        """`funding`: the terms of each perpetual, by symbol (FundingTerms() for one not named);
        `fee_asset`: the asset a spot fill's fee is charged in (the exchange's rule); `margin`:
        how perpetuals are margined and liquidated (margin_account.py; None: unmargined, an order
        locks its fee only and nothing is liquidated)."""
        self.venue = venue
        self.listener: SimListener = listener if listener is not None else NullListener()
        self._clock = clock
        # The clock is read once more only when there are perpetuals (their first funding time).
        perpetual = any(i.kind is InstrumentKind.PERPETUAL for i in instruments)
        opened_ns = clock() if perpetual else 0
        terms = funding or {}
        self._markets = {
            i.symbol: _Market(i, terms.get(i.symbol, FundingTerms()), opened_ns) for i in instruments
        }
        for market in self._markets.values():
            market.cap = partial(self._reduce_only_room, market)
        self._perpetuals = [m for m in self._markets.values() if m.funding is not None]
        self._funding = FundingHistory()
        self._accounts = Accounts(balances)
        for instrument in instruments:
            if is_inverse_perpetual(instrument):
                self._accounts.book_with(
                    instrument.symbol, partial(InversePosition, instrument.contract_value)
                )
            if instrument.kind is InstrumentKind.PERPETUAL:
                self._accounts.add_asset(instrument.settle_asset)
            else:
                self._accounts.add_asset(instrument.base_asset)
                self._accounts.add_asset(instrument.quote_asset)
        fees = FeeSchedule(maker=maker_fee_rate, taker=taker_fee_rate, asset=fee_asset)
        self._margin: MarginAccount | None = None
        if margin is not None and self._perpetuals:
            perpetuals = [m.instrument for m in self._perpetuals]
            self._margin = MarginAccount(margin, perpetuals, self._accounts, self.mark)
        self._oms = OrderManager(
            venue, self._accounts, fees, clock, self._emit_execution, closed_orders_kept, self._margin
        )
        self._band = PriceBand(price_band_ratio)
        self._last_id = 0
        self._stated_marks: dict[str, tuple[int, Decimal]] = {}  # replay_mark's: symbol -> (ns, mark)

    # ---- instruments and conversions

    def instruments(self) -> list[Instrument]:
        return [m.instrument for m in self._markets.values()]

    def instrument(self, symbol: str) -> Instrument:
        return self._market(symbol).instrument

    def book(self, symbol: str) -> OrderBook:
        return self._market(symbol).book

    def to_ticks(self, symbol: str, price: Decimal) -> int:
        return self._market(symbol).price.units(price)

    def to_lots(self, symbol: str, size: Decimal) -> int:
        return self._market(symbol).size.units(size)

    def price_of(self, symbol: str, ticks: int) -> Decimal:
        return self._market(symbol).price.value(ticks)

    def size_of(self, symbol: str, lots: int) -> Decimal:
        return self._market(symbol).size.value(lots)

    def price_str(self, symbol: str, ticks: int) -> str:
        return self._market(symbol).price.text(ticks)

    def size_str(self, symbol: str, lots: int) -> str:
        return self._market(symbol).size.text(lots)

    def formatters(self, symbol: str) -> tuple[Callable[[int], str], Callable[[int], str]]:
        """(price_text, size_text) of one symbol, for callers that format on the hot path."""
        market = self._market(symbol)
        return market.price.text, market.size.text

    # ---- user API

    def place(self, req: OrderRequest) -> tuple[Order, bool]:
        """(order, duplicate): a known client_order_id returns the first order, duplicate=True."""
        with localcontext(EXACT):
            first = self._oms.duplicate(req.client_order_id)
            if first is not None:
                return first, True
            market = self._market(req.symbol)
            self._check_band(market, req)
            placed = self._place_new(market, self._oms.prepare(req, market.instrument))
            self._run_stops(market)  # its trades may trigger stops; the answer is the order as placed
            return placed, False

    def cancel(
        self, order_id: str | None = None, client_order_id: str | None = None, reason: str = _BY_REQUEST
    ) -> Order:
        """Cancel an open order; `reason` becomes its status_reason (who asked, and why)."""
        with localcontext(EXACT):
            order = self._oms.find(order_id, client_order_id)
            if not order.status.is_open:
                raise FailedPrecondition(f"order {order.order_id} is {order.status.value}, not open")
            return self._cancel_open(order, reason)

    def amend(
        self, order_id: str | None, client_order_id: str | None, change: Amendment
    ) -> tuple[Order, bool]:
        """Change an open order in place (the module's docstring, "Amending"); (order, True)
        when change.client_order_id already names this order (a repeated amendment)."""
        with localcontext(EXACT):
            order = self._oms.find(order_id, client_order_id)
            if change.client_order_id:
                named = self._oms.duplicate(change.client_order_id)
                if named is not None and named.order_id == order.order_id:
                    return named, True
                if named is not None:
                    raise AlreadyExists(
                        f"client_order_id {change.client_order_id!r} names order {named.order_id}"
                    )
            if not order.status.is_open:
                raise FailedPrecondition(f"order {order.order_id} is {order.status.value}, not open")
            require_unfilled(order, change)
            market = self._markets[order.symbol]
            engine_id = int(order.order_id)
            req = self._oms.amended_request(engine_id, change)
            self._check_band(market, req)
            if order.type.is_stop and not order.triggered:
                self._amend_waiting(market, engine_id, req, change.reason)
            else:
                self._amend_in_book(market, engine_id, order, req, change.reason)
            self._run_stops(market)
            return self._oms.find(order.order_id, None), False

    def cancel_all(self, symbol: str | None = None, reason: str = _BY_REQUEST) -> list[Order]:
        if symbol is not None:
            self._market(symbol)
        with localcontext(EXACT):
            return [self._cancel_open(order, reason) for order in self._oms.open_orders(symbol)]

    def get(self, order_id: str | None = None, client_order_id: str | None = None) -> Order:
        return self._oms.find(order_id, client_order_id)

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        if symbol is not None:
            self._market(symbol)
        return self._oms.open_orders(symbol)

    def open_prices(self, symbol: str) -> list[Decimal]:
        """The limit and trigger prices of a symbol's open orders (open_orders' without copies)."""
        return self._oms.open_prices(symbol)

    def balances(self) -> list[Balance]:
        return self._accounts.balances()

    @property
    def account_changes(self) -> int:
        """Changes whenever the account does (an amount, a position, the assets held):
        balances() and positions() may differ only then (margin figures at the mark apart)."""
        return self._accounts.changes

    def positions(self, symbol: str | None = None) -> list[Position]:
        """Each position; a margined perpetual's with its margin figures at the mark."""
        if symbol is None:
            found = self._accounts.positions()
        else:
            self._market(symbol)
            found = [self._accounts.position(symbol)]
        if self._margin is None:
            return found
        with localcontext(EXACT):
            return [self._with_margin(position) for position in found]

    def _with_margin(self, position: Position) -> Position:
        if self._market(position.symbol).funding is None or self._margin is None:
            return position
        return dataclasses.replace(position, margin=self._margin.figures(position.symbol))

    # ---- margin and liquidation of perpetuals (margin_account.py)

    @property
    def margined(self) -> bool:
        """Whether perpetuals are margined and liquidated (the exchange was given MarginTerms)."""
        return self._margin is not None

    def mark(self, symbol: str) -> Decimal | None:
        """The price margin is reckoned at: the mark the venue stated (replay_mark) while it is
        fresh, else the book's mid, else the last trade, else the only quoted side
        (price_band.reference_ticks); None without any. Funding is paid at the book's."""
        stated = self._stated_mark(symbol) if self._stated_marks else None
        if stated is not None:
            return stated
        market = self._market(symbol)
        reference = reference_ticks(market.book, market.last_trade)
        return None if reference is None else reference[0] * market.instrument.tick_size

    def replay_mark(self, symbol: str, price: Decimal, ts_ns: int) -> None:
        """A backtest's: the mark the venue stated at ts_ns (the recorder's mark_prices), which
        margin and liquidation are reckoned at instead of the book's while the clock is at most
        STATED_MARK_FRESH_NS past it (a recording with a hole in its marks falls back to the book)."""
        if price <= 0:
            raise InvalidArgument.field("mark_price", f"{symbol}: a mark must be above 0, got {price}")
        self._market(symbol)
        self._stated_marks[symbol] = (ts_ns, price)

    def _stated_mark(self, symbol: str) -> Decimal | None:
        stated = self._stated_marks.get(symbol)
        if stated is None or self._clock() - stated[0] > STATED_MARK_FRESH_NS:
            return None
        return stated[1]

    def leverage(self, symbol: str) -> LeverageSetting:
        return self._margin_of(symbol).setting(symbol)

    def leverages(self) -> list[LeverageSetting]:
        """Every margined perpetual's leverage in force (none unmargined)."""
        margin = self._margin
        return [] if margin is None else [margin.setting(m.instrument.symbol) for m in self._perpetuals]

    def set_leverage(self, symbol: str, leverage: Decimal, mode: MarginMode | None) -> LeverageSetting:
        """Set a perpetual's leverage (and margin mode): margin_account.MarginAccount.set."""
        margin = self._margin_of(symbol)
        with localcontext(EXACT):
            return margin.set(symbol, leverage, mode, bool(self._oms.open_orders(symbol)))

    def at_risk(self, symbol: str) -> bool:
        """Whether the symbol is a margined perpetual with a position open (liquidation may come)."""
        return self._margin is not None and self._accounts.position_size(symbol) != 0

    def may_liquidate(self, symbol: str, bid: int | None, ask: int | None) -> bool:
        """Whether the symbol's position may be due with this best bid and ask (ticks) on its book:
        a caller that keeps levels off the engine's book (a backtest's mirror) asks first, and
        makes the book whole and calls check_liquidations() only then. The mark is reckoned as
        mark() reckons it, from these (the venue's stated mark while fresh, whatever the book)."""
        if self._margin is None or self._accounts.position_size(symbol) == 0:
            return False
        market = self._market(symbol)
        stated = self._stated_mark(symbol) if self._stated_marks else None
        if stated is not None:
            with localcontext(EXACT):
                return self._margin.due_at(symbol, stated)
        if bid is not None and ask is not None:
            ticks: Decimal | int = Decimal(bid + ask) / 2
        elif market.last_trade is not None:
            ticks = market.last_trade
        elif bid is not None or ask is not None:
            ticks = bid if bid is not None else ask  # type: ignore[assignment]
        else:
            return False
        with localcontext(EXACT):
            return self._margin.due_at(symbol, ticks * market.instrument.tick_size)

    def check_liquidations(self) -> list[Order]:
        """Liquidate every position due (margin ratio at 1 at the mark), one at a time, each
        reckoned after the one before: its open orders canceled, then the engine's order closing
        it at the bankruptcy price with the liquidation fee. Returns those orders (FILLED)."""
        if self._margin is None or not self._margin.watching():
            return []
        done: list[Order] = []
        with localcontext(EXACT):
            for _ in range(len(self._perpetuals)):
                due = self._margin.due()
                if not due:
                    break
                done.append(self._liquidate(due[0]))
        return done

    def _liquidate(self, symbol: str) -> Order:
        assert self._margin is not None
        for order in self._oms.open_orders(symbol):
            self._cancel_open(order, _LIQUIDATING)
        out = self._margin.liquidation(symbol)
        self._last_id += 1
        instrument = self._market(symbol).instrument
        return self._oms.liquidate(instrument, out.side, out.size, out.price, out.fee, self._last_id)

    def _margin_of(self, symbol: str) -> MarginAccount:
        market = self._market(symbol)
        if self._margin is None or market.funding is None:
            raise FailedPrecondition(f"{symbol} on {self.venue} is not a margined perpetual")
        return self._margin

    # ---- funding of perpetuals

    def settle_funding(self) -> list[FundingPayment]:
        """Pay the funding of every perpetual position whose funding time has come (on the
        exchange's clock); returns the payments made. They join the history in time order, so
        that the history stays sorted across symbols (a page cut at its limit skips none)."""
        if not self._perpetuals:
            return []
        now_ns = self._clock()
        paid: list[FundingPayment] = []
        with localcontext(EXACT):
            for market in self._perpetuals:
                assert market.funding is not None
                for ts_ns in market.funding.due(now_ns):
                    payment = self._fund(market, ts_ns)
                    if payment is not None:
                        paid.append(payment)
        paid.sort(key=lambda p: (p.ts_ns, p.funding_id))
        for payment in paid:
            self._funding.add(payment)
        return paid

    def next_funding_ns(self) -> int | None:
        """The earliest funding time of any perpetual not paid yet (None without perpetuals)."""
        times = [m.funding.next_ns for m in self._perpetuals if m.funding is not None]
        return min(times) if times else None

    def funding_quote(self, symbol: str) -> tuple[Decimal, int, Decimal | None] | None:
        """A perpetual's funding as it stands: the rate its next funding time pays, that time, and
        the mark it would be paid at now (None while the market has no price); None for a symbol
        that is not a perpetual."""
        market = self._market(symbol)
        if market.funding is None:
            return None
        next_ns = market.funding.next_ns
        reference = reference_ticks(market.book, market.last_trade)
        mark = None if reference is None else reference[0] * market.instrument.tick_size
        return market.terms.rate_at(next_ns)[0], next_ns, mark

    def replay_funding_rates(self, symbol: str, recorded: Sequence[tuple[int, Decimal]]) -> None:
        """A backtest's: the rates the venue applied at its funding times (oldest first), paid
        instead of the configured rate where they cover a funding time (FundingTerms.rate_at)."""
        market = self._market(symbol)
        if market.funding is None:
            raise InvalidArgument.field("symbol", f"{symbol} is not a perpetual: it has no funding")
        market.terms = dataclasses.replace(market.terms, recorded=tuple(sorted(recorded)))

    def funding_rate_recorded(self, symbol: str, ts_ns: int) -> bool:
        """Whether the funding of `symbol` at ts_ns pays a recorded rate (replay_funding_rates)."""
        return self._market(symbol).terms.rate_at(ts_ns)[1]

    def funding_payments(self, symbol: str | None, since_ns: int, limit: int) -> list[FundingPayment]:
        """The funding payments made at or after since_ns, oldest first, at most `limit`."""
        if symbol is not None:
            self._market(symbol)
        return self._funding.page(symbol, since_ns, limit)

    def _fund(self, market: _Market, ts_ns: int) -> FundingPayment | None:
        instrument = market.instrument
        size = self._accounts.position_size(instrument.symbol)
        reference = reference_ticks(market.book, market.last_trade)
        if size == 0 or reference is None:
            return None
        mark = reference[0] * instrument.tick_size
        rate, _ = market.terms.rate_at(ts_ns)
        if is_inverse_perpetual(instrument):
            amount = funding_amount(instrument.contract_value, size, mark, rate)
        else:
            amount = -(size * instrument.contract_size * mark * rate)
        self._accounts.credit(instrument.settle_asset, amount)
        payment = FundingPayment(
            funding_id=funding_id(instrument.native_symbol, ts_ns),
            symbol=instrument.symbol,
            asset=instrument.settle_asset,
            amount=amount,
            rate=rate,
            position_size=size,
            ts_ns=ts_ns,
        )
        return payment

    # ---- synthetic API (hot path: ints only)

    def submit_synthetic(
        self,
        symbol: str,
        side: Side,
        price_ticks: int | None,
        lots: int,
        tif: TimeInForce = TimeInForce.GTC,
        *,
        stops: bool = True,
    ) -> int:
        """Add synthetic liquidity (price None = market order); returns its engine order id.
        `stops` False: the stops its trades trigger wait for run_stops() (the next orders are
        the same operation's)."""
        market = self._market(symbol)
        self._last_id += 1
        order_id = self._last_id
        result = market.book.submit(order_id, SYNTHETIC, side, price_ticks, lots, tif, cap=market.cap)
        if result.fills or result.trimmed:
            self._publish(market, side, SYNTHETIC, result)
        elif result.changes:  # _publish's answer without trades, one call less on the hot path
            self.listener.on_levels(market.instrument.symbol, result.changes)
        if stops and market.moved is not None:
            self._run_stops(market)
        return order_id

    def run_stops(self, symbol: str) -> None:
        """Place the stops that the trades since they were last checked triggered (those held
        back by submit_synthetic(..., stops=False))."""
        market = self._market(symbol)
        if market.moved is not None:
            self._run_stops(market)

    def cancel_synthetic(self, symbol: str, order_id: int) -> int:
        """Lots removed; 0 when the order is not resting or is not synthetic."""
        book = self._market(symbol).book
        resting = book.resting(order_id)
        if resting is None or resting.owner != SYNTHETIC:
            return 0
        lots, change = book.cancel(order_id)
        if change is not None:
            self.listener.on_levels(symbol, [change])
        return lots

    def reduce_synthetic(self, symbol: str, order_id: int, lots: int) -> int:
        """Take up to `lots` off a resting synthetic order, which keeps its queue position;
        lots removed (0 when the order is not resting or is not synthetic)."""
        book = self._market(symbol).book
        resting = book.resting(order_id)
        if resting is None or resting.owner != SYNTHETIC:
            return 0
        removed, change = book.reduce(order_id, lots)
        if change is not None:
            self.listener.on_levels(symbol, [change])
        return removed

    # ---- synthetic liquidity kept outside the book (a replayed venue's levels nothing reads yet)

    def take_order_id(self) -> int:
        """The id the next order would get, taken: liquidity that submit_synthetic would have
        placed and that enters the book later (rest_synthetic) keeps the ids of our orders the
        same as if it had been placed at once."""
        self._last_id += 1
        return self._last_id

    def take_order_ids(self, count: int) -> int:
        """take_order_id() `count` times at once; the last id taken."""
        self._last_id += count
        return self._last_id

    def rest_synthetic(self, symbol: str, order_id: int, side: Side, price_ticks: int, lots: int) -> None:
        """Put synthetic liquidity at the back of its level under an id taken before; it must not
        reach the other side (the listener is not told: the level was there all along)."""
        book = self._market(symbol).book
        if book.would_cross(side, price_ticks):
            raise FailedPrecondition(f"synthetic order {order_id} would trade at {price_ticks} ticks")
        book.submit(order_id, SYNTHETIC, side, price_ticks, lots, TimeInForce.GTC)

    def note_trades(self, symbol: str, count: int, price_ticks: int) -> None:
        """`count` trades made outside the book between synthetic orders, the last at price_ticks:
        their trade ids are taken and the last trade price set (no stop may trigger on them; the
        listener is not told)."""
        market = self._market(symbol)
        market.trade_seq += count
        market.last_trade = price_ticks

    def stops_reached(self, symbol: str, low: int, high: int) -> bool:
        """Whether trades between low and high (ticks) may trigger a waiting stop."""
        stops = self._market(symbol).stops
        return bool(stops.live) and stops.reached(low, high)

    # ---- internals

    def _market(self, symbol: str) -> _Market:
        market = self._markets.get(symbol)
        if market is None:
            raise NotFound(f"unknown symbol {symbol!r} on venue {self.venue}")
        return market

    def _check_band(self, market: _Market, req: OrderRequest) -> None:
        reference = reference_ticks(market.book, market.last_trade)
        if reference is None:
            return
        for field, price in (("price", req.price), ("trigger_price", req.trigger_price)):
            if price is None or price <= 0:
                continue  # a market order has no band; a bad price is the order manager's to refuse
            self._band.check(market.price.units(price), reference, market.instrument.tick_size, field)

    def _emit_execution(self, execution: Execution) -> None:
        self.listener.on_execution(execution)

    def _place_new(self, market: _Market, req: OrderRequest) -> Order:
        lots = market.size.units(req.size)
        ticks = None if req.price is None else market.price.units(req.price)
        self._last_id += 1
        order_id = self._last_id
        if req.type.is_stop:
            assert req.trigger_price is not None  # the order manager refuses a stop without one
            trigger = market.price.units(req.trigger_price)
            order = self._oms.accept_stop(req, market.instrument, order_id)
            market.stops.add(order_id, req.side, trigger)
            return order
        if req.post_only and ticks is not None and market.book.would_cross(req.side, ticks):
            return self._oms.reject(req, market.instrument, order_id, _POST_ONLY_REASON)
        cost = self._market_buy_cost(market, req, lots)
        if self._margin is not None and market.funding is not None and not req.reduce_only:
            symbol = req.symbol
            notional = cost if req.price is None else self._margin.order_notional(symbol, req.price, req.size)
            self._margin.check_order(symbol, req.side, notional)
        self._oms.accept(req, market.instrument, order_id, cost)
        result = market.book.submit(order_id, USER, req.side, ticks, lots, req.time_in_force, req.post_only)
        self._publish(market, req.side, USER, result)
        return self._conclude(order_id, req, result)

    def _run_stops(self, market: _Market) -> None:
        """Place the stops that the trades since the last check triggered (and those that their
        own trades trigger in turn)."""
        while market.moved is not None:
            low, high = market.moved
            market.moved = None
            for order_id in market.stops.due(low, high):
                with localcontext(EXACT):
                    self._trigger(market, order_id)

    def _trigger(self, market: _Market, order_id: int) -> None:
        req = self._oms.triggered_request(order_id)
        if req is None:
            return
        lots = market.size.units(req.size)
        if not self._oms.trigger(order_id, req, self._market_buy_cost(market, req, lots)):
            return
        ticks = None if req.price is None else market.price.units(req.price)
        result = market.book.submit(order_id, USER, req.side, ticks, lots, req.time_in_force)
        self._publish(market, req.side, USER, result)
        self._conclude(order_id, req, result)

    def _market_buy_cost(self, market: _Market, req: OrderRequest, lots: int) -> Decimal:
        """What a market order would pay walking the book now: a spot buy's cost, or a perpetual
        order's (either side) notional (an inverse one's in the coin), off which its fee lock
        is taken."""
        perpetual = market.funding is not None
        if req.type is not OrderType.MARKET or (req.side is not Side.BUY and not perpetual):
            return Decimal(0)
        walk = market.book.preview(req.side, None, lots)
        if is_inverse_perpetual(market.instrument):
            face = market.instrument.contract_value
            return sum(
                (contract_worth(face, market.price.value(p), market.size.value(n)) for p, n in walk),
                Decimal(0),
            )
        cost = sum((market.price.value(p) * market.size.value(n) for p, n in walk), Decimal(0))
        return cost * market.instrument.contract_size if perpetual else cost

    def _conclude(self, order_id: int, req: OrderRequest, result: MatchResult) -> Order:
        if not self._oms.is_open(order_id):
            return self._oms.find(str(order_id), None)
        if result.rejected_post_only:
            return self._oms.close(order_id, OrderStatus.REJECTED, _POST_ONLY_REASON)
        if result.expired:
            return self._oms.close(order_id, OrderStatus.EXPIRED, _expiry_reason(req, result))
        return self._oms.find(str(order_id), None)

    def _amend_waiting(self, market: _Market, engine_id: int, req: OrderRequest, reason: str) -> None:
        assert req.trigger_price is not None
        self._oms.amend(engine_id, req, reason)
        market.stops.remove(engine_id)
        market.stops.add(engine_id, req.side, market.price.units(req.trigger_price))

    def _amend_in_book(
        self, market: _Market, engine_id: int, order: Order, req: OrderRequest, reason: str
    ) -> None:
        """A size decrease at the same price keeps the order's place in its queue; any other
        change takes it out and submits it again (at the back of its level, or trading now
        when the new price crosses)."""
        assert req.price is not None  # a working order rests, so it has a price
        ticks = market.price.units(req.price)
        lots = market.size.units(req.size - order.filled_size)
        if req.post_only and market.book.would_cross(req.side, ticks):
            raise FailedPrecondition(
                f"{_POST_ONLY_REASON}: the amendment was refused, the order is unchanged"
            )
        resting = market.book.resting(engine_id)
        in_book = 0 if resting is None else resting.remaining
        self._oms.amend(engine_id, req, reason)
        if req.price == order.price and lots <= in_book:
            self._reduce_in_book(market, engine_id, market.size.value(in_book - lots))
            return
        _, change = market.book.cancel(engine_id)
        if change is not None:
            self.listener.on_levels(order.symbol, [change])
        result = market.book.submit(engine_id, USER, req.side, ticks, lots, req.time_in_force, req.post_only)
        self._publish(market, req.side, USER, result)
        self._conclude(engine_id, req, result)

    def _cancel_open(self, order: Order, reason: str) -> Order:
        order_id = int(order.order_id)
        market = self._markets[order.symbol]
        market.stops.remove(order_id)
        _, change = market.book.cancel(order_id)
        if change is not None:
            self.listener.on_levels(order.symbol, [change])
        return self._oms.close(order_id, OrderStatus.CANCELED, reason)

    def _publish(self, market: _Market, taker_side: Side, taker_owner: int, result: MatchResult) -> None:
        symbol = market.instrument.symbol
        if not result.fills:
            if result.changes:
                self.listener.on_levels(symbol, result.changes)
            if result.trimmed:
                with localcontext(EXACT):
                    self._keep_reduce_only_within(market, result.trimmed)
            return
        ts_ns = self._clock()
        trade_ids = self._publish_trades(market, taker_side, result.fills, ts_ns)
        self.listener.on_levels(symbol, result.changes)
        users = taker_owner == USER or any(f.maker_owner == USER for f in result.fills)
        if users or result.trimmed:
            with localcontext(EXACT):
                if users:
                    self._route_user_fills(market, taker_owner, result.fills, trade_ids)
                self._keep_reduce_only_within(market, result.trimmed)

    # ---- reduce-only orders against the position (the module's docstring)

    def _reduce_only_room(self, market: _Market, maker_id: int, fills: list[Match]) -> int | None:
        """The engine's maker cap while a synthetic taker sweeps: the lots a reduce-only maker
        may fill now, the position less what the sweep's user fills so far took off it (all of
        them makers on this maker's side); None for any other order."""
        side = self._oms.reduce_only_side(maker_id)
        if side is None:
            return None
        with localcontext(EXACT):
            swept = market.size.value(sum(fill.lots for fill in fills if fill.maker_owner == USER))
            position = self._accounts.position_size(market.instrument.symbol) + side.sign * swept
            return market.size.units(reducible(side, position))

    def _keep_reduce_only_within(self, market: _Market, trimmed: list[int]) -> None:
        """After user fills: each reduce-only order in the book (or that the sweep's cap took
        out of it) is left with no more than the position it reduces: trimmed, or CANCELED."""
        symbol = market.instrument.symbol
        position = self._accounts.position_size(symbol)
        for order in self._oms.reduce_only_orders(symbol):
            engine_id = int(order.order_id)
            resting = market.book.resting(engine_id)
            if resting is None and engine_id not in trimmed:
                continue  # a reduce-only taker still at work: its own end concludes it
            in_book = Decimal(0) if resting is None else market.size.value(resting.remaining)
            keep = min(order.remaining, in_book, reducible(order.side, position))
            self._reduce_in_book(market, engine_id, in_book - keep)
            if keep == 0:
                self._oms.close(engine_id, OrderStatus.CANCELED, _REDUCED_AWAY)
            elif keep < order.remaining:
                self._oms.trim(engine_id, keep, _trim_reason(symbol, position))

    def _reduce_in_book(self, market: _Market, engine_id: int, size: Decimal) -> None:
        if size <= 0:
            return
        _, change = market.book.reduce(engine_id, market.size.units(size))
        if change is not None:
            self.listener.on_levels(market.instrument.symbol, [change])

    def _publish_trades(self, market: _Market, taker_side: Side, fills: list[Match], ts_ns: int) -> list[str]:
        symbol, on_trade = market.instrument.symbol, self.listener.on_trade
        trade_ids: list[str] = []
        for fill in fills:
            market.trade_seq += 1
            trade_id = str(market.trade_seq)
            trade_ids.append(trade_id)
            on_trade(symbol, trade_id, fill.price, fill.lots, taker_side, ts_ns)
        market.last_trade = fills[-1].price
        if market.stops.live:  # the attribute, not __bool__: this runs for every trade
            prices = [fill.price for fill in fills]
            low, high = min(prices), max(prices)
            if market.moved is not None:
                low, high = min(low, market.moved[0]), max(high, market.moved[1])
            market.moved = (low, high)
        return trade_ids

    def _route_user_fills(
        self, market: _Market, taker_owner: int, fills: list[Match], trade_ids: list[str]
    ) -> None:
        for fill, trade_id in zip(fills, trade_ids, strict=True):
            price, size = market.price.value(fill.price), market.size.value(fill.lots)
            if fill.maker_owner == USER:
                self._oms.fill(fill.maker_id, price, size, Liquidity.MAKER, trade_id)
            if taker_owner == USER:
                self._oms.fill(fill.taker_id, price, size, Liquidity.TAKER, trade_id)


def _check_kind(instrument: Instrument) -> None:
    """Spot pairs, linear perpetuals settled in the quote asset (a contract is contract_size of
    the base asset: 1 for the sim's own, a live venue's for a paper one), and inverse perpetuals
    (a face value of the quote asset a contract, settled in the base coin)."""
    if instrument.kind is InstrumentKind.SPOT:
        return
    if instrument.kind is InstrumentKind.PERPETUAL and is_inverse_perpetual(instrument):
        if instrument.contract_value <= 0:
            raise InvalidArgument.field("instruments", f"{instrument.symbol}: a contract value is positive")
        return
    linear = instrument.settle_asset == instrument.quote_asset and instrument.contract_size > 0
    if instrument.kind is not InstrumentKind.PERPETUAL or not linear or instrument.inverse:
        raise InvalidArgument.field(
            "instruments",
            f"{instrument.symbol}: the sim venue trades spot, linear perpetuals (settled in the quote "
            "asset) and inverse perpetuals (settled in the base coin) only",
        )


def _trim_reason(symbol: str, position: Decimal) -> str:
    return f"reduce-only order trimmed to the {symbol} position of {format_decimal(position)}"


def _expiry_reason(req: OrderRequest, result: MatchResult) -> str:
    if result.fok_killed:
        return "fill-or-kill order could not be filled completely"
    if req.type is OrderType.MARKET:
        return "market order remainder expired: not enough liquidity"
    return "immediate-or-cancel remainder expired"
