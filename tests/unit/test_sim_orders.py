"""The sim exchange's order manager and accounts: properties over random trading, then cases."""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterable
from decimal import Decimal, localcontext

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from trademesh.core.domain.decimals import format_decimal
from trademesh.core.domain.matching.accounts import EXACT
from trademesh.core.domain.matching.engine import SYNTHETIC, LevelChange
from trademesh.core.domain.matching.exchange import SimExchange
from trademesh.core.domain.matching.order_manager import reducible
from trademesh.core.domain.model import (
    Execution,
    Fill,
    Instrument,
    InstrumentKind,
    Liquidity,
    Order,
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
)
from trademesh.core.platform.errors import FailedPrecondition, InvalidArgument, NotFound

BUY, SELL = Side.BUY, Side.SELL
GTC, IOC, FOK = TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK
LIMIT, MARKET = OrderType.LIMIT, OrderType.MARKET
D = Decimal


def spot(symbol: str, tick: str, lot: str) -> Instrument:
    base, quote = symbol.split("/")
    return Instrument(
        venue="sim",
        symbol=symbol,
        native_symbol=base + quote,
        kind=InstrumentKind.SPOT,
        base_asset=base,
        quote_asset=quote,
        settle_asset=quote,
        tick_size=D(tick),
        lot_size=D(lot),
    )


BTC = spot("BTC/USDT", "0.5", "0.01")
ETH = spot("ETH/USDT", "0.01", "0.001")
INSTRUMENTS = {i.symbol: i for i in (BTC, ETH)}
# Price ranges in ticks, narrow so that orders cross often: BTC ~100 USDT, ETH ~50 USDT.
TICKS = {BTC.symbol: (190, 210), ETH.symbol: (4990, 5010)}


class Recorder:
    """Listener that keeps everything the exchange reports."""

    def __init__(self) -> None:
        self.trades: list[tuple[str, str, int, int, Side, int]] = []
        self.levels: dict[str, dict[Side, dict[int, int]]] = defaultdict(lambda: {BUY: {}, SELL: {}})
        self.executions: list[Execution] = []

    def on_trade(
        self, symbol: str, trade_id: str, price_ticks: int, lots: int, taker_side: Side, ts_ns: int
    ) -> None:
        self.trades.append((symbol, trade_id, price_ticks, lots, taker_side, ts_ns))

    def on_levels(self, symbol: str, changes: list[LevelChange]) -> None:
        for side, price, total in changes:
            if total == 0:
                del self.levels[symbol][side][price]
            else:
                self.levels[symbol][side][price] = total

    def on_execution(self, execution: Execution) -> None:
        self.executions.append(execution)

    def fills(self) -> list[Fill]:
        return [e.fill for e in self.executions if e.fill is not None]


def make_exchange(
    balances: dict[str, Decimal], maker: str = "0.0002", taker: str = "0.001"
) -> tuple[SimExchange, Recorder]:
    recorder = Recorder()
    ticks = itertools.count(1_000)
    exchange = SimExchange(
        "sim",
        [BTC, ETH],
        maker_fee_rate=D(maker),
        taker_fee_rate=D(taker),
        balances=balances,
        clock=lambda: next(ticks),
        listener=recorder,
    )
    return exchange, recorder


def limit(
    side: Side, price: str, size: str, tif: TimeInForce = GTC, symbol: str = "BTC/USDT", **kw: object
) -> OrderRequest:
    return OrderRequest(symbol, side, LIMIT, D(size), D(price), tif, **kw)  # type: ignore[arg-type]


def market(side: Side, size: str, symbol: str = "BTC/USDT", **kw: object) -> OrderRequest:
    return OrderRequest(symbol, side, MARKET, D(size), None, TimeInForce.IOC, **kw)  # type: ignore[arg-type]


def state_of(exchange: SimExchange) -> tuple[object, ...]:
    books = [(exchange.book(s).depth(BUY), exchange.book(s).depth(SELL)) for s in INSTRUMENTS]
    return books, exchange.open_orders(), exchange.balances()


def expected_totals(initial: dict[str, Decimal], fills: Iterable[Fill]) -> dict[str, Decimal]:
    totals: dict[str, Decimal] = defaultdict(Decimal, initial)
    for f in fills:
        instrument = INSTRUMENTS[f.symbol]
        notional = f.price * f.size
        if f.side is BUY:
            totals[instrument.base_asset] += f.size
            totals[instrument.quote_asset] -= notional + f.fee
        else:
            totals[instrument.base_asset] -= f.size
            totals[instrument.quote_asset] += notional - f.fee
    return totals


