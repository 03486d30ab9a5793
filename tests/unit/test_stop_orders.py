"""Stop orders: the request's validation, the wire round trip, the sim's stop book and matching."""

from __future__ import annotations

import importlib
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trademesh.common.v1 import common_pb2 as common
from trademesh.core.domain.convert import order_from_pb, order_request_to_pb, order_to_pb
from trademesh.core.domain.matching.exchange import SimExchange
from trademesh.core.domain.matching.stops import StopBook
from trademesh.core.domain.model import (
    Execution,
    Instrument,
    InstrumentKind,
    Order,
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
)
from trademesh.core.platform.errors import FailedPrecondition, InvalidArgument
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf
from trademesh.venues.live.convert import order_from_ccxt
from trademesh.venues.live.reporting import ExecutionReporter
from trademesh.venues.live.spec import LiveSpec
from trademesh.venues.live.trading import LiveTrading
from trademesh.venues.runtime import validate

D = Decimal
BUY, SELL = Side.BUY, Side.SELL
STOP_MARKET, STOP_LIMIT = OrderType.STOP_MARKET, OrderType.STOP_LIMIT
IOC, GTC = TimeInForce.IOC, TimeInForce.GTC
SYMBOL = "BTC/USDT"
BTC = Instrument(
    venue="sim",
    symbol=SYMBOL,
    native_symbol="BTCUSDT",
    kind=InstrumentKind.SPOT,
    base_asset="BTC",
    quote_asset="USDT",
    settle_asset="USDT",
    tick_size=D("0.5"),
    lot_size=D("0.01"),
    min_notional=D("5"),
)
INSTRUMENTS = {SYMBOL: BTC}


# ---- validation


def _request(**fields: object) -> tf.PlaceOrderRequest:
    base: dict[str, object] = {"symbol": SYMBOL, "side": common.SIDE_SELL, "size": "1"}
    return tf.PlaceOrderRequest(**{**base, **fields})  # type: ignore[arg-type]


def _violations(request: tf.PlaceOrderRequest) -> dict[str, str]:
    with pytest.raises(InvalidArgument) as caught:
        validate.place_order(request, INSTRUMENTS)
    return {v.field: v.description for v in caught.value.violations}


def test_a_stop_market_order_is_valid_with_a_trigger_and_defaults_to_ioc() -> None:
    req = validate.place_order(_request(type=tf.ORDER_TYPE_STOP_MARKET, trigger_price="90"), INSTRUMENTS)
    assert (req.type, req.trigger_price, req.price, req.time_in_force) == (STOP_MARKET, D(90), None, IOC)


def test_a_stop_limit_order_carries_its_price_and_defaults_to_gtc() -> None:
    request = _request(type=tf.ORDER_TYPE_STOP_LIMIT, trigger_price="90", price="89.5")
    req = validate.place_order(request, INSTRUMENTS)
    assert (req.type, req.trigger_price, req.price, req.time_in_force) == (STOP_LIMIT, D(90), D("89.5"), GTC)


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        ({"type": tf.ORDER_TYPE_STOP_MARKET}, "trigger_price", "is required"),
        ({"type": tf.ORDER_TYPE_STOP_LIMIT, "price": "90"}, "trigger_price", "is required"),
        ({"type": tf.ORDER_TYPE_LIMIT, "price": "90", "trigger_price": "90"}, "trigger_price", "limit order"),
        ({"type": tf.ORDER_TYPE_MARKET, "trigger_price": "90"}, "trigger_price", "market order"),
        ({"type": tf.ORDER_TYPE_STOP_MARKET, "trigger_price": "-1"}, "trigger_price", "positive"),
        ({"type": tf.ORDER_TYPE_STOP_MARKET, "trigger_price": "0"}, "trigger_price", "positive"),
        ({"type": tf.ORDER_TYPE_STOP_MARKET, "trigger_price": "90.2"}, "trigger_price", "tick size"),
        ({"type": tf.ORDER_TYPE_STOP_MARKET, "trigger_price": "abc"}, "trigger_price", ""),
        ({"type": tf.ORDER_TYPE_STOP_MARKET, "trigger_price": "90", "price": "90"}, "price", "stop-market"),
        ({"type": tf.ORDER_TYPE_STOP_LIMIT, "trigger_price": "90"}, "price", "required"),
        (
            {"type": tf.ORDER_TYPE_STOP_MARKET, "trigger_price": "90", "time_in_force": tf.TIME_IN_FORCE_GTC},
            "time_in_force",
            "stop-market",
        ),
        (
            {"type": tf.ORDER_TYPE_STOP_LIMIT, "trigger_price": "90", "price": "90", "post_only": True},
            "post_only",
            "GTC limit",
        ),
        ({"type": tf.ORDER_TYPE_STOP_MARKET, "trigger_price": "0.5", "size": "0.01"}, "size", "notional"),
    ],
)
def test_bad_stop_fields_are_named(fields: dict[str, object], field: str, words: str) -> None:
    found = _violations(_request(**fields))
    assert field in found and words in found[field], found


