"""The sim exchange's native amendment (TradeFlow.AmendOrder): queue priority, locks, refusals."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.unit.test_sim_orders import BTC, Recorder, limit, make_exchange
from trademesh.core.domain.matching.exchange import SimExchange
from trademesh.core.domain.model import Amendment, OrderRequest, OrderStatus, OrderType, Side, TimeInForce
from trademesh.core.platform.errors import AlreadyExists, FailedPrecondition, InvalidArgument

BUY, SELL = Side.BUY, Side.SELL
D = Decimal


def venue(usdt: str = "100000", btc: str = "10") -> tuple[SimExchange, Recorder]:
    return make_exchange({"USDT": D(usdt), "BTC": D(btc)}, maker="0", taker="0")


def rest_user_bid(exchange: SimExchange, price: str, size: str, cid: str = "a") -> str:
    order, _ = exchange.place(limit(BUY, price, size, client_order_id=cid))
    assert order.status is OrderStatus.OPEN
    return order.order_id


def rest_synthetic_bid(exchange: SimExchange, price: str, size: str) -> int:
    return exchange.submit_synthetic(
        BTC.symbol, BUY, exchange.to_ticks(BTC.symbol, D(price)), exchange.to_lots(BTC.symbol, D(size))
    )


def sell_into_book(exchange: SimExchange, size: str) -> None:
    exchange.submit_synthetic(BTC.symbol, SELL, None, exchange.to_lots(BTC.symbol, D(size)), TimeInForce.IOC)


def test_a_size_decrease_at_the_same_price_keeps_the_orders_place_in_the_queue() -> None:
    exchange, _ = venue()
    order_id = rest_user_bid(exchange, "100", "1")
    rest_synthetic_bid(exchange, "100", "1")
    amended, duplicate = exchange.amend(order_id, None, Amendment(size=D("0.4")))
    assert not duplicate and amended.size == D("0.4") and amended.order_id == order_id
    sell_into_book(exchange, "0.4")
    assert exchange.get(order_id).status is OrderStatus.FILLED  # first in the queue still


def test_a_size_increase_loses_the_orders_place_in_the_queue() -> None:
    exchange, _ = venue()
    order_id = rest_user_bid(exchange, "100", "1")
    rest_synthetic_bid(exchange, "100", "1")
    exchange.amend(order_id, None, Amendment(size=D("1.5")))
    sell_into_book(exchange, "1")
    assert exchange.get(order_id).filled_size == 0  # the synthetic bid was ahead of it now


def test_a_price_change_loses_the_orders_place_in_the_queue() -> None:
    exchange, _ = venue()
    order_id = rest_user_bid(exchange, "99", "1")
    rest_synthetic_bid(exchange, "100", "1")
    exchange.amend(order_id, None, Amendment(price=D("100")))
    sell_into_book(exchange, "1")
    assert exchange.get(order_id).filled_size == 0
    sell_into_book(exchange, "1")
    assert exchange.get(order_id).status is OrderStatus.FILLED


def test_a_new_price_that_crosses_trades_at_once_as_a_taker() -> None:
    exchange, recorder = venue()
    exchange.submit_synthetic(BTC.symbol, SELL, exchange.to_ticks(BTC.symbol, D("101")), 100)
    order_id = rest_user_bid(exchange, "100", "1")
    amended, _ = exchange.amend(order_id, None, Amendment(price=D("101")))
    assert amended.status is OrderStatus.FILLED and amended.average_fill_price == D("101")
    statuses = [e.order.status for e in recorder.executions if e.order.order_id == order_id]
    assert statuses == [OrderStatus.OPEN, OrderStatus.OPEN, OrderStatus.FILLED]  # placed, amended, filled


def test_the_level_changes_of_an_amendment_reproduce_the_book() -> None:
    exchange, recorder = venue()
    rest_synthetic_bid(exchange, "100", "2")
    order_id = rest_user_bid(exchange, "100", "1")
    exchange.amend(order_id, None, Amendment(size=D("0.5")))
    exchange.amend(order_id, None, Amendment(price=D("99.5"), size=D("3")))
    book = exchange.book(BTC.symbol)
    assert sorted(recorder.levels[BTC.symbol][BUY].items(), reverse=True) == book.depth(BUY)
    assert book.depth(BUY) == [(200, 200), (199, 300)]


def test_the_lock_follows_the_new_price_and_size() -> None:
    exchange, _ = venue(usdt="1000")
    order_id = rest_user_bid(exchange, "100", "2")
    assert next(b for b in exchange.balances() if b.asset == "USDT").locked == D("200")
    exchange.amend(order_id, None, Amendment(price=D("50"), size=D("4")))
    usdt = next(b for b in exchange.balances() if b.asset == "USDT")
    assert (usdt.free, usdt.locked) == (D("800"), D("200"))
    exchange.amend(order_id, None, Amendment(size=D("1")))
    usdt = next(b for b in exchange.balances() if b.asset == "USDT")
    assert (usdt.free, usdt.locked) == (D("950"), D("50"))


def test_an_amendment_the_funds_cannot_cover_changes_nothing() -> None:
    exchange, _ = venue(usdt="300")
    order_id = rest_user_bid(exchange, "100", "2")
    with pytest.raises(FailedPrecondition, match="insufficient USDT"):
        exchange.amend(order_id, None, Amendment(size=D("4")))
    order = exchange.get(order_id)
    assert order.size == D("2") and exchange.book(BTC.symbol).depth(BUY) == [(200, 200)]


def test_an_amendment_of_a_filled_or_cancelled_order_is_refused() -> None:
    exchange, _ = venue()
    filled = rest_user_bid(exchange, "100", "1", cid="filled")
    sell_into_book(exchange, "1")
    cancelled = rest_user_bid(exchange, "100", "1", cid="cancelled")
    exchange.cancel(cancelled)
    for order_id in (filled, cancelled):
        with pytest.raises(FailedPrecondition, match="not open"):
            exchange.amend(order_id, None, Amendment(price=D("99")))


def test_a_size_not_above_what_filled_is_refused_naming_the_size() -> None:
    exchange, _ = venue()
    order_id = rest_user_bid(exchange, "100", "1")
    sell_into_book(exchange, "0.5")
    with pytest.raises(InvalidArgument) as refused:
        exchange.amend(order_id, None, Amendment(size=D("0.5")))
    assert [v.field for v in refused.value.violations] == ["size"]
    with pytest.raises(InvalidArgument) as off_grid:
        exchange.amend(order_id, None, Amendment(price=D("100.3")))
    assert [v.field for v in off_grid.value.violations] == ["price"]


def test_a_post_only_order_whose_new_price_would_cross_is_left_unchanged() -> None:
    exchange, _ = venue()
    exchange.submit_synthetic(BTC.symbol, SELL, exchange.to_ticks(BTC.symbol, D("101")), 100)
    order_id = rest_user_bid(exchange, "100", "1")
    exchange.cancel(order_id)
    order, _ = exchange.place(limit(BUY, "100", "1", client_order_id="po", post_only=True))
    with pytest.raises(FailedPrecondition, match="post-only"):
        exchange.amend(order.order_id, None, Amendment(price=D("101")))
    assert exchange.get(order.order_id).price == D("100")


def stop(side: Side, trigger: str, size: str, cid: str) -> OrderRequest:
    return OrderRequest(
        BTC.symbol, side, OrderType.STOP_MARKET, D(size), None, TimeInForce.IOC,
        client_order_id=cid, trigger_price=D(trigger),
    )  # fmt: skip


def test_a_waiting_stop_moves_its_trigger() -> None:
    exchange, _ = venue()
    exchange.submit_synthetic(BTC.symbol, BUY, exchange.to_ticks(BTC.symbol, D("95")), 1000)
    exchange.submit_synthetic(BTC.symbol, BUY, exchange.to_ticks(BTC.symbol, D("90")), 1000)
    placed, _ = exchange.place(stop(SELL, "96", "1", "sl"))
    exchange.amend(placed.order_id, None, Amendment(trigger_price=D("92")))
    sell_into_book(exchange, "1")  # prints at 95: the old trigger, not the new one
    assert exchange.get(placed.order_id).triggered is False
    sell_into_book(exchange, "10")  # sweeps 95 and prints at 90
    assert exchange.get(placed.order_id).status is OrderStatus.FILLED


def test_a_triggered_stops_trigger_cannot_move_and_a_market_order_has_no_price() -> None:
    exchange, _ = venue()
    placed, _ = exchange.place(stop(SELL, "96", "1", "sl"))
    with pytest.raises(InvalidArgument) as refused:
        exchange.amend(placed.order_id, None, Amendment(price=D("95")))
    assert [v.field for v in refused.value.violations] == ["price"]
    resting = rest_user_bid(exchange, "100", "1")
    with pytest.raises(InvalidArgument, match="stop orders only"):
        exchange.amend(resting, None, Amendment(trigger_price=D("95")))


def test_a_new_client_order_id_renames_the_order_and_a_repeat_is_answered_as_a_duplicate() -> None:
    exchange, recorder = venue()
    order_id = rest_user_bid(exchange, "100", "1", cid="old")
    amended, duplicate = exchange.amend(None, "old", Amendment(price=D("99"), client_order_id="new"))
    assert (amended.client_order_id, amended.order_id, duplicate) == ("new", order_id, False)
    former = exchange.get(None, "old")  # under its former id it ended: amended away
    assert (former.order_id, former.client_order_id, former.status) == (order_id, "old", OrderStatus.CANCELED)
    assert former.status_reason == "amended in place: now new"
    again, duplicate = exchange.amend(None, "old", Amendment(price=D("98"), client_order_id="new"))
    assert duplicate and again.price == D("99")
    other = rest_user_bid(exchange, "90", "1", cid="other")
    with pytest.raises(AlreadyExists):
        exchange.amend(other, None, Amendment(price=D("91"), client_order_id="new"))
    sell_into_book(exchange, "1")
    fills = [e.fill for e in recorder.executions if e.fill is not None]
    assert [f.client_order_id for f in fills] == ["new"]


def test_a_reduce_only_amendment_is_trimmed_to_the_position() -> None:
    exchange, _ = venue(btc="0")
    exchange.submit_synthetic(BTC.symbol, SELL, exchange.to_ticks(BTC.symbol, D("100")), 100)
    exchange.place(OrderRequest(BTC.symbol, BUY, OrderType.MARKET, D("1"), None, TimeInForce.IOC))
    placed, _ = exchange.place(limit(SELL, "110", "0.5", client_order_id="tp", reduce_only=True))
    amended, _ = exchange.amend(placed.order_id, None, Amendment(size=D("3")))
    assert amended.size == D("1")


def test_after_a_rename_the_former_id_is_ended_and_the_new_id_places_nothing_more() -> None:
    """What the inspector's executor relies on when an amendment's answer was lost: the cancel by
    the old client id finds nothing open (it ended there), and the placement under the new id is
    answered as the duplicate it is: the amended order, still working (no second order)."""
    exchange, _ = venue()
    order_id = rest_user_bid(exchange, "100", "1", cid="stop-1")
    exchange.amend(None, "stop-1", Amendment(price=D("99"), client_order_id="stop-2"))
    with pytest.raises(FailedPrecondition, match="canceled, not open"):
        exchange.cancel(None, "stop-1")
    again, duplicate = exchange.place(limit(BUY, "99", "1", client_order_id="stop-2"))
    assert duplicate and again.order_id == order_id and again.status is OrderStatus.OPEN
    assert [o.client_order_id for o in exchange.open_orders()] == ["stop-2"]
    first, duplicate = exchange.place(limit(BUY, "100", "1", client_order_id="stop-1"))
    assert duplicate and first.status is OrderStatus.CANCELED  # its first placement, as it ended


def test_an_unfilled_only_amendment_of_a_partly_filled_order_is_refused_and_changes_nothing() -> None:
    """What the inspector asks (its new size is a fresh order's whole): an order that filled
    since it last heard is refused, unchanged, and it cancels and places instead."""
    exchange, _ = venue()
    order_id = rest_user_bid(exchange, "100", "1", cid="tp-1")
    sell_into_book(exchange, "0.3")
    with pytest.raises(FailedPrecondition, match=r"has filled 0\.3"):
        exchange.amend(None, "tp-1", Amendment(size=D("2"), client_order_id="tp-2", unfilled_only=True))
    order = exchange.get(order_id)
    assert (order.size, order.client_order_id) == (D("1"), "tp-1")
    fresh = rest_user_bid(exchange, "99", "1", cid="tp-3")
    amended, _ = exchange.amend(fresh, None, Amendment(size=D("2"), unfilled_only=True))
    assert amended.size == D("2")