# ---- random trading: user and synthetic orders on two symbols


class Trading(RuleBasedStateMachine):
    exchange: SimExchange
    recorder: Recorder

    def __init__(self) -> None:
        super().__init__()
        self.initial: dict[str, Decimal] = {}
        self.maker = self.taker = D(0)
        self.clients: dict[str, str] = {}  # client_order_id -> first order id
        self.placed: list[str] = []
        self.synthetic: dict[str, list[int]] = defaultdict(list)
        self.requests: dict[str, OrderRequest] = {}

    @initialize(
        usdt=st.sampled_from(["0", "3", "60", "100000", "100000"]),
        btc=st.sampled_from(["0", "0.05", "10", "10"]),
        eth=st.sampled_from(["0", "0.01", "5", "5"]),
        maker=st.sampled_from(["-0.0001", "0", "0.0002", "0.001"]),
        taker=st.sampled_from(["0", "0.0005", "0.001"]),
    )
    def open_venue(self, usdt: str, btc: str, eth: str, maker: str, taker: str) -> None:
        self.initial = {"USDT": D(usdt), "BTC": D(btc), "ETH": D(eth)}
        self.maker, self.taker = D(maker), D(taker)
        self.exchange, self.recorder = make_exchange(dict(self.initial), maker, taker)

    # ---- user orders

    @rule(
        data=st.data(),
        symbol=st.sampled_from(sorted(INSTRUMENTS)),
        side=st.sampled_from([BUY, SELL]),
        lots=st.integers(1, 20),
        tif=st.sampled_from([GTC, GTC, IOC, FOK]),
        post_only=st.booleans(),
        reduce_only=st.sampled_from([False, False, False, True]),
        client=st.sampled_from([""] * 4 + [f"c{n}" for n in range(30)]),
    )
    def user_limit(
        self,
        data: st.DataObject,
        symbol: str,
        side: Side,
        lots: int,
        tif: TimeInForce,
        post_only: bool,
        reduce_only: bool,
        client: str,
    ) -> None:
        ticks = data.draw(st.integers(*TICKS[symbol]))
        ex = self.exchange
        req = OrderRequest(
            symbol,
            side,
            LIMIT,
            ex.size_of(symbol, lots),
            ex.price_of(symbol, ticks),
            tif,
            post_only,
            reduce_only,
            client,
        )
        would_cross = ex.book(symbol).would_cross(side, ticks)
        order = self.place(req)
        if order is not None and post_only:
            assert (order.status is OrderStatus.REJECTED) == would_cross

    @rule(
        symbol=st.sampled_from(sorted(INSTRUMENTS)),
        side=st.sampled_from([BUY, SELL]),
        lots=st.integers(1, 30),
        tif=st.sampled_from([IOC, FOK]),
        reduce_only=st.sampled_from([False, False, True]),
        client=st.sampled_from([""] * 4 + [f"c{n}" for n in range(30)]),
    )
    def user_market(
        self, symbol: str, side: Side, lots: int, tif: TimeInForce, reduce_only: bool, client: str
    ) -> None:
        size = self.exchange.size_of(symbol, lots)
        order = self.place(OrderRequest(symbol, side, MARKET, size, None, tif, False, reduce_only, client))
        if order is not None:
            assert not order.status.is_open, "market orders never rest"

    def place(self, req: OrderRequest) -> Order | None:
        """The new order; None when the request was refused or was a retry."""
        before, seen = state_of(self.exchange), len(self.recorder.executions)
        try:
            order, duplicate = self.exchange.place(req)
        except FailedPrecondition:
            assert req.client_order_id not in self.clients
            assert state_of(self.exchange) == before and len(self.recorder.executions) == seen
            return None
        if req.client_order_id in self.clients:
            assert duplicate and order.order_id == self.clients[req.client_order_id]
            assert state_of(self.exchange) == before and len(self.recorder.executions) == seen
            return None
        assert not duplicate and order.order_id not in self.placed
        assert order.size <= req.size and (order.size == req.size or req.reduce_only)
        self.placed.append(order.order_id)
        self.requests[order.order_id] = req
        self.clients[order.client_order_id] = order.order_id
        return order

    @precondition(lambda self: bool(self.placed))
    @rule(pick=st.integers(0, 10_000))
    def user_cancel(self, pick: int) -> None:
        order_id = self.placed[pick % len(self.placed)]
        was_open = self.exchange.get(order_id).status.is_open
        if not was_open:
            with pytest.raises(FailedPrecondition):
                self.exchange.cancel(order_id)
            return
        by_client = self.exchange.get(order_id).client_order_id if pick % 2 else None
        order = self.exchange.cancel(None if by_client else order_id, by_client)
        assert order.order_id == order_id and order.status is OrderStatus.CANCELED

    @rule(symbol=st.sampled_from([None, *sorted(INSTRUMENTS)]), skip=st.integers(0, 3))
    def user_cancel_all(self, symbol: str | None, skip: int) -> None:
        if skip:  # drawn so that cancel-all is rarer than the other rules
            return
        expected = {o.order_id for o in self.exchange.open_orders(symbol)}
        canceled = self.exchange.cancel_all(symbol)
        assert {o.order_id for o in canceled} == expected
        assert all(o.status is OrderStatus.CANCELED for o in canceled)
        assert self.exchange.open_orders(symbol) == []

    # ---- synthetic liquidity

    @rule(
        data=st.data(),
        symbol=st.sampled_from(sorted(INSTRUMENTS)),
        side=st.sampled_from([BUY, SELL]),
        lots=st.integers(1, 25),
        tif=st.sampled_from([GTC, GTC, GTC, IOC, FOK]),
        is_market=st.sampled_from([False, False, False, True]),
    )
    def synthetic_order(
        self, data: st.DataObject, symbol: str, side: Side, lots: int, tif: TimeInForce, is_market: bool
    ) -> None:
        ticks = None if is_market else data.draw(st.integers(*TICKS[symbol]))
        order_id = self.exchange.submit_synthetic(symbol, side, ticks, lots, tif)
        self.synthetic[symbol].append(order_id)

    @rule(data=st.data(), symbol=st.sampled_from(sorted(INSTRUMENTS)), levels=st.integers(1, 4))
    def synthetic_quotes(self, data: st.DataObject, symbol: str, levels: int) -> None:
        low, high = TICKS[symbol]
        mid = data.draw(st.integers(low + levels, high - levels))
        for n in range(1, levels + 1):
            self.synthetic[symbol].append(self.exchange.submit_synthetic(symbol, BUY, mid - n, 3 * n))
            self.synthetic[symbol].append(self.exchange.submit_synthetic(symbol, SELL, mid + n, 3 * n))

    @rule(symbol=st.sampled_from(sorted(INSTRUMENTS)), pick=st.integers(0, 10_000))
    def synthetic_cancel(self, symbol: str, pick: int) -> None:
        ids = self.synthetic[symbol]
        if ids:
            order_id = ids[pick % len(ids)]
            resting = self.exchange.book(symbol).resting(order_id)
            expected = 0 if resting is None else resting.remaining
            assert self.exchange.cancel_synthetic(symbol, order_id) == expected
        else:
            users = self.exchange.open_orders(symbol)
            if users:  # the generator must never be able to cancel a user's order
                assert self.exchange.cancel_synthetic(symbol, int(users[0].order_id)) == 0

    # ---- invariants

    @invariant()
    def book_is_never_crossed(self) -> None:
        for symbol in INSTRUMENTS:
            book = self.exchange.book(symbol)
            bid, ask = book.best_bid(), book.best_ask()
            assert bid is None or ask is None or bid < ask

    @invariant()
    def level_changes_replay_to_the_depth(self) -> None:
        for symbol in INSTRUMENTS:
            for side in (BUY, SELL):
                replayed = sorted(self.recorder.levels[symbol][side].items(), reverse=side is BUY)
                assert replayed == self.exchange.book(symbol).depth(side)

    @invariant()
    def balances_move_by_exactly_the_fills_and_fees(self) -> None:
        if not self.initial:
            return
        with localcontext(EXACT):
            for f in self.recorder.fills():
                rate = self.maker if f.liquidity is Liquidity.MAKER else self.taker
                assert f.fee == f.price * f.size * rate and f.fee_asset == "USDT"
            expected = expected_totals(self.initial, self.recorder.fills())
        for balance in self.exchange.balances():
            assert balance.total == expected[balance.asset], balance
            assert balance.free >= 0 and balance.locked >= 0

    @invariant()
    def only_open_orders_hold_locks_and_exactly_their_reserve(self) -> None:
        if not self.initial:
            return
        reserve: dict[str, Decimal] = defaultdict(Decimal)
        with localcontext(EXACT):
            for o in self.exchange.open_orders():
                instrument = INSTRUMENTS[o.symbol]
                assert o.price is not None
                if o.side is BUY:
                    reserve[instrument.quote_asset] += (
                        o.remaining * o.price * (1 + max(self.maker, self.taker))
                    )
                else:
                    reserve[instrument.base_asset] += o.remaining
        for balance in self.exchange.balances():
            assert balance.locked == reserve[balance.asset], balance

    @invariant()
    def orders_agree_with_their_fills(self) -> None:
        filled: dict[str, Decimal] = defaultdict(Decimal)
        last: dict[str, Order] = {}
        for e in self.recorder.executions:
            last[e.order.order_id] = e.order
            if e.fill is not None:
                lot = INSTRUMENTS[e.fill.symbol].lot_size
                assert e.fill.size > 0 and e.fill.size % lot == 0
                filled[e.order.order_id] += e.fill.size
                assert e.order.filled_size == filled[e.order.order_id]
        for order_id, order in last.items():
            assert order.filled_size == filled[order_id] <= order.size
            assert order == self.exchange.get(order_id)
        assert {o.order_id for o in self.exchange.open_orders()} == {
            order_id for order_id, order in last.items() if order.status.is_open
        }

    @invariant()
    def reduce_only_fills_never_pass_zero(self) -> None:
        """Replaying the fills in order, a reduce-only order's fill only ever brings the position
        towards zero; what rests of one is at most what is left of the position it reduces."""
        position: dict[str, Decimal] = defaultdict(Decimal)
        for f in self.recorder.fills():
            if self.exchange.get(f.order_id).reduce_only:
                assert reducible(f.side, position[f.symbol]) >= f.size, (f, position[f.symbol])
            position[f.symbol] += f.size * f.side.sign
        for o in self.exchange.open_orders():
            if o.reduce_only:
                assert o.remaining <= reducible(o.side, position[o.symbol]), (o, position[o.symbol])

    @invariant()
    def fok_is_all_or_nothing_and_post_only_never_takes(self) -> None:
        for e in self.recorder.executions:
            order = e.order
            if order.post_only and e.fill is not None:
                assert e.fill.liquidity is Liquidity.MAKER
            if order.time_in_force is FOK and not order.status.is_open:
                assert order.status is OrderStatus.FILLED or order.filled_size == 0

    def teardown(self) -> None:
        if not self.initial:
            return
        self.exchange.cancel_all()
        assert all(b.locked == 0 for b in self.exchange.balances())
        for symbol in INSTRUMENTS:
            book = self.exchange.book(symbol)
            for side in (BUY, SELL):
                for price, _ in book.depth(side):
                    assert all(o.owner == SYNTHETIC for o in book.orders_at(side, price))


