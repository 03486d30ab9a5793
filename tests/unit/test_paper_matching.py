"""The paper venue's matching (trademesh/venues/paper/matcher.py, docs/paper.md): a venue's book and trades,
as its connector reports them to the feed, mirrored into the sim's engine where our orders rest.

Spot BTC/USDT: tick 0.1, lot 0.001; and a linear perpetual of OKX's shape, BTC/USDT:USDT sized
in contracts of 0.01 BTC (tick 0.1, lot 1). Maker fee 0.1 %, taker fee 0.2 %.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from trademesh.core.domain.matching.exchange import SimExchange
from trademesh.core.domain.model import (
    Execution,
    Instrument,
    InstrumentKind,
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
)
from trademesh.core.platform.errors import FailedPrecondition
from trademesh.venues.paper.matcher import PaperMatcher

D = Decimal
BUY, SELL = Side.BUY, Side.SELL
SPOT = Instrument(
    venue="paper-test",
    symbol="BTC/USDT",
    native_symbol="BTCUSDT",
    kind=InstrumentKind.SPOT,
    base_asset="BTC",
    quote_asset="USDT",
    settle_asset="USDT",
    tick_size=D("0.1"),
    lot_size=D("0.001"),
)
SWAP = Instrument(
    venue="paper-test",
    symbol="BTC/USDT:USDT",
    native_symbol="BTC-USDT-SWAP",
    kind=InstrumentKind.PERPETUAL,
    base_asset="BTC",
    quote_asset="USDT",
    settle_asset="USDT",
    tick_size=D("0.1"),
    lot_size=D("1"),
    contract_size=D("0.01"),
    contract_value=D("0.01"),
)


def matcher() -> tuple[PaperMatcher, list[Execution]]:
    exchange = SimExchange(
        "paper-test",
        [SPOT, SWAP],
        maker_fee_rate=D("0.001"),
        taker_fee_rate=D("0.002"),
        balances={"USDT": D("100000"), "BTC": D("1")},
        clock=lambda: 1_000,
    )
    seen: list[Execution] = []
    paper = PaperMatcher(exchange, [SPOT.symbol, SWAP.symbol])
    paper.executions.publish = seen.append
    return paper, seen


def limit(
    symbol: str,
    side: Side,
    price: str,
    size: str,
    time_in_force: TimeInForce = TimeInForce.GTC,
    *,
    post_only: bool = False,
    reduce_only: bool = False,
) -> OrderRequest:
    return OrderRequest(
        symbol,
        side,
        OrderType.LIMIT,
        D(size),
        D(price),
        time_in_force,
        post_only=post_only,
        reduce_only=reduce_only,
    )


def place(paper: PaperMatcher, request: OrderRequest) -> str:
    paper.settle(request.symbol)
    order, _ = paper.exchange.place(request)
    return order.order_id


def fills(seen: list[Execution], order_id: str) -> list[tuple[Decimal, Decimal]]:
    return [(e.fill.price, e.fill.size) for e in seen if e.fill is not None and e.order.order_id == order_id]


def test_a_resting_order_waits_for_the_displayed_size_ahead_of_it_to_trade_first() -> None:
    paper, seen = matcher()
    paper.book("BTC/USDT", [("100.0", "0.5")], [("100.5", "1")], is_snapshot=True)
    ours = place(paper, limit("BTC/USDT", BUY, "100.0", "0.2"))
    paper.trade("BTC/USDT", "100.0", "0.3", SELL)
    assert fills(seen, ours) == []  # 0.5 was ahead of us: 0.2 of it is left
    paper.trade("BTC/USDT", "100.0", "0.35", SELL)
    assert fills(seen, ours) == [(D("100.0"), D("0.15"))]  # what went past the queue ahead
    assert paper.exchange.get(ours).status is OrderStatus.PARTIALLY_FILLED


def test_a_trade_through_our_price_fills_us_at_our_price_and_a_trade_short_of_it_does_not() -> None:
    paper, seen = matcher()
    paper.book("BTC/USDT", [("100.0", "0.5")], [("100.5", "1")], is_snapshot=True)
    ours = place(paper, limit("BTC/USDT", BUY, "99.5", "0.2"))
    paper.trade("BTC/USDT", "99.8", "5", SELL)
    assert fills(seen, ours) == []  # the market never came down to 99.5
    paper.trade("BTC/USDT", "99.4", "0.1", SELL)
    assert fills(seen, ours) == [(D("99.5"), D("0.1"))]


def test_a_book_that_crosses_our_resting_order_fills_it() -> None:
    paper, seen = matcher()
    paper.book("BTC/USDT", [("100.0", "0.5")], [("100.5", "1")], is_snapshot=True)
    ours = place(paper, limit("BTC/USDT", BUY, "100.2", "0.3"))
    paper.book("BTC/USDT", [], [("100.5", "0"), ("100.1", "0.2")], is_snapshot=False)
    assert fills(seen, ours) == [(D("100.2"), D("0.2"))]


def test_a_marketable_order_takes_the_displayed_levels_and_a_thin_book_fills_it_partly() -> None:
    paper, seen = matcher()
    paper.book("BTC/USDT", [("100.0", "0.5")], [("100.5", "0.1"), ("100.6", "0.2")], is_snapshot=True)
    ours = place(paper, limit("BTC/USDT", BUY, "100.6", "0.5", time_in_force=TimeInForce.IOC))
    assert fills(seen, ours) == [(D("100.5"), D("0.1")), (D("100.6"), D("0.2"))]
    order = paper.exchange.get(ours)
    assert order.status is OrderStatus.EXPIRED and order.filled_size == D("0.3")


def test_post_only_is_refused_when_it_would_take_the_venues_book() -> None:
    paper, _ = matcher()
    paper.book("BTC/USDT", [("100.0", "0.5")], [("100.5", "1")], is_snapshot=True)
    crossing = paper.exchange.get(place(paper, limit("BTC/USDT", BUY, "100.5", "0.1", post_only=True)))
    assert crossing.status is OrderStatus.REJECTED and "post-only" in crossing.status_reason
    resting = paper.exchange.get(place(paper, limit("BTC/USDT", BUY, "100.4", "0.1", post_only=True)))
    assert resting.status is OrderStatus.OPEN


def test_a_contract_is_its_size_of_the_base_asset_for_fees_and_pnl() -> None:
    paper, _ = matcher()
    paper.book("BTC/USDT:USDT", [("60000.0", "50")], [("60000.1", "50")], is_snapshot=True)
    place(paper, limit("BTC/USDT:USDT", BUY, "60000.1", "10", time_in_force=TimeInForce.IOC))
    # 10 contracts of 0.01 BTC at 60000.1: 6000.01 notional, a taker fee of 12.00002.
    assert {b.asset: b.total for b in paper.exchange.balances()}["USDT"] == D("100000") - D("12.00002")
    paper.book("BTC/USDT:USDT", [("60100.0", "50")], [("60100.1", "50")], is_snapshot=True)
    place(paper, limit("BTC/USDT:USDT", SELL, "60100.0", "10", time_in_force=TimeInForce.IOC))
    # Realised (60100.0 - 60000.1) * 10 * 0.01 = 9.99; the closing fee 6010 * 0.002 = 12.02.
    usdt = {b.asset: b.total for b in paper.exchange.balances()}["USDT"]
    assert usdt == D("100000") - D("12.00002") + D("9.99") - D("12.02")
    assert paper.exchange.positions("BTC/USDT:USDT")[0].size == 0


def test_a_reduce_only_order_never_opens_nor_grows_a_position() -> None:
    paper, _ = matcher()
    paper.book("BTC/USDT:USDT", [("60000.0", "50")], [("60000.1", "50")], is_snapshot=True)
    place(paper, limit("BTC/USDT:USDT", BUY, "60000.1", "4", time_in_force=TimeInForce.IOC))
    with pytest.raises(FailedPrecondition, match="would increase the position"):
        place(paper, limit("BTC/USDT:USDT", BUY, "59000", "1", reduce_only=True))
    closing = paper.exchange.get(place(paper, limit("BTC/USDT:USDT", SELL, "61000", "9", reduce_only=True)))
    assert closing.status is OrderStatus.OPEN and closing.size == D("4")  # held at the position
    paper.trade("BTC/USDT:USDT", "61000.5", "100", BUY)
    assert paper.exchange.positions("BTC/USDT:USDT")[0].size == 0


def test_sizes_off_the_lot_grid_count_their_whole_lots_and_prices_off_the_tick_are_left_out() -> None:
    paper, _ = matcher()
    paper.book("BTC/USDT", [("100.0", "0.0055"), ("99.95", "3")], [("100.5", "1")], is_snapshot=True)
    paper.settle("BTC/USDT")
    book = paper.exchange.book("BTC/USDT")
    assert book.depth(BUY) == [(1000, 5)]  # 0.0055 is 5 whole lots; 99.95 is off the 0.1 grid
    assert "BTC/USDT" in paper.ready


@pytest.mark.parametrize("bad", ["abc", "-1"])
def test_a_malformed_event_is_left_out_and_counted_not_raised(bad: str) -> None:
    paper, _ = matcher()
    paper.book("BTC/USDT", [("100.0", bad)], [("100.5", "1")], is_snapshot=True)
    assert "BTC/USDT" not in paper.ready
    paper.trade("BTC/USDT", bad, "1", BUY)  # no exception: the feed goes on