# ---- the wire, both ways


def test_a_stop_order_survives_the_wire() -> None:
    order = Order(
        venue="sim",
        order_id="7",
        client_order_id="c-7",
        symbol=SYMBOL,
        side=SELL,
        type=STOP_LIMIT,
        time_in_force=GTC,
        price=D("89.5"),
        size=D(1),
        reduce_only=True,
        filled_size=D("0.25"),
        average_fill_price=D("89.75"),
        status=OrderStatus.PARTIALLY_FILLED,
        created_ns=1,
        updated_ns=2,
        trigger_price=D(90),
        triggered=True,
    )
    message = order_to_pb(order)
    assert (message.type, message.trigger_price, message.triggered) == (tf.ORDER_TYPE_STOP_LIMIT, "90", True)
    assert order_from_pb(message) == order
    plain = Order("sim", "8", "c-8", SYMBOL, BUY, OrderType.MARKET, IOC, None, D(1))
    assert order_to_pb(plain).trigger_price == "" and order_from_pb(order_to_pb(plain)) == plain


@pytest.mark.parametrize(
    "request_",
    [
        OrderRequest(SYMBOL, SELL, STOP_MARKET, D(1), None, IOC, reduce_only=True, trigger_price=D(90)),
        OrderRequest(
            SYMBOL, BUY, STOP_LIMIT, D(1), D("110.5"), GTC, client_order_id="x", trigger_price=D(110)
        ),
        OrderRequest(SYMBOL, BUY, OrderType.LIMIT, D(1), D(100), GTC),
    ],
)
def test_an_order_request_round_trips_through_validation(request_: OrderRequest) -> None:
    assert validate.place_order(order_request_to_pb(request_), INSTRUMENTS) == request_


# ---- the stop book


def test_the_stop_book_triggers_each_side_on_its_own_crossing_oldest_first() -> None:
    book = StopBook()
    book.add(1, SELL, 90)
    book.add(2, BUY, 110)
    book.add(3, SELL, 95)
    book.add(4, BUY, 105)
    assert book.due(96, 104) == []  # nothing crossed
    assert book.due(95, 104) == [3]  # a sell stop at a trade at its trigger
    assert book.due(91, 110) == [2, 4]  # buys at or above, placement order
    assert book.remove(1) and not book.remove(1) and not book
    assert book.due(0, 10**9) == []


@settings(max_examples=200, deadline=None)
@given(
    stops=st.lists(st.tuples(st.sampled_from([BUY, SELL]), st.integers(1, 50)), max_size=20),
    trades=st.lists(st.tuples(st.integers(1, 50), st.integers(0, 5)), max_size=20),
    canceled=st.sets(st.integers(0, 19)),
)
def test_every_stop_triggers_once_at_the_first_range_that_crosses_it(
    stops: list[tuple[Side, int]], trades: list[tuple[int, int]], canceled: set[int]
) -> None:
    book = StopBook()
    for order_id, (side, trigger) in enumerate(stops):
        book.add(order_id, side, trigger)
    for order_id in canceled:
        book.remove(order_id)
    waiting = {i for i in range(len(stops)) if i not in canceled}
    for low, width in trades:
        high = low + width
        expected = sorted(
            i
            for i in waiting
            if (stops[i][0] is BUY and high >= stops[i][1]) or (stops[i][0] is SELL and low <= stops[i][1])
        )
        assert book.due(low, high) == expected
        waiting -= set(expected)
    assert len(book) == len(waiting)


# ---- the sim


class _Recorder:
    def __init__(self) -> None:
        self.executions: list[Execution] = []
        self.trades: list[int] = []

    def on_trade(self, symbol: str, trade_id: str, price: int, lots: int, side: Side, ts_ns: int) -> None:
        self.trades.append(price)

    def on_levels(self, symbol: str, changes: list[tuple[Side, int, int]]) -> None:
        pass

    def on_execution(self, execution: Execution) -> None:
        self.executions.append(execution)

    def of(self, order_id: str) -> list[Order]:
        return [e.order for e in self.executions if e.order.order_id == order_id]