@pytest.mark.slow  # a long property test (seconds of examples): not in the fast tier
def test_exchange_invariants_hold_under_random_user_and_synthetic_trading() -> None:
    run_state_machine_as_test(
        Trading, settings=settings(max_examples=300, stateful_step_count=50, deadline=None)
    )


# ---- single properties


requests = st.builds(
    OrderRequest,
    symbol=st.sampled_from(sorted(INSTRUMENTS)),
    side=st.sampled_from([BUY, SELL]),
    type=st.just(LIMIT),
    size=st.sampled_from([D("0.01"), D("0.05"), D("0.2")]),
    price=st.sampled_from([D("99.5"), D("100"), D("100.5")]),
    time_in_force=st.sampled_from([GTC, IOC, FOK]),
    post_only=st.booleans(),
    client_order_id=st.just("same"),
)


@settings(max_examples=100, deadline=None)
@given(
    first=requests, retry=requests, resting=st.lists(st.sampled_from(["99.5", "100", "100.5"]), max_size=4)
)
def test_a_repeated_client_order_id_returns_the_first_order_and_changes_nothing(
    first: OrderRequest, retry: OrderRequest, resting: list[str]
) -> None:
    exchange, recorder = make_exchange({"USDT": D(1000), "BTC": D(1), "ETH": D(1)})
    for n, price in enumerate(resting):
        exchange.place(limit(SELL if n % 2 else BUY, price, "0.02", post_only=True))
    original, duplicate = exchange.place(first)
    assert not duplicate
    before, seen = state_of(exchange), len(recorder.executions)
    again, duplicate = exchange.place(retry)
    assert duplicate and again == exchange.get(original.order_id)
    assert state_of(exchange) == before and len(recorder.executions) == seen


