"""The sim's reduce-only orders never increase or flip a position, as on Binance USD-M: resting ones
are trimmed (or CANCELED) once fills shrink the position, and a sweep caps each one's fill at
the position at that fill. The first case is the one fixtures/chain-parity-target recorded
before the rule: a take-profit filled after its stop had closed the position (short 0.02554).
"""

from __future__ import annotations

import itertools
from decimal import Decimal

from trademesh.core.domain.matching.exchange import SimExchange
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

D = Decimal
BUY, SELL = Side.BUY, Side.SELL
GTC, IOC = TimeInForce.GTC, TimeInForce.IOC
SYMBOL = "BTC/USDT"
BTC = Instrument(
    venue="sim",
    symbol=SYMBOL,
    native_symbol="BTCUSDT",
    kind=InstrumentKind.SPOT,
    base_asset="BTC",
    quote_asset="USDT",
    settle_asset="USDT",
    tick_size=D("0.01"),
    lot_size=D("0.00001"),
)
ENTRY = D("0.12321")  # the long of the recorded session
TARGET_PRICE = D("64928.47")
STOP_TRIGGER = D("64921.05")


class _Seen:
    def __init__(self) -> None:
        self.executions: list[Execution] = []

    def on_trade(self, *_: object) -> None:
        pass

    def on_levels(self, *_: object) -> None:
        pass

    def on_execution(self, execution: Execution) -> None:
        self.executions.append(execution)

    def of(self, order_id: str) -> list[Execution]:
        return [e for e in self.executions if e.order.order_id == order_id]


def _exchange(btc: str = "1") -> tuple[SimExchange, _Seen]:
    seen = _Seen()
    ticks = itertools.count(1_000)
    exchange = SimExchange(
        "sim",
        [BTC],
        maker_fee_rate=D("0.0002"),
        taker_fee_rate=D("0.001"),
        balances={"USDT": D(100_000), "BTC": D(btc)},
        clock=lambda: next(ticks),
        listener=seen,
    )
    return exchange, seen


def _synthetic(exchange: SimExchange, side: Side, price: str | Decimal | None, size: str | Decimal) -> None:
    """A synthetic order: a quote that rests (GTC) or, without a price, a taker (IOC)."""
    ticks = None if price is None else exchange.to_ticks(SYMBOL, D(price))
    exchange.submit_synthetic(SYMBOL, side, ticks, exchange.to_lots(SYMBOL, D(size)), GTC if price else IOC)


def _long(exchange: SimExchange) -> None:
    """Long 0.12321 BTC at 64926 (the ask it took is gone; the next is at 64930), with bids under
    the stop's trigger to sell into."""
    _synthetic(exchange, SELL, "64926", ENTRY)
    _synthetic(exchange, SELL, "64930", "1")
    exchange.place(OrderRequest(SYMBOL, BUY, OrderType.MARKET, ENTRY, None, IOC))
    _synthetic(exchange, BUY, "64921", "0.01")
    _synthetic(exchange, BUY, "64920", "1")
    assert _position(exchange) == ENTRY


def _place(exchange: SimExchange, req: OrderRequest) -> Order:
    order, _ = exchange.place(req)
    return order


def _target(size: Decimal = ENTRY, reduce_only: bool = True) -> OrderRequest:
    return OrderRequest(SYMBOL, SELL, OrderType.LIMIT, size, TARGET_PRICE, GTC, reduce_only=reduce_only)


def _stop(size: Decimal = ENTRY, price: Decimal | None = None) -> OrderRequest:
    kind, tif = (OrderType.STOP_MARKET, IOC) if price is None else (OrderType.STOP_LIMIT, GTC)
    return OrderRequest(SYMBOL, SELL, kind, size, price, tif, reduce_only=True, trigger_price=STOP_TRIGGER)


def _position(exchange: SimExchange) -> Decimal:
    return exchange.positions(SYMBOL)[0].size


def _sweep_the_stop(exchange: SimExchange) -> None:
    """A taker's sell prints at 64921, through the stop's trigger: the stop sells at market."""
    _synthetic(exchange, SELL, None, "0.01")


def _buy_at_the_target(exchange: SimExchange, size: str = "0.02554") -> None:
    """A taker's buy limited at the target's price (what met the take-profit in the session)."""
    ticks = exchange.to_ticks(SYMBOL, TARGET_PRICE)
    exchange.submit_synthetic(SYMBOL, BUY, ticks, exchange.to_lots(SYMBOL, D(size)), IOC)


def test_a_take_profit_left_without_a_position_by_its_stop_is_canceled_not_filled() -> None:
    exchange, seen = _exchange()
    _long(exchange)
    stop = _place(exchange, _stop())
    target = _place(exchange, _target())
    assert target.size == ENTRY, "a stop and a take-profit each cover the whole position"

    _sweep_the_stop(exchange)  # the stop closes the position...
    assert exchange.get(stop.order_id).status is OrderStatus.FILLED and _position(exchange) == 0
    _buy_at_the_target(exchange)  # ...and a buy meets the take-profit in the same step

    ended = exchange.get(target.order_id)
    assert (ended.status, ended.filled_size) == (OrderStatus.CANCELED, D(0))
    assert "reduce-only" in ended.status_reason and "closed" in ended.status_reason
    assert _position(exchange) == 0, "never short on spot"
    assert [e.fill for e in seen.of(target.order_id)] == [None, None], "OPEN, then CANCELED: no fill"
    assert exchange.book(SYMBOL).depth(SELL) == [(exchange.to_ticks(SYMBOL, D(64930)), 100_000)]
    assert exchange.open_orders() == [] and all(b.locked == 0 for b in exchange.balances())