def _exchange(btc: str = "10") -> tuple[SimExchange, _Recorder]:
    recorder = _Recorder()
    exchange = SimExchange(
        "sim",
        [BTC],
        maker_fee_rate=D("0.001"),
        taker_fee_rate=D("0.002"),
        balances={"BTC": D(btc), "USDT": D(100000)},
        clock=lambda: 1,
        listener=recorder,
    )
    return exchange, recorder


def _balance(exchange: SimExchange, asset: str) -> tuple[Decimal, Decimal]:
    found = next(b for b in exchange.balances() if b.asset == asset)
    return found.free, found.locked


def _quote(exchange: SimExchange, side: Side, price: str, size: str) -> None:
    exchange.submit_synthetic(
        SYMBOL, side, exchange.to_ticks(SYMBOL, D(price)), exchange.to_lots(SYMBOL, D(size))
    )


def _print(exchange: SimExchange, taker: Side, size: str = "0.01") -> None:
    """A synthetic market order: a trade at the best opposite price."""
    exchange.submit_synthetic(SYMBOL, taker, None, exchange.to_lots(SYMBOL, D(size)), IOC)


def _stop(
    side: Side, trigger: str, size: str = "1", price: str | None = None, reduce_only: bool = False
) -> OrderRequest:
    kind = STOP_MARKET if price is None else STOP_LIMIT
    tif = IOC if price is None else GTC
    return OrderRequest(
        SYMBOL,
        side,
        kind,
        D(size),
        None if price is None else D(price),
        tif,
        reduce_only=reduce_only,
        trigger_price=D(trigger),
    )


def test_a_sell_stop_waits_out_of_the_book_then_sells_at_market_on_a_trade_at_its_trigger() -> None:
    exchange, seen = _exchange()
    _quote(exchange, BUY, "99", "5")
    _quote(exchange, BUY, "98", "5")
    _quote(exchange, SELL, "101", "5")
    order, duplicate = exchange.place(_stop(SELL, "99"))
    assert not duplicate and (order.status, order.triggered, order.trigger_price) == (
        OrderStatus.OPEN,
        False,
        D(99),
    )
    assert exchange.book(SYMBOL).depth(SELL) == [(202, 500)], "not in the book"
    assert [o.order_id for o in exchange.open_orders()] == [order.order_id]
    assert _balance(exchange, "BTC") == (D(10), D(0)), "an untriggered stop locks nothing"

    _print(exchange, BUY)  # a trade at 101: above a sell stop
    assert not exchange.get(order.order_id).triggered
    _print(exchange, SELL)  # a trade at 99: at the trigger
    done = exchange.get(order.order_id)
    assert (done.status, done.triggered, done.filled_size) == (OrderStatus.FILLED, True, D(1))
    assert done.average_fill_price == D(99) and done.type is STOP_MARKET
    states = [(o.status, o.triggered) for o in seen.of(order.order_id)]
    assert states == [(OrderStatus.OPEN, False), (OrderStatus.OPEN, True), (OrderStatus.FILLED, True)]
    assert exchange.open_orders() == []


def test_a_buy_stop_triggers_on_a_trade_at_or_above_its_trigger_only() -> None:
    exchange, _ = _exchange()
    _quote(exchange, BUY, "99", "5")
    _quote(exchange, SELL, "101", "5")
    _quote(exchange, SELL, "102", "5")
    order, _ = exchange.place(_stop(BUY, "101.5"))
    _print(exchange, BUY)  # 101: under the trigger
    _print(exchange, SELL)  # 99
    assert exchange.get(order.order_id).status is OrderStatus.OPEN
    _print(exchange, BUY, "5")  # sweeps 101 then 102: crosses 101.5
    done = exchange.get(order.order_id)
    assert (done.status, done.filled_size, done.average_fill_price) == (OrderStatus.FILLED, D(1), D(102))


def test_a_triggered_stop_limit_rests_at_its_price() -> None:
    exchange, _ = _exchange()
    _quote(exchange, BUY, "99", "0.5")
    _quote(exchange, SELL, "101", "5")
    order, _ = exchange.place(_stop(SELL, "99", size="2", price="98"))
    _print(exchange, SELL, "0.5")  # takes the whole 99 bid: the trigger is crossed, the book is empty
    done = exchange.get(order.order_id)
    assert (done.status, done.triggered, done.filled_size) == (OrderStatus.OPEN, True, D(0))
    assert exchange.book(SYMBOL).depth(SELL)[0] == (196, 200), "rests at 98 for 2"
    assert _balance(exchange, "BTC") == (D(8), D(2)), "locked once triggered"
    _quote(exchange, BUY, "98", "0.5")  # a buyer at 98 takes part of it
    part = exchange.get(order.order_id)
    assert (part.status, part.filled_size) == (OrderStatus.PARTIALLY_FILLED, D("0.5"))


