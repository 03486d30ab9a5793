"""The recorded latency model (trademesh.core.backtest.recorded_orders): a live order sent to the replayed
venue reaches it at its recorded arrival, before the recorded events of that time, after those
before it; its cancel at the recorded cancel's time. The mesh test is
tests/integration/test_chain_parity.py."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.unit.test_backtest_market import BALANCES, BTC, FEES, delta, snapshot, trade
from trademesh.core.backtest.market import Latency, ReplayedMarket
from trademesh.core.backtest.recorded_orders import (
    OrderOutcome,
    RecordedFill,
    RecordedOrder,
    merged,
    outcomes,
    send,
)
from trademesh.core.domain.model import Liquidity, OrderRequest, OrderStatus, OrderType, Side, TimeInForce
from trademesh.core.platform.errors import FailedPrecondition

D = Decimal
TAKER, MAKER = Liquidity.TAKER, Liquidity.MAKER
NOTHING = OrderOutcome(OrderStatus.OPEN, D(0), ())


def _fill(price: str, size: str, fee: str, liquidity: Liquidity = TAKER) -> RecordedFill:
    return RecordedFill(D(price), D(size), D(fee), "USDT", liquidity)


def _order(cid: str, side: Side, kind: OrderType, tif: TimeInForce, price: str | None, size: str,
           arrival: int, cancel: int | None = None) -> RecordedOrder:  # fmt: skip
    request = OrderRequest(
        "BTC/USDT", side, kind, D(size), None if price is None else D(price), tif, client_order_id=cid
    )
    return RecordedOrder(request, arrival, cancel, NOTHING)


def _replayed(orders: list[RecordedOrder], events: list, end: int) -> dict[str, OrderOutcome]:  # type: ignore[type-arg]
    market = ReplayedMarket("sim", [BTC], FEES, BALANCES)
    send(market, orders)
    for event in events:
        market.on_market(event)
    return outcomes([e for _, e in market.advance(end)])


def test_fills_in_a_row_at_one_price_are_one() -> None:
    fills = [
        _fill("100", "1", "0.2"),
        _fill("100.0", "0.5", "0.1"),
        _fill("101", "1", "0.2"),
        _fill("100", "1", "0.2"),
    ]
    assert merged(fills) == (_fill("100", "1.5", "0.3"), _fill("101", "1", "0.2"), _fill("100", "1", "0.2"))
    assert merged([_fill("100", "1", "0.2"), _fill("100", "1", "0.1", MAKER)]) == (
        _fill("100", "1", "0.2"),
        _fill("100", "1", "0.1", MAKER),
    )


def test_an_order_meets_the_book_as_it_stood_at_its_recorded_arrival() -> None:
    events = [
        snapshot(0, [("99", "1")], [("100", "0.5"), ("101", "2")]),
        trade(5, "100", "0.5", Side.BUY),  # our own fill, as the venue recorded it
        delta(5, asks=[("100", "0")]),
        delta(8, asks=[("101", "0"), ("105", "1")]),
    ]
    on_time = _order("a", Side.BUY, OrderType.MARKET, TimeInForce.IOC, None, "1", 5)
    late = _order("b", Side.BUY, OrderType.LIMIT, TimeInForce.IOC, "102", "1", 9)
    same_time = _order("c", Side.BUY, OrderType.LIMIT, TimeInForce.IOC, "102", "0.2", 8)
    found = _replayed([on_time, late, same_time], events, 10)
    # At 5 the ask of 100 was still there (the events of that time come after the arrival).
    assert found["a"] == OrderOutcome(
        OrderStatus.FILLED, D("1"), (_fill("100", "0.5", "0.1"), _fill("101", "0.5", "0.101"))
    )
    # At 8 the level of 101 still held what we left: the delta of 8 comes after the arrival.
    assert found["c"] == OrderOutcome(OrderStatus.FILLED, D("0.2"), (_fill("101", "0.2", "0.0404"),))
    # At 9 the level of 101 was gone and 105 is beyond the limit: nothing left to take.
    assert found["b"] == OrderOutcome(OrderStatus.EXPIRED, D("0"), ())


def test_a_resting_order_is_cancelled_at_the_recorded_cancel() -> None:
    events = [
        snapshot(0, [("99", "1")], [("100", "1")]),
        trade(6, "98", "0.2", Side.SELL),
        trade(9, "98", "1", Side.SELL),
    ]
    resting = _order("r", Side.BUY, OrderType.LIMIT, TimeInForce.GTC, "98", "0.5", 2, cancel=7)
    found = _replayed([resting], events, 10)
    assert found["r"] == OrderOutcome(OrderStatus.CANCELED, D("0.2"), (_fill("98", "0.2", "0.0196", MAKER),))


def test_arrivals_need_a_market_without_order_latency() -> None:
    market = ReplayedMarket("sim", [BTC], FEES, BALANCES, Latency(order_ns=1))
    with pytest.raises(FailedPrecondition):
        send(market, [_order("a", Side.BUY, OrderType.MARKET, TimeInForce.IOC, None, "1", 5)])