steps = st.builds(
    lambda mantissa, exponent: D(mantissa).scaleb(exponent),
    st.integers(1, 999),
    st.integers(-12, 3),
)


@settings(max_examples=300, deadline=None)
@given(tick=steps, lot=steps, units=st.integers(-(10**15), 10**15))
def test_fast_price_and_size_strings_equal_format_decimal_of_the_exact_value(
    tick: Decimal, lot: Decimal, units: int
) -> None:
    instrument = Instrument("sim", "X/Y", "XY", InstrumentKind.SPOT, "X", "Y", "Y", tick, lot)
    exchange = SimExchange(
        "sim", [instrument], maker_fee_rate=D(0), taker_fee_rate=D(0), balances={}, clock=lambda: 0
    )
    price, size = exchange.price_of("X/Y", units), exchange.size_of("X/Y", units)
    assert price == tick * units and size == lot * units
    assert exchange.price_str("X/Y", units) == format_decimal(price)
    assert exchange.size_str("X/Y", units) == format_decimal(size)
    assert exchange.to_ticks("X/Y", price) == units and exchange.to_lots("X/Y", size) == units


# ---- cases


def funded() -> tuple[SimExchange, Recorder]:
    return make_exchange({"USDT": D(10_000), "BTC": D(5), "ETH": D(0)})


