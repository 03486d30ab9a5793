"""The sim's limits on user orders: a bounded window of closed orders, and a price band.

(Issue 12, item 16: the sim kept every order forever, about 2.4 KB each, and rested a sell at
1e38.) The window and the band are documented in trademesh/core/domain/matching/order_manager.py and
trademesh/core/domain/matching/price_band.py.
"""

from __future__ import annotations

import gc
import itertools
import tracemalloc
from decimal import Decimal

import pytest

from trademesh.core.domain.matching.exchange import SimExchange
from trademesh.core.domain.model import (
    Instrument,
    InstrumentKind,
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
)
from trademesh.core.platform.errors import InvalidArgument, NotFound

D = Decimal
BTC = Instrument("sim", "BTC/USDT", "BTCUSDT", InstrumentKind.SPOT, "BTC", "USDT", "USDT", D(1), D("0.001"))


def exchange(kept: int = 100, ratio: str = "5") -> SimExchange:
    ticks = itertools.count(1)
    return SimExchange(
        "sim",
        [BTC],
        maker_fee_rate=D(0),
        taker_fee_rate=D(0),
        balances={"USDT": D(10**12), "BTC": D(10**6)},
        clock=lambda: next(ticks),
        price_band_ratio=D(ratio),
        closed_orders_kept=kept,
    )


def buy(price: str, client_order_id: str = "", tif: TimeInForce = TimeInForce.GTC) -> OrderRequest:
    return OrderRequest(
        "BTC/USDT", Side.BUY, OrderType.LIMIT, D(1), D(price), tif, client_order_id=client_order_id
    )


def sell(price: str) -> OrderRequest:
    return OrderRequest("BTC/USDT", Side.SELL, OrderType.LIMIT, D(1), D(price), TimeInForce.GTC)


def place_and_cancel(ex: SimExchange, n: int, prefix: str = "c") -> list[str]:
    ids = []
    for i in range(n):
        order, _ = ex.place(buy("100", f"{prefix}{i}"))
        ex.cancel(order.order_id)
        ids.append(order.order_id)
    return ids


def kept(ex: SimExchange, ids: list[str]) -> list[str]:
    found = []
    for order_id in ids:
        try:
            ex.get(order_id)
        except NotFound:
            continue
        found.append(order_id)
    return found


# ---- the window of closed orders


def test_only_the_last_closed_orders_are_kept() -> None:
    ex = exchange(kept=100)
    ids = place_and_cancel(ex, 250)
    assert kept(ex, ids) == ids[-100:]
    with pytest.raises(NotFound, match=r"the sim keeps open orders and the last 100 closed ones"):
        ex.get(ids[0])
    with pytest.raises(NotFound, match=r"no order with client_order_id 'c0' \(the sim keeps"):
        ex.get(client_order_id="c0")
    assert ex.get(client_order_id="c249").status is OrderStatus.CANCELED


def test_open_orders_are_kept_however_many_close_after_them() -> None:
    ex = exchange(kept=100)
    resting, _ = ex.place(buy("90", "resting"))
    place_and_cancel(ex, 300)
    assert ex.get(client_order_id="resting").order_id == resting.order_id
    assert [o.order_id for o in ex.open_orders()] == [resting.order_id]
    again, duplicate = ex.place(buy("90", "resting"))
    assert duplicate and again.order_id == resting.order_id


def test_a_client_order_id_is_idempotent_inside_the_window_and_free_after_it() -> None:
    ex = exchange(kept=100)
    first, _ = ex.place(buy("100", "retry-me"))
    ex.cancel(first.order_id)
    place_and_cancel(ex, 99)
    inside, duplicate = ex.place(buy("100", "retry-me"))
    assert duplicate and inside.order_id == first.order_id
    place_and_cancel(ex, 1, prefix="last")  # the 101st order to close after it: it is dropped
    later, duplicate = ex.place(buy("100", "retry-me"))
    assert not duplicate and later.order_id != first.order_id and later.status is OrderStatus.OPEN