def test_a_reduce_only_stop_is_trimmed_to_the_position_when_it_triggers() -> None:
    exchange, _ = _exchange(btc="0")
    _quote(exchange, SELL, "101", "2")
    exchange.place(OrderRequest(SYMBOL, BUY, OrderType.MARKET, D("1.5"), None, IOC))  # long 1.5
    _quote(exchange, BUY, "99", "5")
    stop, _ = exchange.place(_stop(SELL, "99.5", size="1.5", reduce_only=True))
    # A take-profit covers the same position: stops and other orders cover it apart.
    take, _ = exchange.place(
        OrderRequest(SYMBOL, SELL, OrderType.LIMIT, D("1.5"), D(120), GTC, reduce_only=True)
    )
    assert take.size == D("1.5")
    with pytest.raises(FailedPrecondition):  # a second stop-loss would over-cover the position
        exchange.place(_stop(SELL, "99", size="0.5", reduce_only=True))
    exchange.cancel(take.order_id)
    exchange.place(OrderRequest(SYMBOL, SELL, OrderType.MARKET, D("1"), None, IOC))  # sells 1 at 99: long 0.5
    done = exchange.get(stop.order_id)
    assert (done.status, done.size, done.filled_size) == (OrderStatus.FILLED, D("0.5"), D("0.5"))
    assert exchange.positions(SYMBOL)[0].size == 0


def test_a_reduce_only_stop_with_nothing_left_to_reduce_expires_when_it_triggers() -> None:
    exchange, _ = _exchange(btc="0")
    _quote(exchange, SELL, "101", "2")
    exchange.place(OrderRequest(SYMBOL, BUY, OrderType.MARKET, D(1), None, IOC))
    _quote(exchange, BUY, "100", "1")
    _quote(exchange, BUY, "99", "5")
    stop, _ = exchange.place(_stop(SELL, "99", reduce_only=True))
    exchange.place(OrderRequest(SYMBOL, SELL, OrderType.MARKET, D(1), None, IOC))  # flat, at 100: no trigger
    _print(exchange, SELL)  # 99
    done = exchange.get(stop.order_id)
    assert done.status is OrderStatus.EXPIRED and "no position" in done.status_reason


def test_an_untriggered_stop_cancels_and_never_triggers_after() -> None:
    exchange, seen = _exchange()
    _quote(exchange, BUY, "99", "5")
    _quote(exchange, SELL, "101", "5")
    first, _ = exchange.place(_stop(SELL, "99"))
    second, _ = exchange.place(_stop(BUY, "101", price="101.5"))
    canceled = exchange.cancel(first.order_id)
    assert canceled.status is OrderStatus.CANCELED and not canceled.triggered
    assert [o.order_id for o in exchange.cancel_all(SYMBOL)] == [second.order_id]
    _print(exchange, SELL)
    _print(exchange, BUY)
    assert [o.status for o in seen.of(first.order_id)] == [OrderStatus.OPEN, OrderStatus.CANCELED]
    assert exchange.open_orders() == []


def test_a_stops_own_trades_trigger_the_next_stop() -> None:
    exchange, _ = _exchange()
    _quote(exchange, BUY, "99", "1")
    _quote(exchange, BUY, "97", "5")
    _quote(exchange, SELL, "101", "5")
    first, _ = exchange.place(_stop(SELL, "99", size="1"))
    second, _ = exchange.place(_stop(SELL, "97.5", size="1"))
    _print(exchange, SELL, "0.01")  # 99: the first sells 0.99 at 99 and 0.01 at 97, crossing 97.5
    assert exchange.get(first.order_id).status is OrderStatus.FILLED
    done = exchange.get(second.order_id)
    assert (done.status, done.average_fill_price) == (OrderStatus.FILLED, D(97))