def test_user_orders_at_one_price_fill_in_arrival_order_after_better_prices() -> None:
    exchange, recorder = funded()
    first, _ = exchange.place(limit(SELL, "100", "0.02"))
    second, _ = exchange.place(limit(SELL, "100", "0.03"))
    better, _ = exchange.place(limit(SELL, "99.5", "0.01"))
    exchange.submit_synthetic("BTC/USDT", BUY, None, 5)
    assert [(f.order_id, f.size) for f in recorder.fills()] == [
        (better.order_id, D("0.01")),
        (first.order_id, D("0.02")),
        (second.order_id, D("0.02")),
    ]
    assert all(f.liquidity is Liquidity.MAKER for f in recorder.fills())


def test_synthetic_taker_gives_the_user_a_maker_fill_with_maker_fee_and_balances() -> None:
    exchange, recorder = funded()
    order, _ = exchange.place(limit(BUY, "100", "0.5", client_order_id="mine"))
    exchange.submit_synthetic("BTC/USDT", SELL, exchange.to_ticks("BTC/USDT", D("99")), 20, IOC)
    (fill,) = recorder.fills()
    assert (fill.price, fill.size, fill.fee, fill.liquidity) == (
        D(100),
        D("0.2"),
        D("0.004"),
        Liquidity.MAKER,
    )
    assert fill.trade_id == recorder.trades[-1][1] and fill.client_order_id == "mine"
    balances = {b.asset: b for b in exchange.balances()}
    assert balances["BTC"].free == D("5.2")
    # 0.3 still open: 0.3 * 100 * 1.001 locked; the maker fill cost 20 + 0.004
    assert balances["USDT"].locked == D("30.03")
    assert balances["USDT"].total == D(10_000) - D("20.004")
    assert exchange.get(order.order_id).status is OrderStatus.PARTIALLY_FILLED


def test_limit_buy_filled_at_a_better_price_releases_the_unused_lock() -> None:
    exchange, _ = funded()
    exchange.submit_synthetic("BTC/USDT", SELL, exchange.to_ticks("BTC/USDT", D(90)), 100)
    order, _ = exchange.place(limit(BUY, "100", "1"))
    assert order.status is OrderStatus.FILLED and order.average_fill_price == D(90)
    usdt = next(b for b in exchange.balances() if b.asset == "USDT")
    assert usdt.locked == 0 and usdt.free == D(10_000) - D("90.09")


def test_average_fill_price_is_exact_or_rounded_to_18_places() -> None:
    exchange, _ = funded()
    for price in ("100", "100.5", "100.5"):
        exchange.submit_synthetic("BTC/USDT", SELL, exchange.to_ticks("BTC/USDT", D(price)), 1)
    order, _ = exchange.place(market(BUY, "0.03"))
    assert order.average_fill_price == D("100.333333333333333333")
    order, _ = exchange.place(limit(BUY, "101", "0.02"))
    assert order.status is OrderStatus.OPEN
    exchange.submit_synthetic("BTC/USDT", SELL, None, 2)
    assert exchange.get(order.order_id).average_fill_price == D(101)


def test_insufficient_quote_for_a_limit_buy_names_the_asset_and_changes_nothing() -> None:
    exchange, recorder = make_exchange({"USDT": D(100), "BTC": D(0), "ETH": D(0)})
    with pytest.raises(FailedPrecondition, match=r"insufficient USDT: need 650\.65, free 100"):
        exchange.place(limit(BUY, "650", "1", client_order_id="x"))
    assert recorder.executions == [] and exchange.open_orders() == []
    with pytest.raises(NotFound):
        exchange.get(client_order_id="x")


