"""The replayed venue's fills on bars (a symbol whose history holds bars and no trades or book):
hand-worked cases of ReplayedMarket.on_bar (docs/backtest-market.md, "Fills on bars").

One instrument: BTC/USDT, tick 1, lot 0.1; maker fee 0.1 %, taker fee 0.2 %. A bar is handed
at its close; orders reaching the venue between two bars wait for the next one's open. Each
price the bar's path meets is a trade there, then a deep ask at it and a deep bid a tick below.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from decimal import Decimal

import pytest

from trademesh.core.backtest.market import Latency, ReplayedMarket
from trademesh.core.domain.matching.order_manager import FeeSchedule
from trademesh.core.domain.model import (
    Execution,
    Instrument,
    InstrumentKind,
    Liquidity,
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
)
from trademesh.core.platform.errors import InvalidArgument

D = Decimal
BUY, SELL = Side.BUY, Side.SELL
TAKER, MAKER = Liquidity.TAKER, Liquidity.MAKER
MIN = 60 * 1_000_000_000
MS = 1_000_000
SYMBOL = "BTC/USDT"
BTC = Instrument(
    venue="sim", symbol=SYMBOL, native_symbol="BTCUSDT", kind=InstrumentKind.SPOT, base_asset="BTC",
    quote_asset="USDT", settle_asset="USDT", tick_size=D("1"), lot_size=D("0.1"),
)  # fmt: skip
FEES = FeeSchedule(maker=D("0.001"), taker=D("0.002"))
Fill = tuple[str, Decimal, Decimal, Decimal, Liquidity]


def venue() -> ReplayedMarket:
    m = ReplayedMarket("sim", [BTC], FEES, {"USDT": D("100000"), "BTC": D("10")}, Latency(20 * MS, 0))
    m.fill_on_bars([SYMBOL])
    return m


def bar(m: ReplayedMarket, close_ns: int, o: str, h: str, low: str, c: str) -> list[Fill]:
    """The bar closing at `close_ns`, and the fills it made (client id, price, size, fee, side)."""
    m.on_bar(SYMBOL, (D(o), D(h), D(low), D(c)), close_ns)
    return fills(m.advance(close_ns))


def fills(reports: Sequence[tuple[int, Execution]]) -> list[Fill]:
    return [
        (e.order.client_order_id, e.fill.price, e.fill.size, e.fill.fee, e.fill.liquidity)
        for _, e in reports
        if e.fill is not None
    ]


def order(
    side: Side, kind: OrderType, cid: str, price: str | None = None, trigger: str | None = None
) -> OrderRequest:
    tif = TimeInForce.GTC if kind is OrderType.LIMIT else TimeInForce.IOC
    return OrderRequest(
        SYMBOL, side, kind, D("1.0"), None if price is None else D(price), tif, client_order_id=cid,
        trigger_price=None if trigger is None else D(trigger),
    )  # fmt: skip


def test_a_market_buy_waits_for_the_next_bar_and_fills_at_its_open() -> None:
    m = venue()
    assert bar(m, 1 * MIN, "100", "105", "98", "104") == []
    m.submit(order(BUY, OrderType.MARKET, "buy"), 1 * MIN)
    # It reaches the venue 20 ms after the close: no bar since, so it waits (no report yet).
    assert m.advance(1 * MIN + 30 * MS) == []
    assert m.open_orders() == []
    # The next bar gapped up to 110: bought at its open, a taker (fee 110 * 0.002 = 0.22).
    assert bar(m, 2 * MIN, "110", "112", "108", "111") == [("buy", D(110), D("1.0"), D("0.22"), TAKER)]


def test_a_market_sell_fills_a_tick_below_the_open() -> None:
    m = venue()
    bar(m, 1 * MIN, "100", "105", "98", "104")
    m.submit(order(SELL, OrderType.MARKET, "sell"), 1 * MIN)
    assert bar(m, 2 * MIN, "104", "106", "101", "102") == [("sell", D(103), D("1.0"), D("0.206"), TAKER)]


def test_a_limit_buy_fills_at_its_price_when_a_bar_reaches_it_and_not_before() -> None:
    m = venue()
    bar(m, 1 * MIN, "100", "105", "98", "104")
    m.submit(order(BUY, OrderType.LIMIT, "bid", price="95"), 1 * MIN)
    # Placed at the next open (104), it rests: that bar's low, 96, does not reach 95.
    assert bar(m, 2 * MIN, "104", "106", "96", "97") == []
    assert [o.client_order_id for o in m.open_orders()] == ["bid"]
    # The next one's low touches 95: filled at 95, a maker (fee 0.095).
    assert bar(m, 3 * MIN, "97", "99", "95", "98") == [("bid", D(95), D("1.0"), D("0.095"), MAKER)]
    assert m.open_orders() == []


def test_a_limit_buy_the_market_gaps_through_fills_at_its_price() -> None:
    m = venue()
    bar(m, 1 * MIN, "100", "105", "98", "104")
    m.submit(order(BUY, OrderType.LIMIT, "bid", price="100"), 1 * MIN)
    assert bar(m, 2 * MIN, "104", "106", "101", "102") == []
    # Opened at 90, far below: the resting bid is met at the gap, at its own price.
    assert bar(m, 3 * MIN, "90", "93", "89", "92") == [("bid", D(100), D("1.0"), D("0.1"), MAKER)]


def test_a_marketable_limit_fills_at_the_open() -> None:
    m = venue()
    bar(m, 1 * MIN, "100", "105", "98", "104")
    m.submit(order(BUY, OrderType.LIMIT, "bid", price="110"), 1 * MIN)
    assert bar(m, 2 * MIN, "104", "106", "101", "102") == [("bid", D(104), D("1.0"), D("0.208"), TAKER)]


def test_a_stop_sell_triggers_at_its_price_within_a_bar_and_at_the_open_on_a_gap() -> None:
    m = venue()
    bar(m, 1 * MIN, "100", "105", "98", "104")
    m.submit(order(SELL, OrderType.STOP_MARKET, "stop", trigger="100"), 1 * MIN)
    # The low, 97, passes the trigger: the path stops at 100, and the stop sells a tick below.
    assert bar(m, 2 * MIN, "104", "106", "97", "99") == [("stop", D(99), D("1.0"), D("0.198"), TAKER)]
    m.submit(order(SELL, OrderType.STOP_MARKET, "gap", trigger="95"), 2 * MIN)
    assert bar(m, 3 * MIN, "99", "100", "97", "98") == []  # placed at 99, not reached
    # Opened at 90, below the trigger: it sells a tick below the open.
    assert bar(m, 4 * MIN, "90", "93", "88", "92") == [("gap", D(89), D("1.0"), D("0.178"), TAKER)]


def test_a_buy_stop_triggers_at_its_price_and_fills_at_the_ask_there() -> None:
    m = venue()
    bar(m, 1 * MIN, "100", "105", "98", "104")
    m.submit(order(BUY, OrderType.STOP_MARKET, "stop", trigger="108"), 1 * MIN)
    assert bar(m, 2 * MIN, "104", "111", "103", "110") == [("stop", D(108), D("1.0"), D("0.216"), TAKER)]


def test_the_path_meets_the_extreme_nearer_the_open_first() -> None:
    m = venue()
    bar(m, 1 * MIN, "100", "101", "99", "100")
    m.submit(order(SELL, OrderType.LIMIT, "target", price="108"), 1 * MIN)
    m.submit(order(SELL, OrderType.STOP_MARKET, "stop", trigger="95"), 1 * MIN)
    # Open 100, low 94 (6 away), high 110 (10 away): the low first, so the stop, then the target.
    assert bar(m, 2 * MIN, "100", "110", "94", "105") == [
        ("stop", D(94), D("1.0"), D("0.188"), TAKER),
        ("target", D(108), D("1.0"), D("0.108"), MAKER),
    ]


def test_a_cancel_waits_with_its_order_and_both_reach_the_venue_in_order() -> None:
    m = venue()
    bar(m, 1 * MIN, "100", "105", "98", "104")
    m.submit(order(BUY, OrderType.LIMIT, "bid", price="95"), 1 * MIN)
    m.cancel("bid", 1 * MIN + 5 * MS)
    m.on_bar(SYMBOL, (D(97), D(99), D(94), D(98)), 2 * MIN)
    reports = m.advance(2 * MIN)
    assert fills(reports) == []
    assert [e.order.status for _, e in reports] == [OrderStatus.OPEN, OrderStatus.CANCELED]


def test_bar_prices_off_the_tick_go_to_the_nearest_tick() -> None:
    m = venue()
    bar(m, 1 * MIN, "100.2", "105", "98", "104.4")
    m.submit(order(BUY, OrderType.MARKET, "buy"), 1 * MIN)
    assert bar(m, 2 * MIN, "104.6", "106", "101", "102")[0][1] == D(105)


def test_a_symbol_not_filled_on_bars_refuses_a_bar() -> None:
    m = ReplayedMarket("sim", [BTC], FEES, {"USDT": D("100000")})
    with pytest.raises(InvalidArgument):
        m.on_bar(SYMBOL, (D(1), D(1), D(1), D(1)), MIN)


def test_a_reduce_only_order_waiting_for_the_bar_counts_in_what_the_next_one_is_held_at() -> None:
    m = venue()
    bar(m, 1 * MIN, "100", "105", "98", "104")
    m.submit(order(BUY, OrderType.MARKET, "buy"), 1 * MIN)
    bar(m, 2 * MIN, "104", "106", "101", "102")  # long 1.0
    close = OrderRequest(
        SYMBOL, SELL, OrderType.LIMIT, D("0.6"), D("120"), TimeInForce.GTC, reduce_only=True,
        client_order_id="close",
    )  # fmt: skip
    m.submit(close, 2 * MIN)
    m.advance(2 * MIN + 30 * MS)  # it reached the venue: waiting for the next bar
    again = dataclasses.replace(close, client_order_id="again")
    assert m.held_at(again, 2 * MIN + 60 * MS) == D("0.4")