def test_a_stop_whose_trigger_is_already_crossed_waits_for_the_next_trade() -> None:
    exchange, _ = _exchange()
    _quote(exchange, BUY, "99", "5")
    _quote(exchange, SELL, "101", "5")
    _print(exchange, SELL)  # last trade 99
    order, _ = exchange.place(_stop(SELL, "100"))
    assert exchange.get(order.order_id).status is OrderStatus.OPEN
    _print(exchange, BUY)  # 101: above the trigger, no trigger
    assert not exchange.get(order.order_id).triggered
    _print(exchange, SELL)  # 99
    assert exchange.get(order.order_id).status is OrderStatus.FILLED


def test_a_stop_buy_short_of_funds_when_it_triggers_is_rejected() -> None:
    exchange, _ = _exchange()
    _quote(exchange, BUY, "99", "5")
    _quote(exchange, SELL, "101", "5000")
    order, _ = exchange.place(_stop(BUY, "101", size="1000"))  # 101,000 USDT: more than the account has
    _print(exchange, BUY)
    done = exchange.get(order.order_id)
    assert done.status is OrderStatus.REJECTED and "insufficient USDT" in done.status_reason


def test_the_sim_refuses_a_trigger_outside_the_price_band() -> None:
    exchange, _ = _exchange()
    _quote(exchange, BUY, "99", "5")
    _quote(exchange, SELL, "101", "5")
    with pytest.raises(InvalidArgument) as caught:
        exchange.place(_stop(SELL, "10"))
    assert caught.value.violations[0].field == "trigger_price"


# ---- live venues: what the connector asks ccxt for


def _spec(venue: str) -> LiveSpec:
    spec: LiveSpec = importlib.import_module(f"trademesh.venues.{venue.replace('-', '_')}.spec").SPEC
    return spec


def _live_params(venue: str, request: OrderRequest) -> dict[str, object]:
    return LiveTrading(_spec(venue), None, list)._order_params(request, "tm-1")


def test_live_venues_with_native_stops_send_the_trigger_as_ccxt_takes_it() -> None:
    stop = OrderRequest(
        "BTC/USDT", SELL, STOP_MARKET, D(1), None, IOC, reduce_only=True, trigger_price=D("90.5")
    )
    assert _live_params("binance", stop) == {
        "clientOrderId": "tm-1",
        "triggerPrice": "90.5",
        "reduceOnly": True,
    }
    assert _live_params("kraken", stop) == {
        "clientOrderId": "tm-1",
        "stopLossPrice": "90.5",
        "trigger": "last",
        "reduceOnly": True,
    }
    limit = OrderRequest("BTC/USD:BTC", BUY, STOP_LIMIT, D(10), D(101), GTC, trigger_price=D(100))
    assert _live_params("deribit", limit) == {
        "clientOrderId": "tm-1",
        "stopLossPrice": "100",
        "trigger": "last_price",
    }
    assert _live_params("binanceusdm", stop) == {
        "clientOrderId": "tm-1",
        "triggerPrice": "90.5",
        "workingType": "CONTRACT_PRICE",  # the last trade price, not the mark price
        "reduceOnly": True,
    }
    spot_stop = OrderRequest("BTC/USDT", SELL, STOP_LIMIT, D(1), D(89), GTC, trigger_price=D("90.5"))
    assert _live_params("bybit", spot_stop) == {
        "clientOrderId": "tm-1",
        "triggerPrice": "90.5",  # ccxt: orderFilter=StopOrder; spot takes no triggerDirection
    }
    assert _spec("bybit").stop_book == {"trigger": True}, "spot cancels reach stops with StopOrder only"
    for okx in ("okx", "okx-swap"):  # an algo order of ordType "trigger", on the last trade price
        margin = {"marginMode": "cross"} if okx == "okx-swap" else {}  # a swap's tdMode: the mode set
        assert _live_params(okx, stop) == {
            "clientOrderId": "tm-1",
            **margin,
            "triggerPrice": "90.5",
            "triggerPxType": "last",
            "reduceOnly": True,
        }
        assert _spec(okx).stop_book == {"trigger": True} and _spec(okx).stop_stream == {"trigger": True}
    fok = OrderRequest("BTC/USDT", SELL, STOP_MARKET, D(1), None, TimeInForce.FOK, trigger_price=D(90))
    assert _live_params("binance", fok)["timeInForce"] == "FOK", "IOC is a stop-market's nature; FOK is asked"


@pytest.mark.parametrize("venue", ["coinbase"])
def test_live_venues_without_native_stops_refuse_them(venue: str) -> None:
    assert _spec(venue).stop_params is None
    stop = OrderRequest("BTC/USDT", SELL, STOP_MARKET, D(1), None, IOC, trigger_price=D(90))
    with pytest.raises(FailedPrecondition, match="the inspector emulates them"):
        _live_params(venue, stop)