def test_rejected_and_filled_orders_count_as_closed() -> None:
    ex = exchange(kept=100)
    ex.submit_synthetic("BTC/USDT", Side.SELL, 101, 10**9)
    ex.submit_synthetic("BTC/USDT", Side.BUY, 99, 10**9)
    filled, _ = ex.place(buy("101", "taker", TimeInForce.IOC))
    assert filled.status is OrderStatus.FILLED
    rejected, _ = ex.place(OrderRequest("BTC/USDT", Side.BUY, OrderType.LIMIT, D(1), D(101), TimeInForce.GTC,
                                        post_only=True, client_order_id="po"))  # fmt: skip
    assert rejected.status is OrderStatus.REJECTED
    place_and_cancel(ex, 100)
    for order_id in (filled.order_id, rejected.order_id):
        with pytest.raises(NotFound):
            ex.get(order_id)


def _traced_after(ex: SimExchange, n: int, start: int) -> int:
    place_and_cancel(ex, n, prefix=f"m{start}-")
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


def test_memory_stops_growing_once_the_window_is_full() -> None:
    ex = exchange(kept=100)
    tracemalloc.start()
    try:
        base = _traced_after(ex, 1000, 0)  # the window is full of orders traced from the start
        grown = _traced_after(ex, 3000, 1) - base
    finally:
        tracemalloc.stop()
    # Before the window, each closed order stayed: 3,000 more held over 3 MB.
    assert grown < 50_000, f"{grown} bytes kept by 3000 more closed orders"


# ---- the price band


def quoted(ratio: str = "5") -> SimExchange:
    ex = exchange(ratio=ratio)
    ex.submit_synthetic("BTC/USDT", Side.BUY, 99, 1000)
    ex.submit_synthetic("BTC/USDT", Side.SELL, 101, 1000)
    return ex  # mid 100: band 20 .. 500


def test_a_limit_price_at_the_band_edges_is_taken() -> None:
    ex = quoted()
    assert ex.place(sell("500"))[0].status is OrderStatus.OPEN
    assert ex.place(buy("20"))[0].status is OrderStatus.OPEN


@pytest.mark.parametrize("price", ["501", "100000000000000000000000000000000000000"])
def test_a_sell_far_above_the_mid_is_refused_naming_the_band(price: str) -> None:
    ex = quoted()
    with pytest.raises(InvalidArgument) as error:
        ex.place(sell(price))
    (violation,) = error.value.violations
    assert violation.field == "price"
    assert violation.description == (
        f"{price} is outside the price band 20 .. 500 (the reference 100, the book's mid, "
        "divided or multiplied by 5)"
    )
    assert ex.open_orders() == [] and len(ex.book("BTC/USDT")) == 2


def test_a_buy_far_below_the_mid_is_refused() -> None:
    with pytest.raises(InvalidArgument, match=r"^price: 19 is outside the price band 20 \.\. 500"):
        quoted().place(buy("19"))


def test_the_band_follows_the_configured_ratio() -> None:
    ex = quoted(ratio="1.5")  # 66.67 .. 150: 67 .. 150 on the tick grid
    assert ex.place(sell("150"))[0].status is OrderStatus.OPEN
    with pytest.raises(InvalidArgument, match=r"price band 67 \.\. 150 .* by 1\.5\)$"):
        ex.place(sell("151"))


def test_with_one_side_empty_the_last_trade_is_the_reference() -> None:
    ex = exchange()
    ex.submit_synthetic("BTC/USDT", Side.SELL, 200, 5)
    ex.submit_synthetic("BTC/USDT", Side.BUY, None, 5)  # takes the whole ask side at 200
    with pytest.raises(InvalidArgument, match=r"band 40 \.\. 1000 \(the reference 200, the last trade,"):
        ex.place(sell("1001"))


def test_an_empty_market_that_never_traded_has_no_band() -> None:
    ex = exchange()
    order, _ = ex.place(sell("100000000"))
    assert order.status is OrderStatus.OPEN
    with pytest.raises(InvalidArgument, match=r"the only quoted side's best price"):
        ex.place(buy("1"))