def test_a_partial_reduction_trims_the_resting_reduce_only_orders_to_what_is_left() -> None:
    exchange, seen = _exchange()
    _long(exchange)
    target = _place(exchange, _target())
    exchange.place(OrderRequest(SYMBOL, SELL, OrderType.MARKET, D("0.05"), None, IOC))  # long 0.07321

    left = D("0.07321")
    trimmed = exchange.get(target.order_id)
    assert (trimmed.status, trimmed.size, trimmed.remaining) == (OrderStatus.OPEN, left, left)
    update = seen.of(target.order_id)[-1]
    assert update.fill is None and update.order.size == left and "trimmed" in update.order.status_reason
    assert exchange.book(SYMBOL).depth(SELL)[0] == (exchange.to_ticks(SYMBOL, TARGET_PRICE), 7321)
    assert exchange.balances()[0].locked == left, "the cut's lock of BTC is released"

    _buy_at_the_target(exchange, "1")
    assert exchange.get(target.order_id).status is OrderStatus.FILLED and _position(exchange) == 0


def test_a_flip_by_another_order_cancels_the_resting_reduce_only_order() -> None:
    exchange, _ = _exchange()
    _long(exchange)
    target = _place(exchange, _target())
    exchange.place(OrderRequest(SYMBOL, SELL, OrderType.MARKET, D("0.2"), None, IOC))  # short 0.07679
    assert _position(exchange) == D("-0.07679")
    assert exchange.get(target.order_id).status is OrderStatus.CANCELED


def test_one_sweep_never_fills_reduce_only_orders_past_the_position() -> None:
    exchange, _ = _exchange()
    _long(exchange)
    stop = _place(exchange, _stop(D("0.1"), price=D("64925")))
    target = _place(exchange, _target())
    _sweep_the_stop(exchange)  # the stop-limit rests at 64925: both sells rest, 0.22321 for 0.12321
    assert exchange.get(stop.order_id).triggered and _position(exchange) == ENTRY

    _buy_at_the_target(exchange, "1")  # one taker meets both, the stop first

    assert exchange.get(stop.order_id).filled_size == D("0.1")
    capped = exchange.get(target.order_id)
    assert (capped.status, capped.filled_size) == (OrderStatus.CANCELED, D("0.02321")), "what was left"
    assert _position(exchange) == 0 and all(b.locked == 0 for b in exchange.balances())


def test_one_sweep_cancels_a_reduce_only_order_the_position_ran_out_for() -> None:
    exchange, _ = _exchange()
    _long(exchange)
    stop = _place(exchange, _stop(price=D("64925")))
    target = _place(exchange, _target())
    _sweep_the_stop(exchange)
    _buy_at_the_target(exchange, "1")

    assert exchange.get(stop.order_id).status is OrderStatus.FILLED
    ended = exchange.get(target.order_id)
    assert (ended.status, ended.filled_size) == (OrderStatus.CANCELED, D(0))
    assert _position(exchange) == 0 and all(b.locked == 0 for b in exchange.balances())


def test_an_order_that_is_not_reduce_only_still_fills_after_the_position_is_gone() -> None:
    exchange, _ = _exchange()  # with deposited BTC: a plain sell may sell it
    _long(exchange)
    _place(exchange, _stop())
    target = _place(exchange, _target())
    plain = _place(exchange, _target(reduce_only=False))  # behind the take-profit at its price
    _sweep_the_stop(exchange)
    _buy_at_the_target(exchange)

    assert exchange.get(target.order_id).status is OrderStatus.CANCELED
    order = exchange.get(plain.order_id)
    assert (order.status, order.size) == (OrderStatus.PARTIALLY_FILLED, ENTRY)
    assert order.filled_size == D("0.02554")
    assert _position(exchange) == D("-0.02554"), "the net filled on this venue: the plain sell's to make"


def test_a_perpetual_short_closed_by_its_stop_cancels_its_take_profit_buy() -> None:
    perp = Instrument(
        "sim", "BTC/USDT:USDT", "BTCUSDT-PERP", InstrumentKind.PERPETUAL, "BTC", "USDT", "USDT",
        D("0.1"), D("0.001"),
    )  # fmt: skip
    ticks = itertools.count(1_000)
    exchange = SimExchange(
        "sim", [perp], maker_fee_rate=D(0), taker_fee_rate=D(0), balances={"USDT": D(100_000)},
        clock=lambda: next(ticks),
    )  # fmt: skip
    symbol, lots = perp.symbol, 1_000  # 1 BTC
    exchange.submit_synthetic(symbol, BUY, exchange.to_ticks(symbol, D(100)), lots)
    exchange.place(OrderRequest(symbol, SELL, OrderType.MARKET, D(1), None, IOC))  # short 1 at 100
    exchange.submit_synthetic(symbol, SELL, exchange.to_ticks(symbol, D(101)), 2 * lots)
    target, _ = exchange.place(OrderRequest(symbol, BUY, OrderType.LIMIT, D(1), D(99), GTC, reduce_only=True))
    stop = OrderRequest(
        symbol, BUY, OrderType.STOP_MARKET, D(1), None, IOC, reduce_only=True, trigger_price=D(101)
    )
    exchange.place(stop)

    exchange.submit_synthetic(symbol, BUY, None, 1, IOC)  # a print at 101: the stop buys the short back
    assert exchange.positions(symbol)[0].size == 0
    assert exchange.get(target.order_id).status is OrderStatus.CANCELED
    exchange.submit_synthetic(symbol, SELL, exchange.to_ticks(symbol, D(99)), lots, IOC)  # would have met it
    assert exchange.positions(symbol)[0].size == 0, "never long"