def test_insufficient_funds_for_market_orders_name_the_asset() -> None:
    exchange, _ = make_exchange({"USDT": D(10), "BTC": D("0.01"), "ETH": D(0)})
    exchange.submit_synthetic("BTC/USDT", SELL, exchange.to_ticks("BTC/USDT", D(100)), 50)
    with pytest.raises(FailedPrecondition, match="insufficient USDT"):
        exchange.place(market(BUY, "0.1"))
    with pytest.raises(FailedPrecondition, match="insufficient BTC"):
        exchange.place(market(SELL, "0.02"))


def test_market_buy_locks_the_walked_cost_and_ends_with_nothing_locked() -> None:
    exchange, _ = make_exchange({"USDT": D("20.02"), "BTC": D(0), "ETH": D(0)})
    exchange.submit_synthetic("BTC/USDT", SELL, exchange.to_ticks("BTC/USDT", D(100)), 20)
    order, _ = exchange.place(market(BUY, "0.5"))
    assert order.status is OrderStatus.EXPIRED and order.filled_size == D("0.2")
    assert {b.asset: (b.free, b.locked) for b in exchange.balances()}["USDT"] == (D(0), D(0))


def test_market_order_on_an_empty_book_expires_without_fills() -> None:
    exchange, _ = funded()
    order, _ = exchange.place(market(BUY, "1"))
    assert order.status is OrderStatus.EXPIRED and order.filled_size == 0
    assert "liquidity" in order.status_reason


def test_post_only_order_that_would_cross_is_rejected_and_locks_nothing() -> None:
    exchange, recorder = funded()
    exchange.submit_synthetic("BTC/USDT", SELL, exchange.to_ticks("BTC/USDT", D(100)), 5)
    order, _ = exchange.place(limit(BUY, "100", "0.01", post_only=True))
    assert order.status is OrderStatus.REJECTED and "post-only" in order.status_reason
    assert [e.order.status for e in recorder.executions] == [OrderStatus.REJECTED]
    assert all(b.locked == 0 for b in exchange.balances())


def test_fok_that_cannot_fill_completely_expires_untouched() -> None:
    exchange, recorder = funded()
    exchange.submit_synthetic("BTC/USDT", SELL, exchange.to_ticks("BTC/USDT", D(100)), 5)
    order, _ = exchange.place(limit(BUY, "100", "0.06", FOK))
    assert order.status is OrderStatus.EXPIRED and order.filled_size == 0
    assert recorder.fills() == [] and exchange.book("BTC/USDT").depth(SELL) == [(200, 5)]


def test_cancel_of_an_unknown_order_is_not_found() -> None:
    exchange, _ = funded()
    with pytest.raises(NotFound):
        exchange.cancel("424242")
    with pytest.raises(NotFound):
        exchange.cancel(client_order_id="nope")
    with pytest.raises(NotFound):
        exchange.get("424242")


def test_cancel_or_get_without_any_id_is_invalid() -> None:
    exchange, _ = funded()
    with pytest.raises(InvalidArgument):
        exchange.cancel()
    with pytest.raises(InvalidArgument):
        exchange.get(None, "")


def test_order_id_and_client_order_id_must_name_the_same_order() -> None:
    exchange, _ = funded()
    a, _ = exchange.place(limit(BUY, "90", "0.01", client_order_id="a"))
    exchange.place(limit(BUY, "90", "0.01", client_order_id="b"))
    assert exchange.get(a.order_id, "a") == a
    with pytest.raises(NotFound):
        exchange.cancel(a.order_id, "b")


def test_cancel_of_a_filled_or_canceled_order_is_a_failed_precondition() -> None:
    exchange, _ = funded()
    exchange.submit_synthetic("BTC/USDT", SELL, exchange.to_ticks("BTC/USDT", D(100)), 5)
    filled, _ = exchange.place(limit(BUY, "100", "0.01"))
    assert filled.status is OrderStatus.FILLED
    with pytest.raises(FailedPrecondition, match="filled"):
        exchange.cancel(filled.order_id)
    resting, _ = exchange.place(limit(BUY, "90", "0.01"))
    assert exchange.cancel(resting.order_id).status is OrderStatus.CANCELED
    with pytest.raises(FailedPrecondition, match="canceled"):
        exchange.cancel(resting.order_id)


def test_unknown_symbol_is_not_found() -> None:
    exchange, _ = funded()
    with pytest.raises(NotFound):
        exchange.place(limit(BUY, "1", "1", symbol="DOGE/USDT"))
    with pytest.raises(NotFound):
        exchange.submit_synthetic("DOGE/USDT", BUY, 1, 1)
    with pytest.raises(NotFound):
        exchange.cancel_all("DOGE/USDT")