def _ccxt(**fields: object) -> dict[str, object]:
    base: dict[str, object] = {
        "id": "1",
        "clientOrderId": "c-1",
        "symbol": SYMBOL,
        "side": "sell",
        "amount": 1,
    }
    return {**base, "status": "open", **fields}


@pytest.mark.parametrize(
    ("raw", "kind", "price", "trigger"),
    [
        (_ccxt(type="limit", price=89, triggerPrice=90), STOP_LIMIT, D(89), D(90)),
        (_ccxt(type="market", triggerPrice=90), STOP_MARKET, None, D(90)),
        (_ccxt(type="stop_loss", price=0, stopPrice="90.5"), STOP_MARKET, None, D("90.5")),
        (_ccxt(type="stop_loss_limit", price=89, stopPrice=90), STOP_LIMIT, D(89), D(90)),
        (_ccxt(type="market", stopLossPrice="90"), STOP_MARKET, None, D(90)),  # Kraken's REST orders
        (_ccxt(type="limit", price=89, triggerPrice=0), OrderType.LIMIT, D(89), None),
        (_ccxt(type="market", price=89), OrderType.MARKET, None, None),
    ],
)
def test_ccxt_orders_read_as_ours(
    raw: dict[str, object], kind: OrderType, price: Decimal | None, trigger: Decimal | None
) -> None:
    order = order_from_ccxt("binance", raw)
    assert (order.type, order.price, order.trigger_price, order.triggered) == (kind, price, trigger, False)
    assert order_from_ccxt("binance", {**raw, "filled": 1}).triggered is kind.is_stop


def test_executions_keep_a_stops_type_when_the_private_stream_leaves_it_out() -> None:
    reporter = ExecutionReporter()
    published: list[Execution] = []
    reporter.publish = published.append
    request = OrderRequest(
        SYMBOL, SELL, STOP_MARKET, D(1), None, IOC, client_order_id="c-1", trigger_price=D(90)
    )
    reporter.expect_stop(request)
    bare = order_from_ccxt("kraken", _ccxt(type="market"))  # as a private stream may say it first
    assert (bare.type, bare.trigger_price) == (OrderType.MARKET, None)
    reporter.report(bare)
    reporter.report(order_from_ccxt("kraken", _ccxt(type="market", id="2", clientOrderId="other")))
    reporter.report(order_from_ccxt("kraken", _ccxt(type="market", filled=1, status="closed")))
    kinds = [(e.order.order_id, e.order.type, e.order.trigger_price, e.order.triggered) for e in published]
    assert kinds == [
        ("1", STOP_MARKET, D(90), False),
        ("2", OrderType.MARKET, None, False),
        ("1", STOP_MARKET, D(90), True),
    ]


_ACTION = st.one_of(
    st.tuples(st.just("stop"), st.sampled_from([BUY, SELL]), st.integers(190, 210)),
    st.tuples(st.just("quote"), st.sampled_from([BUY, SELL]), st.integers(190, 210)),
    st.tuples(st.just("take"), st.sampled_from([BUY, SELL]), st.integers(1, 300)),
)


@settings(max_examples=60, deadline=None)
@given(actions=st.lists(_ACTION, max_size=40))
def test_a_sim_stop_triggers_exactly_when_a_later_trade_crosses_it(
    actions: list[tuple[str, Side, int]],
) -> None:
    exchange, seen = _exchange(btc="1000")
    placed: list[tuple[str, Side, int, int]] = []  # (order id, side, trigger ticks, trades before it)
    for kind, side, number in actions:
        if kind == "stop":
            price = exchange.price_of(SYMBOL, number)
            order, _ = exchange.place(
                OrderRequest(SYMBOL, side, STOP_MARKET, D("0.5"), None, IOC, trigger_price=price)
            )
            placed.append((order.order_id, side, number, len(seen.trades)))
        elif kind == "quote":
            exchange.submit_synthetic(SYMBOL, side, number, 50)
        else:
            exchange.submit_synthetic(SYMBOL, side, None, number, IOC)
    for order_id, side, ticks, before in placed:
        later = seen.trades[before:]
        crossed = any(p >= ticks if side is BUY else p <= ticks for p in later)
        order = exchange.get(order_id)
        assert order.triggered is crossed, (order, ticks, later)
        assert (order.status is OrderStatus.OPEN) is not crossed, "a triggered stop-market never stays open"
    assert all(b.locked == 0 for b in exchange.balances()), "nothing is left locked by stops"