def test_off_tick_price_and_off_lot_size_are_invalid_arguments() -> None:
    exchange, _ = funded()
    with pytest.raises(InvalidArgument) as caught:
        exchange.place(limit(BUY, "100.25", "0.015"))
    assert {v.field for v in caught.value.violations} == {"price", "size"}
    with pytest.raises(InvalidArgument):
        exchange.place(OrderRequest("BTC/USDT", BUY, MARKET, D("0.01"), D(100), GTC))
    with pytest.raises(InvalidArgument):
        exchange.place(OrderRequest("BTC/USDT", BUY, LIMIT, D("0.01"), None, GTC))


def test_reduce_only_on_a_flat_position_is_refused() -> None:
    exchange, _ = funded()
    with pytest.raises(FailedPrecondition, match="reduce_only order would increase the position"):
        exchange.place(limit(SELL, "100", "0.01", reduce_only=True))


def test_reduce_only_is_trimmed_to_the_position_left_by_other_reduce_only_orders() -> None:
    exchange, _ = funded()
    exchange.submit_synthetic("BTC/USDT", SELL, exchange.to_ticks("BTC/USDT", D(100)), 30)
    exchange.place(market(BUY, "0.3"))
    first, _ = exchange.place(limit(SELL, "120", "0.2", reduce_only=True))
    second, _ = exchange.place(limit(SELL, "130", "0.5", reduce_only=True))
    assert (first.size, second.size) == (D("0.2"), D("0.1"))
    with pytest.raises(FailedPrecondition):
        exchange.place(limit(SELL, "140", "0.1", reduce_only=True))
    with pytest.raises(FailedPrecondition):
        exchange.place(limit(BUY, "90", "0.1", reduce_only=True))


def test_positions_track_average_entry_and_realized_pnl_through_a_flip() -> None:
    exchange, _ = make_exchange({"USDT": D(10_000), "BTC": D(10), "ETH": D(0)}, maker="0", taker="0")
    for price, side, size in [("100", BUY, "1"), ("110", BUY, "1"), ("120", SELL, "1.5"), ("100", SELL, "1")]:
        liquidity = exchange.submit_synthetic(
            "BTC/USDT", side.opposite, exchange.to_ticks("BTC/USDT", D(price)), 1000
        )
        exchange.place(market(side, size))
        exchange.cancel_synthetic("BTC/USDT", liquidity)
    (position,) = exchange.positions("BTC/USDT")
    assert position.size == D("-0.5") and position.entry_price == D(100)
    assert position.realized_pnl == D("22.5") - D("2.5")


def test_generated_client_order_ids_skip_ids_the_user_already_took() -> None:
    exchange, _ = funded()
    exchange.place(limit(BUY, "90", "0.01", client_order_id="sim-1"))
    order, duplicate = exchange.place(limit(BUY, "90", "0.01"))
    assert not duplicate and order.client_order_id == "sim-2"


def test_executions_report_open_then_each_fill_then_the_end_state() -> None:
    exchange, recorder = funded()
    exchange.submit_synthetic("BTC/USDT", SELL, exchange.to_ticks("BTC/USDT", D(100)), 1)
    exchange.submit_synthetic("BTC/USDT", SELL, exchange.to_ticks("BTC/USDT", D("100.5")), 1)
    exchange.place(limit(BUY, "101", "0.05", IOC))
    assert [(e.order.status, e.fill is not None) for e in recorder.executions] == [
        (OrderStatus.OPEN, False),
        (OrderStatus.PARTIALLY_FILLED, True),
        (OrderStatus.PARTIALLY_FILLED, True),
        (OrderStatus.EXPIRED, False),
    ]
    fills = recorder.fills()
    assert len({f.fill_id for f in fills}) == 2 and [f.trade_id for f in fills] == ["1", "2"]


def test_self_match_gives_the_user_both_a_maker_and_a_taker_fill() -> None:
    exchange, recorder = funded()
    exchange.place(limit(SELL, "100", "0.1"))
    exchange.place(limit(BUY, "100", "0.1"))
    maker, taker = recorder.fills()
    assert (maker.side, maker.liquidity, taker.side, taker.liquidity) == (
        SELL,
        Liquidity.MAKER,
        BUY,
        Liquidity.TAKER,
    )
    assert maker.trade_id == taker.trade_id and maker.fill_id != taker.fill_id
    assert all(b.locked == 0 for b in exchange.balances())


@pytest.mark.parametrize(
    ("kind", "settle"), [(InstrumentKind.PERPETUAL, "BTC"), (InstrumentKind.FUTURE, "USDT")]
)
def test_instruments_other_than_spot_and_linear_perpetuals_are_refused(
    kind: InstrumentKind, settle: str
) -> None:
    other = Instrument(
        "sim", f"BTC/USDT:{settle}", "BTCUSDT", kind, "BTC", "USDT", settle, D("0.1"), D("0.001")
    )
    with pytest.raises(InvalidArgument):
        SimExchange("sim", [other], maker_fee_rate=D(0), taker_fee_rate=D(0), balances={}, clock=lambda: 0)


def test_only_synthetic_orders_can_be_cancelled_through_the_synthetic_api() -> None:
    exchange, _ = funded()
    order, _ = exchange.place(limit(BUY, "90", "0.01"))
    assert exchange.cancel_synthetic("BTC/USDT", int(order.order_id)) == 0
    assert exchange.get(order.order_id).status is OrderStatus.OPEN


def test_reducing_synthetic_liquidity_keeps_its_place_ahead_of_the_user() -> None:
    exchange, recorder = funded()
    ahead = exchange.submit_synthetic("BTC/USDT", SELL, 200, 5)  # 5 lots at 100
    order, _ = exchange.place(limit(SELL, "100", "0.02"))
    assert exchange.reduce_synthetic("BTC/USDT", ahead, 3) == 3
    assert recorder.levels["BTC/USDT"][SELL] == {200: 4}
    assert exchange.reduce_synthetic("BTC/USDT", int(order.order_id), 1) == 0  # a user order
    # A buyer of 3 lots takes the 2 synthetic lots still ahead, then 1 of the user's.
    exchange.submit_synthetic("BTC/USDT", BUY, 200, 3, IOC)
    assert [(f.order_id, f.size) for f in recorder.fills()] == [(order.order_id, D("0.01"))]


def test_unfilled_fok_or_ioc_orders_never_keep_a_lock() -> None:
    exchange, _ = funded()
    for tif in (IOC, FOK):
        exchange.place(limit(BUY, "100", "1", tif))
        exchange.place(limit(SELL, "100", "1", tif))
    assert all(b.locked == 0 for b in exchange.balances())


# ---- synthetic liquidity kept outside the book (trademesh.core.domain.matching.offbook)


def test_liquidity_kept_outside_the_book_takes_the_ids_and_trade_ids_placing_it_would_have() -> None:
    """An id taken and the order rested later under it, and trades noted outside the book, leave
    the next order's id, the next trade's id and the last trade price as placing and trading
    them in the book would."""
    outcomes = []
    for outside in (False, True):
        exchange, recorder = funded()
        if outside:
            order_id = exchange.take_order_id()
            exchange.take_order_id()  # the sell at 100.5, all of it traded outside the book
            exchange.take_order_id()  # the buy that took it (immediate-or-cancel)
            exchange.rest_synthetic("BTC/USDT", order_id, SELL, 202, 30)
            exchange.note_trades("BTC/USDT", 1, 201)
        else:
            exchange.submit_synthetic("BTC/USDT", SELL, 202, 30)
            exchange.submit_synthetic("BTC/USDT", SELL, 201, 5)
            exchange.submit_synthetic("BTC/USDT", BUY, 201, 5, IOC)
        placed, _ = exchange.place(market(BUY, "0.1"))
        resting = [(o.order_id, o.remaining) for o in exchange.book("BTC/USDT").orders_at(SELL, 202)]
        outcomes.append((placed.order_id, [(f.trade_id, f.price) for f in recorder.fills()], resting))
    assert outcomes[0] == outcomes[1] == ("4", [("2", D(101))], [(1, 20)])


def test_resting_synthetic_liquidity_that_would_trade_is_refused_and_changes_nothing() -> None:
    exchange, _ = funded()
    exchange.submit_synthetic("BTC/USDT", SELL, 200, 10)
    with pytest.raises(FailedPrecondition):
        exchange.rest_synthetic("BTC/USDT", exchange.take_order_id(), BUY, 200, 5)
    assert exchange.book("BTC/USDT").depth(SELL) == [(200, 10)]
    assert exchange.book("BTC/USDT").depth(BUY) == []


def test_a_waiting_stop_is_reported_reached_by_the_prices_that_trigger_it() -> None:
    exchange, _ = funded()
    assert not exchange.stops_reached("BTC/USDT", 0, 10**9)  # no stop waits
    exchange.place(
        OrderRequest("BTC/USDT", SELL, OrderType.STOP_MARKET, D("0.1"), None, GTC, trigger_price=D(95))
    )
    assert exchange.stops_reached("BTC/USDT", 190, 192)
    assert not exchange.stops_reached("BTC/USDT", 191, 192)
