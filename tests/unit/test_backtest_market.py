"""The backtest's replayed venue: hand-worked matching cases against recorded market events.

One instrument throughout: BTC/USDT, tick 1, lot 0.1 (so a size of 1.5 is 15 lots); maker fee
0.1 %, taker fee 0.2 %. Times are nanoseconds; MS is a millisecond.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trademesh.common.v1 import common_pb2 as common
from trademesh.core.backtest.market import QUEUE_RULES, Latency, QueueRule, ReplayedMarket, queue_rule
from trademesh.core.domain.matching.engine import SYNTHETIC, USER, OrderBook
from trademesh.core.domain.matching.exchange import _Scale
from trademesh.core.domain.matching.mirror import Units
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
from trademesh.core.platform.errors import InvalidArgument, NotFound
from trademesh.marketdata.v1 import marketdata_pb2 as md

D = Decimal
BUY, SELL = Side.BUY, Side.SELL
MS = 1_000_000
SYMBOL = "BTC/USDT"
BTC = Instrument(
    venue="sim",
    symbol=SYMBOL,
    native_symbol="BTCUSDT",
    kind=InstrumentKind.SPOT,
    base_asset="BTC",
    quote_asset="USDT",
    settle_asset="USDT",
    tick_size=D("1"),
    lot_size=D("0.1"),
)
FEES = FeeSchedule(maker=D("0.001"), taker=D("0.002"))
BALANCES = {"USDT": D("100000"), "BTC": D("10")}
PB_SIDE = {BUY: common.SIDE_BUY, SELL: common.SIDE_SELL}

Levels = Sequence[tuple[str, str]]


# ---- recorded events and orders


def _levels(levels: Levels) -> list[md.BookLevel]:
    return [md.BookLevel(price=p, size=s) for p, s in levels]


def snapshot(ts: int, bids: Levels, asks: Levels) -> md.MarketEvent:
    book = md.BookSnapshot(sequence=1, bids=_levels(bids), asks=_levels(asks))
    return md.MarketEvent(venue="sim", symbol=SYMBOL, ts_event_ns=ts, book_snapshot=book)


def delta(ts: int, bids: Levels = (), asks: Levels = ()) -> md.MarketEvent:
    book = md.BookDelta(sequence=2, bids=_levels(bids), asks=_levels(asks))
    return md.MarketEvent(venue="sim", symbol=SYMBOL, ts_event_ns=ts, book_delta=book)


def trade(ts: int, price: str, size: str, taker: Side | None) -> md.MarketEvent:
    side = common.SIDE_UNSPECIFIED if taker is None else PB_SIDE[taker]
    print_ = md.Trade(trade_id=str(ts), price=price, size=size, taker_side=side)
    return md.MarketEvent(venue="sim", symbol=SYMBOL, ts_event_ns=ts, trade=print_)


def limit(side: Side, price: str, size: str, cid: str, reduce_only: bool = False) -> OrderRequest:
    return OrderRequest(
        SYMBOL,
        side,
        OrderType.LIMIT,
        D(size),
        D(price),
        TimeInForce.GTC,
        reduce_only=reduce_only,
        client_order_id=cid,
    )


def market(side: Side, size: str, cid: str) -> OrderRequest:
    return OrderRequest(SYMBOL, side, OrderType.MARKET, D(size), None, TimeInForce.IOC, client_order_id=cid)


def venue(latency: Latency | None = None, queue: QueueRule = QueueRule.BACK) -> ReplayedMarket:
    return ReplayedMarket("sim", [BTC], FEES, BALANCES, latency, queue=queue)


def fills(reports: Sequence[tuple[int, Execution]]) -> list[tuple[str, D, D, D, Liquidity]]:
    """(client order id, price, size, fee, liquidity) of each fill reported."""
    return [
        (e.order.client_order_id, e.fill.price, e.fill.size, e.fill.fee, e.fill.liquidity)
        for _, e in reports
        if e.fill is not None
    ]


def statuses(reports: Sequence[tuple[int, Execution]]) -> list[OrderStatus]:
    return [e.order.status for _, e in reports]


def queue(m: ReplayedMarket, side: Side, price: int) -> list[tuple[str, int]]:
    """A level's queue, front first: ("syn" or "us", lots)."""
    names = {SYNTHETIC: "syn", USER: "us"}
    return [(names[o.owner], o.remaining) for o in m.book(SYMBOL).orders_at(side, price)]


# ---- queue position, trades, fees


def test_a_resting_buy_fills_only_after_the_synthetic_size_ahead_of_it_has_traded() -> None:
    m = venue()
    m.on_market(snapshot(1 * MS, bids=[("100", "2.0")], asks=[("101", "3.0")]))
    m.submit(limit(BUY, "100", "1.0", "b1"), 2 * MS)
    assert statuses(m.advance(2 * MS)) == [OrderStatus.OPEN]
    assert queue(m, BUY, 100) == [("syn", 20), ("us", 10)]  # behind the recorded 2.0

    # A seller takes 1.5 at 100: it comes out of the 2.0 ahead of us (0.5 left ahead).
    m.on_market(trade(3 * MS, "100", "1.5", SELL))
    assert m.advance(3 * MS) == []
    # The recorded book then says 0.5 at 100 (2.0 - 1.5): the trade already took it down to
    # 0.5, so the delta changes nothing (the 1.5 is not taken a second time).
    m.on_market(delta(4 * MS, bids=[("100", "0.5")]))
    assert queue(m, BUY, 100) == [("syn", 5), ("us", 10)]

    # A further 1.0 at 100: 0.5 ahead goes first, then 0.5 of ours (a partial maker fill).
    # Fee: 100 * 0.5 * 0.001 = 0.05.
    m.on_market(trade(5 * MS, "100", "1.0", SELL))
    reports = m.advance(5 * MS)
    assert fills(reports) == [("b1", D(100), D("0.5"), D("0.05"), Liquidity.MAKER)]
    assert statuses(reports) == [OrderStatus.PARTIALLY_FILLED]
    # The recorded level is now gone (0.5 + 0.5 traded of a recorded 0.5: we were extra).
    m.on_market(delta(6 * MS, bids=[("100", "0")]))
    assert queue(m, BUY, 100) == [("us", 5)]

    # The next seller at 100 (0.7) meets only us: the rest of our 0.5 fills, fee 0.05.
    m.on_market(trade(7 * MS, "100", "0.7", SELL))
    reports = m.advance(7 * MS)
    assert fills(reports) == [("b1", D(100), D("0.5"), D("0.05"), Liquidity.MAKER)]
    assert statuses(reports) == [OrderStatus.FILLED]
    # 1.0 BTC bought at 100 for 100 USDT plus 0.1 USDT of maker fees.
    assert {b.asset: b.total for b in m.balances()} == {"USDT": D("99899.9"), "BTC": D("11")}
    assert m.open_orders() == []


def test_a_market_buy_takes_three_recorded_ask_levels_at_their_prices() -> None:
    m = venue()
    m.on_market(
        snapshot(1 * MS, bids=[("100", "1.0")], asks=[("101", "1.0"), ("102", "2.0"), ("103", "3.0")])
    )
    m.submit(market(BUY, "4.0", "mb"), 2 * MS)
    reports = m.advance(2 * MS)
    # 1.0 @ 101 (fee 101 * 1.0 * 0.002 = 0.202), 2.0 @ 102 (0.408), then 1.0 of the 3.0 @ 103
    # (0.206): taker fills at each level's price, the last one partial.
    assert fills(reports) == [
        ("mb", D(101), D("1.0"), D("0.202"), Liquidity.TAKER),
        ("mb", D(102), D("2.0"), D("0.408"), Liquidity.TAKER),
        ("mb", D(103), D("1.0"), D("0.206"), Liquidity.TAKER),
    ]
    assert reports[-1][1].order.status is OrderStatus.FILLED
    assert reports[-1][1].order.average_fill_price == D(102)  # (101 + 204 + 103) / 4
    # The mirrored asks stay reduced by what we took until the recording updates them.
    assert m.book(SYMBOL).depth(SELL) == [(103, 20)]
    m.on_market(delta(3 * MS, asks=[("103", "2.5")]))  # the recorded 103 level: 3.0 -> 2.5
    assert m.book(SYMBOL).depth(SELL) == [(103, 25)]
    # 408 USDT of fills (101 + 204 + 103) + 0.816 of fees.
    assert {b.asset: b.total for b in m.balances()} == {"USDT": D("99591.184"), "BTC": D("14")}


def test_a_trade_fills_our_better_priced_order_first_and_drops_stale_liquidity() -> None:
    m = venue()
    m.on_market(snapshot(1 * MS, bids=[("100", "1.0")], asks=[("102", "1.0"), ("103", "1.0")]))
    m.submit(limit(SELL, "101", "0.4", "s1"), 2 * MS)  # alone inside the spread, best ask
    m.advance(2 * MS)
    # A buyer takes 1.0 at 103. It could not have reached 103 while our 0.4 at 101 (or the
    # recorded 1.0 at 102, which the recording has not removed yet: stale) were there: our
    # 0.4 fills first, at our price, as maker (fee 101 * 0.4 * 0.001 = 0.0404); the stale 102
    # level is dropped; the rest of the trade (0.6) takes 0.6 of the 103 level.
    m.on_market(trade(3 * MS, "103", "1.0", BUY))
    assert fills(m.advance(3 * MS)) == [("s1", D(101), D("0.4"), D("0.0404"), Liquidity.MAKER)]
    assert m.book(SYMBOL).depth(SELL) == [(103, 4)]


def test_a_trade_without_a_taker_side_is_read_from_the_book() -> None:
    m = venue()
    m.on_market(snapshot(1 * MS, bids=[("100", "1.0")], asks=[("101", "1.0")]))
    m.submit(limit(BUY, "100", "0.5", "b"), 2 * MS)
    m.advance(2 * MS)
    # At 100 with the best bid at 100: a seller; the 1.0 ahead of us goes, then 0.3 of ours.
    m.on_market(trade(3 * MS, "100", "1.3", None))
    assert fills(m.advance(3 * MS)) == [("b", D(100), D("0.3"), D("0.03"), Liquidity.MAKER)]
    # Between the bid and the ask (after the recording emptied both): no side, skipped.
    m.on_market(delta(4 * MS, bids=[("100", "0")], asks=[("101", "0")]))
    m.on_market(trade(5 * MS, "105", "9", None))
    assert m.advance(5 * MS) == []


def test_a_replayed_trade_triggers_our_stop() -> None:
    m = venue()
    m.on_market(snapshot(1 * MS, bids=[("99", "1.0"), ("98", "5.0")], asks=[("101", "1.0")]))
    stop = OrderRequest(
        SYMBOL,
        SELL,
        OrderType.STOP_MARKET,
        D("1.0"),
        None,
        TimeInForce.IOC,
        client_order_id="stop",
        trigger_price=D("99"),
    )
    m.submit(stop, 2 * MS)
    assert statuses(m.advance(2 * MS)) == [OrderStatus.OPEN]
    # A seller takes 0.5 at 99: a trade at the trigger. The stop sells 1.0 at market: the 0.5
    # left at 99 (fee 99 * 0.5 * 0.002 = 0.099), then 0.5 at 98 (0.098).
    m.on_market(trade(3 * MS, "99", "0.5", SELL))
    assert fills(m.advance(3 * MS)) == [
        ("stop", D(99), D("0.5"), D("0.099"), Liquidity.TAKER),
        ("stop", D(98), D("0.5"), D("0.098"), Liquidity.TAKER),
    ]


def test_a_stop_triggered_by_a_recorded_sweep_is_placed_after_the_sweeps_last_trade() -> None:
    """The sim places a stop once the operation that triggered it is over: a taker's sweep of
    two levels is recorded as two trades at one time, and the stop sells into what the whole
    sweep left, not between its trades."""
    m = venue()
    m.on_market(snapshot(1 * MS, bids=[("100", "1.0"), ("99", "1.0"), ("98", "5.0")], asks=[("101", "1.0")]))
    stop = OrderRequest(
        SYMBOL, SELL, OrderType.STOP_MARKET, D("1.5"), None, TimeInForce.IOC,
        client_order_id="stop", trigger_price=D("100"),
    )  # fmt: skip
    m.submit(stop, 2 * MS)
    assert statuses(m.advance(2 * MS)) == [OrderStatus.OPEN]
    # A seller sweeps 1.0 at 100 (the trigger) and 1.0 at 99, one operation at 3 ms. Placed
    # after the first trade, the stop would have sold 1.0 at 99 and 0.5 at 98; after the
    # sweep, 99 is gone: 1.5 at 98 (fee 98 * 1.5 * 0.002 = 0.294).
    m.on_market(trade(3 * MS, "100", "1.0", SELL))
    m.on_market(trade(3 * MS, "99", "1.0", SELL))
    assert fills(m.advance(3 * MS)) == [("stop", D(98), D("1.5"), D("0.294"), Liquidity.TAKER)]
    assert m.book(SYMBOL).depth(BUY) == [(98, 35)]


def test_a_held_stop_is_placed_before_the_next_event_or_read() -> None:
    """The next event that is not a trade of the same operation (here a trade 1 ns later, its
    taker the same), like any read of the venue, comes after the stop is placed."""
    m = venue()
    m.on_market(snapshot(1 * MS, bids=[("100", "1.0"), ("99", "1.0")], asks=[("101", "1.0")]))
    stop = OrderRequest(
        SYMBOL, SELL, OrderType.STOP_MARKET, D("0.5"), None, TimeInForce.IOC,
        client_order_id="stop", trigger_price=D("100"),
    )  # fmt: skip
    m.submit(stop, 2 * MS)
    m.advance(2 * MS)
    m.on_market(trade(3 * MS, "100", "0.5", SELL))
    # Read, the venue places the stop first: it sells the 0.5 left at 100 (held, 100 stays best).
    assert m.best(SYMBOL) == (99, 101)
    m.on_market(trade(3 * MS + 1, "99", "0.5", SELL))
    assert fills(m.advance(4 * MS)) == [("stop", D(100), D("0.5"), D("0.1"), Liquidity.TAKER)]
    assert m.book(SYMBOL).depth(BUY) == [(99, 5)]


# ---- the book's levels


def test_a_recorded_decrease_is_taken_from_the_back_so_we_never_move_up_the_queue() -> None:
    m = venue()
    m.on_market(snapshot(1 * MS, bids=[("100", "2.0")], asks=[("101", "1.0")]))
    m.submit(limit(BUY, "100", "1.0", "b"), 2 * MS)
    m.advance(2 * MS)
    # 1.0 more is recorded at 100: it arrived after us, so it waits behind us.
    m.on_market(delta(3 * MS, bids=[("100", "3.0")]))
    assert queue(m, BUY, 100) == [("syn", 20), ("us", 10), ("syn", 10)]
    # 0.5 more joins the back too (one synthetic order behind us, not one per increase).
    m.on_market(delta(3 * MS + 1, bids=[("100", "3.5")]))
    assert queue(m, BUY, 100) == [("syn", 20), ("us", 10), ("syn", 15)]
    # The level falls back to 2.0: the 1.5 that left is taken from behind us; still 2.0 ahead.
    m.on_market(delta(4 * MS, bids=[("100", "2.0")]))
    assert queue(m, BUY, 100) == [("syn", 20), ("us", 10)]
    # It falls to 1.5: only the order ahead of us is left to take from; it is reduced in place
    # (it does not go behind us), so 1.5 remains ahead.
    m.on_market(delta(5 * MS, bids=[("100", "1.5")]))
    assert queue(m, BUY, 100) == [("syn", 15), ("us", 10)]
    # So a seller of 1.5 at 100 does not reach us (had the 0.5 been taken from the front, or
    # the reduced order re-queued, we would have filled 0.5 here) ...
    m.on_market(trade(6 * MS, "100", "1.5", SELL))
    assert fills(m.advance(6 * MS)) == []
    # ... and the next seller's 0.4 is ours.
    m.on_market(trade(7 * MS, "100", "0.4", SELL))
    assert fills(m.advance(7 * MS)) == [("b", D(100), D("0.4"), D("0.04"), Liquidity.MAKER)]


def test_by_the_front_rule_a_recorded_decrease_is_taken_oldest_first_and_we_move_up() -> None:
    """The sim's makers cancel their oldest order at a level (trademesh/venues/sim/market_data.py): the
    same recorded updates as the back rule's test above, read that way."""
    m = venue(queue=QueueRule.FRONT)
    m.on_market(snapshot(1 * MS, bids=[("100", "2.0")], asks=[("101", "1.0")]))
    m.submit(limit(BUY, "100", "1.0", "b"), 2 * MS)
    m.advance(2 * MS)
    # Increases join the back, each an order of its own (a sim maker's; by the back rule they
    # merge).
    m.on_market(delta(3 * MS, bids=[("100", "3.0")]))
    m.on_market(delta(3 * MS + 1, bids=[("100", "3.5")]))
    assert queue(m, BUY, 100) == [("syn", 20), ("us", 10), ("syn", 10), ("syn", 5)]
    # The level falls back to 2.0: the 1.5 that left is the oldest, ahead of us: 0.5 left ahead.
    m.on_market(delta(4 * MS, bids=[("100", "2.0")]))
    assert queue(m, BUY, 100) == [("syn", 5), ("us", 10), ("syn", 10), ("syn", 5)]
    # It falls to 1.5: the last 0.5 ahead of us goes; we are first.
    m.on_market(delta(5 * MS, bids=[("100", "1.5")]))
    assert queue(m, BUY, 100) == [("us", 10), ("syn", 10), ("syn", 5)]
    # A seller of 1.5 at 100 meets us first: all our 1.0 fills (fee 100 * 1.0 * 0.001 = 0.1),
    # then 0.5 of the size behind us. By the back rule this seller did not reach us at all.
    m.on_market(trade(6 * MS, "100", "1.5", SELL))
    assert fills(m.advance(6 * MS)) == [("b", D(100), D("1.0"), D("0.1"), Liquidity.MAKER)]
    assert queue(m, BUY, 100) == [("syn", 5), ("syn", 5)]


def test_by_the_front_rule_a_decrease_with_nothing_ahead_of_us_comes_from_behind_us() -> None:
    """With no synthetic size ahead of our order, the oldest synthetic order is behind it: a
    decrease takes from there, never from ours, and a level whose synthetic size all goes
    (the sim's maker leaving a stale level) keeps ours alone."""
    m = venue(queue=QueueRule.FRONT)
    m.on_market(snapshot(1 * MS, bids=[("99", "1.0")], asks=[("101", "1.0")]))
    m.submit(limit(BUY, "100", "0.5", "b"), 2 * MS)  # a new best bid: nothing ahead
    m.advance(2 * MS)
    m.on_market(delta(3 * MS, bids=[("100", "2.5")]))  # our 0.5 recorded, and 2.0 more behind us
    assert queue(m, BUY, 100) == [("us", 5), ("syn", 25)]
    m.on_market(delta(4 * MS, bids=[("100", "1.5")]))
    assert queue(m, BUY, 100) == [("us", 5), ("syn", 15)]
    m.on_market(delta(5 * MS, bids=[("100", "0")]))
    assert queue(m, BUY, 100) == [("us", 5)]
    assert m.open_orders()[0].filled_size == 0


@pytest.mark.parametrize(
    ("rule", "sizes"), [(QueueRule.FRONT, ["0.5", "0.3", "0.2"]), (QueueRule.BACK, ["1.0"])]
)
def test_by_the_front_rule_a_taker_meets_each_recorded_increase_as_an_order_of_its_own(
    rule: QueueRule, sizes: list[str]
) -> None:
    """A sim maker places one order per recorded increase, and the sim fills a taker one maker
    order at a time: our order sweeping such a level gets one fill per order, as live did (and
    the inspector, re-planning its protection on each fill, the same orders). By the back rule
    the increases join the last synthetic order: one fill."""
    m = venue(queue=rule)
    m.on_market(snapshot(1 * MS, bids=[("99", "1.0")], asks=[("101", "0.5")]))
    m.on_market(delta(2 * MS, asks=[("101", "0.8")]))
    m.on_market(delta(3 * MS, asks=[("101", "1.0")]))
    m.submit(limit(BUY, "101", "1.0", "b"), 4 * MS)
    assert [f[2] for f in fills(m.advance(4 * MS))] == [D(s) for s in sizes]


def test_a_snapshots_increase_joins_the_last_synthetic_order_by_either_rule() -> None:
    """How many orders made a snapshot's increase is not known: one synthetic order, one fill."""
    m = venue(queue=QueueRule.FRONT)
    m.on_market(snapshot(1 * MS, bids=[("99", "1.0")], asks=[("101", "0.5")]))
    m.on_market(snapshot(2 * MS, bids=[("99", "1.0")], asks=[("101", "0.8")]))
    m.on_market(snapshot(3 * MS, bids=[("99", "1.0")], asks=[("101", "1.0")]))
    m.submit(limit(BUY, "101", "1.0", "b"), 4 * MS)
    assert [f[2] for f in fills(m.advance(4 * MS))] == [D("1.0")]


def test_the_recorded_venue_chooses_the_queue_rule() -> None:
    assert queue_rule("sim") is QueueRule.FRONT
    assert queue_rule("binance") is queue_rule("kraken") is queue_rule("") is QueueRule.BACK
    assert set(QUEUE_RULES) == {"sim"}
    assert ReplayedMarket("sim", [BTC], FEES, BALANCES).queue is QueueRule.BACK  # unless it is said


def test_a_snapshot_replaces_the_synthetic_book_and_leaves_our_orders_alone() -> None:
    m = venue()
    m.on_market(snapshot(1 * MS, bids=[("100", "2.0"), ("99", "1.0")], asks=[("101", "1.0")]))
    m.submit(limit(BUY, "99", "0.5", "b"), 2 * MS)
    m.advance(2 * MS)
    m.on_market(snapshot(3 * MS, bids=[("98", "4.0")], asks=[("102", "1.0")]))
    book = m.book(SYMBOL)
    assert book.depth(BUY) == [(99, 5), (98, 40)]  # ours at 99 (the recorded 99 is gone)
    assert book.depth(SELL) == [(102, 10)]
    assert queue(m, BUY, 99) == [("us", 5)]


def test_an_increase_through_our_order_fills_it_with_only_the_new_liquidity() -> None:
    m = venue()
    m.on_market(snapshot(1 * MS, bids=[("100", "1.0")], asks=[("101", "2.0"), ("102", "1.0")]))
    # A buy of 3.0 limited at 101 takes the 2.0 recorded there (taker) and rests 1.0 at 101.
    m.submit(limit(BUY, "101", "3.0", "b"), 2 * MS)
    assert fills(m.advance(2 * MS)) == [("b", D(101), D("2.0"), D("0.404"), Liquidity.TAKER)]
    assert m.book(SYMBOL).best_bid() == 101
    # The recording (without us) shows the 101 asks at 2.5: 0.5 new since the recorded 2.0.
    # The old 2.0 is what we took; only the new 0.5 arrives where our bid waits and trades
    # with it (we are the maker: 101 * 0.5 * 0.001 = 0.0505). The rest is not mirrored while
    # our bid is there.
    m.on_market(delta(3 * MS, asks=[("101", "2.5")]))
    assert fills(m.advance(3 * MS)) == [("b", D(101), D("0.5"), D("0.0505"), Liquidity.MAKER)]
    assert m.book(SYMBOL).depth(SELL) == [(102, 10)]
    # A fresh ask level at 100, below our bid (the market moves through it): all new, so our
    # remaining 0.5 fills at 101 and the rest (0.7 - 0.5) rests at 100.
    m.on_market(delta(4 * MS, bids=[("100", "0")], asks=[("100", "0.7")]))
    assert fills(m.advance(4 * MS)) == [("b", D(101), D("0.5"), D("0.0505"), Liquidity.MAKER)]
    assert m.book(SYMBOL).depth(SELL) == [(100, 2), (102, 10)]
    # Now nothing of ours reaches 101: the next update mirrors the recorded size in full.
    m.on_market(delta(5 * MS, asks=[("101", "2.6")]))
    assert m.book(SYMBOL).depth(SELL) == [(100, 2), (101, 26), (102, 10)]


def test_a_book_moving_up_in_one_delta_never_trades_the_recorded_levels_with_each_other() -> None:
    m = venue()
    m.on_market(snapshot(1 * MS, bids=[("100", "1.0")], asks=[("101", "1.0")]))
    # Bids listed first: were they applied before the asks' removal, the new bid at 101
    # would trade with the old ask at 101.
    m.on_market(delta(2 * MS, bids=[("101", "2.0")], asks=[("101", "0"), ("102", "1.0")]))
    book = m.book(SYMBOL)
    assert book.depth(BUY) == [(101, 20), (100, 10)]
    assert book.depth(SELL) == [(102, 10)]


# ---- latency


@pytest.mark.parametrize(("order_ns", "filled"), [(50 * MS, False), (0, True)])
def test_order_latency_lets_the_price_move_away(order_ns: int, filled: bool) -> None:
    m = venue(Latency(order_ns=order_ns))
    t = 1000 * MS
    m.on_market(snapshot(t - MS, bids=[("100", "1.0")], asks=[("101", "1.0")]))
    m.submit(limit(BUY, "101", "1.0", "b"), t)  # at the ask
    m.on_market(delta(t + 10 * MS, asks=[("101", "0"), ("102", "1.0")]))  # the ask moves up
    reports = m.advance(t + 50 * MS)
    if filled:
        # No latency: the order reached the book at t, before the move, and took the ask.
        assert fills(reports) == [("b", D(101), D("1.0"), D("0.202"), Liquidity.TAKER)]
        assert reports[-1][0] == t
    else:
        # It reached the book at t + 50 ms, after the ask had moved to 102: it rests at 101.
        assert fills(reports) == [] and statuses(reports) == [OrderStatus.OPEN]
        assert reports[0][0] == t + 50 * MS
        assert [o.client_order_id for o in m.open_orders()] == ["b"]
        assert m.book(SYMBOL).best_bid() == 101


def test_an_order_in_flight_is_due_at_its_arrival() -> None:
    m = venue(Latency(order_ns=50 * MS))
    m.on_market(snapshot(0, bids=[("100", "1.0")], asks=[("101", "1.0")]))
    assert m.next_due_ns() is None
    m.submit(limit(BUY, "99", "1.0", "b"), 10 * MS)
    assert m.next_due_ns() == 60 * MS
    assert m.advance(60 * MS - 1) == [] and m.open_orders() == []
    assert statuses(m.advance(60 * MS)) == [OrderStatus.OPEN]
    assert m.next_due_ns() is None


def test_a_fill_is_reported_after_the_report_latency() -> None:
    m = venue(Latency(order_ns=0, report_ns=5 * MS))
    m.on_market(snapshot(0, bids=[("100", "1.0")], asks=[("101", "1.0")]))
    m.submit(limit(SELL, "101", "1.0", "s"), 1 * MS)
    assert m.advance(1 * MS) == []  # the OPEN is on its way back
    assert m.next_due_ns() == 6 * MS
    assert statuses(m.advance(6 * MS)) == [OrderStatus.OPEN]
    # A buyer takes 2.0 at 101 at T = 20 ms: the recorded 1.0 ahead, then our 1.0.
    m.on_market(trade(20 * MS, "101", "2.0", BUY))
    assert m.advance(20 * MS) == []
    assert m.next_due_ns() == 25 * MS
    assert m.advance(25 * MS - 1) == []
    reports = m.advance(25 * MS)
    assert [(at, e.ts_event_ns) for at, e in reports] == [(25 * MS, 20 * MS)]
    assert fills(reports) == [("s", D(101), D("1.0"), D("0.101"), Liquidity.MAKER)]


def test_a_report_reaches_us_when_heard_says_and_never_before_the_one_before_it() -> None:
    """A recorded run hears each execution when the live inspector heard its twin's (`hear`);
    one it has no time for keeps the report latency; the stream's order holds either way."""
    m = venue(Latency(order_ns=0, report_ns=5 * MS))
    heard = {"a": 50 * MS, "c": 2 * MS}  # c: heard live before the model's latency
    m.hear(lambda e: heard.get(e.order.client_order_id) if e.order.status.is_open else None)
    m.on_market(snapshot(0, bids=[("100", "1.0")], asks=[("101", "1.0")]))
    for cid in ("a", "b"):
        m.submit(limit(SELL, "102", "1.0", cid), 1 * MS)
    m.advance(1 * MS)
    m.submit(limit(SELL, "103", "1.0", "c"), 60 * MS)
    reports = m.advance(100 * MS)
    # a when heard (50 ms); b's model time (6 ms) is before it: it waits behind a; c at its own
    # arrival (60 ms), heard "before" it was made.
    assert [(e.order.client_order_id, at) for at, e in reports] == [
        ("a", 50 * MS),
        ("b", 50 * MS),
        ("c", 60 * MS),
    ]


@pytest.mark.parametrize(("trade_at", "cancelled"), [(25 * MS, False), (35 * MS, True)])
def test_a_cancel_racing_a_fill_loses_when_the_fill_comes_first(trade_at: int, cancelled: bool) -> None:
    m = venue(Latency(order_ns=10 * MS))
    m.on_market(snapshot(0, bids=[("99", "1.0")], asks=[("101", "1.0")]))
    m.submit(limit(BUY, "100", "1.0", "b"), 1 * MS)  # alone at 100, the best bid, from 11 ms
    m.cancel("b", 20 * MS)  # reaches the venue at 30 ms
    # A seller takes 1.0 at 99: our bid at 100 is better, so it meets us first.
    m.on_market(trade(trade_at, "99", "1.0", SELL))
    reports = m.advance(40 * MS)
    if cancelled:
        # The cancel arrived at 30 ms, before the trade: it went through 99 only.
        assert statuses(reports) == [OrderStatus.OPEN, OrderStatus.CANCELED]
        assert fills(reports) == []
    else:
        # The fill at 25 ms won: the cancel arriving at 30 ms finds the order filled and
        # changes nothing.
        assert statuses(reports) == [OrderStatus.OPEN, OrderStatus.FILLED]
        assert fills(reports) == [("b", D(100), D("1.0"), D("0.1"), Liquidity.MAKER)]
    assert m.open_orders() == []


def test_an_arrival_at_an_events_time_comes_before_the_event() -> None:
    m = venue(Latency(order_ns=10 * MS))
    m.on_market(snapshot(0, bids=[("100", "1.0")], asks=[("101", "1.0")]))
    m.submit(limit(BUY, "101", "1.0", "b"), 0)  # arrives at 10 ms, as the ask moves away
    m.on_market(delta(10 * MS, asks=[("101", "0"), ("102", "1.0")]))
    assert fills(m.advance(10 * MS)) == [("b", D(101), D("1.0"), D("0.202"), Liquidity.TAKER)]


# ---- refusals, arguments


def test_refused_orders_come_back_rejected_at_report_time() -> None:
    m = venue(Latency(order_ns=1 * MS, report_ns=2 * MS))
    m.on_market(snapshot(0, bids=[("100", "1.0")], asks=[("101", "1.0")]))
    m.submit(limit(BUY, "100", "2000", "rich"), 0)  # 200,000 USDT: funds are short
    m.submit(limit(SELL, "101", "1.0", "ro", reduce_only=True), 0)  # no position to reduce
    m.submit(limit(BUY, "100", "1.05", "odd"), 0)  # not a multiple of the lot size
    assert m.advance(2 * MS) == []
    reports = m.advance(3 * MS)
    assert [(at, e.order.client_order_id, e.order.status, e.order.order_id) for at, e in reports] == [
        (3 * MS, "rich", OrderStatus.REJECTED, ""),
        (3 * MS, "ro", OrderStatus.REJECTED, ""),
        (3 * MS, "odd", OrderStatus.REJECTED, ""),
    ]
    reasons = [e.order.status_reason for _, e in reports]
    assert "USDT" in reasons[0] and "reduce_only" in reasons[1] and "lot size" in reasons[2]
    m.cancel("rich", 5 * MS)  # a cancel of a refused order changes nothing
    assert m.advance(10 * MS) == []
    assert {b.asset: b.total for b in m.balances()} == BALANCES


def test_an_order_without_a_client_id_gets_one_and_cancel_needs_a_known_one() -> None:
    m = venue()
    cid = m.submit(limit(BUY, "99", "1.0", ""), 0)
    assert cid == "bt-1"
    assert [e.order.client_order_id for _, e in m.advance(0)] == ["bt-1"]
    with pytest.raises(NotFound):
        m.cancel("never-sent", 0)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"order_ns": -1}, "order_ns"), ({"report_ns": -5}, "report_ns"), ({"order_ns": 1.5}, "order_ns")],
)
def test_latency_is_validated(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        Latency(**kwargs)  # type: ignore[arg-type]
    assert [v.field for v in caught.value.violations] == [field]


def test_events_of_other_symbols_are_ignored_and_another_venue_is_refused() -> None:
    m = venue()
    other = snapshot(0, bids=[("100", "1.0")], asks=[("101", "1.0")])
    other.symbol = "ETH/USDT"
    m.on_market(other)
    assert m.book(SYMBOL).depth(BUY) == []
    elsewhere = snapshot(0, bids=[("100", "1.0")], asks=[])
    elsewhere.venue = "binance"
    with pytest.raises(InvalidArgument):
        m.on_market(elsewhere)


@pytest.mark.parametrize(
    ("bids", "asks", "field"),
    [
        ((), (("101", "1e3"),), "asks[0].size"),  # not a plain decimal
        ((("100", "1.0"), ("99", "0.05")), (), "bids[1].size"),  # not a multiple of the lot
        ((("99.5", "1.0"),), (), "bids[0].price"),  # not a multiple of the tick
        ((("0", "1.0"),), (), "bids[0].price"),
        ((("100", "-1.0"),), (), "bids[0].size"),
    ],
)
def test_a_malformed_recorded_level_names_its_field(bids: Levels, asks: Levels, field: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        venue().on_market(delta(0, bids, asks))
    assert [v.field for v in caught.value.violations] == [field]


# ---- determinism


def _session(m: ReplayedMarket) -> list[tuple[int, Execution]]:
    out: list[tuple[int, Execution]] = []
    m.on_market(snapshot(0, bids=[("100", "2.0"), ("99", "3.0")], asks=[("101", "1.5"), ("102", "2.0")]))
    m.submit(limit(BUY, "100", "1.0", "a"), 1 * MS)
    m.submit(limit(SELL, "102", "0.5", "b"), 1 * MS)
    m.submit(market(BUY, "1.0", "c"), 2 * MS)
    events = [
        trade(3 * MS, "100", "2.5", SELL),
        delta(4 * MS, bids=[("100", "0.5"), ("98", "1.0")], asks=[("101", "2.0")]),
        trade(5 * MS, "102", "1.0", BUY),
        delta(6 * MS, asks=[("102", "1.2"), ("103", "4.0")]),
        trade(7 * MS, "102", "2.0", BUY),
    ]
    for i, event in enumerate(events):
        if i == 2:
            m.cancel("a", 5 * MS)
        out.extend(m.advance(event.ts_event_ns))
        m.on_market(event)
    out.extend(m.advance(100 * MS))
    return out


def test_the_same_events_give_the_same_executions() -> None:
    first = _session(venue(Latency(order_ns=1 * MS, report_ns=2 * MS)))
    second = _session(venue(Latency(order_ns=1 * MS, report_ns=2 * MS)))
    assert first == second
    # Worked out: c (arrives 3 ms) takes 1.0 of the 1.5 at 101. The 3 ms seller of 2.5 at 100
    # takes the 2.0 ahead of a, then 0.5 of a. The 5 ms buyer at 102 finds the 101 asks stale
    # (dropped) and takes 1.0 of the 2.0 ahead of b; a's cancel lands at 6 ms (0.5 cancelled);
    # the 6 ms delta adds 0.2 behind b at 102; the 7 ms buyer of 2.0 at 102 takes the 1.0
    # left ahead of b, then all of b's 0.5.
    assert fills(first) == [
        ("c", D(101), D("1.0"), D("0.202"), Liquidity.TAKER),
        ("a", D(100), D("0.5"), D("0.05"), Liquidity.MAKER),
        ("b", D(102), D("0.5"), D("0.051"), Liquidity.MAKER),
    ]
    assert [(e.order.client_order_id, e.order.status) for _, e in first if e.fill is None] == [
        ("a", OrderStatus.OPEN),
        ("b", OrderStatus.OPEN),
        ("c", OrderStatus.OPEN),
        ("a", OrderStatus.CANCELED),
    ]


# ---- the mirror against a plain copy of the recorded book

# Recorded levels in ticks and lots (0 lots: the level is removed); bids and asks never cross.
bid_levels = st.dictionaries(st.integers(90, 99), st.integers(0, 30), max_size=6)
ask_levels = st.dictionaries(st.integers(101, 110), st.integers(0, 30), max_size=6)
recorded_events = st.lists(
    st.one_of(
        st.tuples(st.just("snapshot"), bid_levels, ask_levels),
        st.tuples(st.just("delta"), bid_levels, ask_levels),
        st.tuples(st.just("trade"), st.integers(90, 110), st.integers(1, 40)),
    ),
    max_size=40,
)


def _wire(levels: dict[int, int]) -> list[tuple[str, str]]:
    return [(str(price), str(D(lots) / 10)) for price, lots in levels.items()]


@settings(max_examples=300, deadline=None)
@given(recorded_events)
def test_without_our_orders_the_book_mirrors_every_recorded_update(events: list[tuple[object, ...]]) -> None:
    """Each snapshot leaves the book equal to it; each delta leaves the levels it lists at the
    recorded sizes (a trade in between may have consumed other levels: the recording's next
    update of them sets them again)."""
    m = venue()
    for ts, (kind, a, b) in enumerate(events):
        if isinstance(a, int) and isinstance(b, int):  # a trade: price, lots
            m.on_market(trade(ts, str(a), str(D(b) / 10), BUY if a > 100 else SELL))
            continue
        assert isinstance(a, dict) and isinstance(b, dict)
        if kind == "snapshot":
            m.on_market(snapshot(ts, _wire(a), _wire(b)))
            book = m.book(SYMBOL)  # as it is now (the venue may keep levels off it until asked)
            assert book.depth(BUY) == sorted(((p, n) for p, n in a.items() if n), reverse=True)
            assert book.depth(SELL) == sorted((p, n) for p, n in b.items() if n)
        else:
            m.on_market(delta(ts, _wire(a), _wire(b)))
            for side, levels in ((BUY, a), (SELL, b)):
                for price, lots in levels.items():
                    assert m.book(SYMBOL).level_total(side, price) == lots
    book = m.book(SYMBOL)
    assert len(book) == 0 or all(
        o.owner == SYNTHETIC
        for side in (BUY, SELL)
        for p, _ in book.depth(side)
        for o in book.orders_at(side, p)
    )
    assert m.advance(len(events)) == [] and m.balances() == venue().balances()


our_orders = st.lists(
    st.tuples(st.sampled_from([BUY, SELL]), st.one_of(st.none(), st.integers(95, 105)), st.integers(1, 20)),
    max_size=8,
)


@settings(max_examples=200, deadline=None)
@given(recorded_events, our_orders, st.integers(0, 3), st.integers(0, 3), st.sampled_from(QueueRule))
def test_with_our_orders_the_synthetic_side_of_each_updated_level_is_the_recorded_size(
    events: list[tuple[object, ...]],
    orders: list[tuple[Side, int | None, int]],
    order_ns: int,
    report_ns: int,
    queue: QueueRule,
) -> None:
    """After a snapshot or delta, each level it lists holds exactly the recorded size of
    synthetic liquidity, unless our orders on the other side reach that price (before or
    after: then what traded with them is missing from it). Our orders fill no more than their
    size, and a second run of the same events and orders reports the same executions."""

    def run() -> list[tuple[int, Execution]]:
        m = venue(Latency(order_ns=order_ns, report_ns=report_ns), queue)
        reports: list[tuple[int, Execution]] = []
        for ts, (kind, a, b) in enumerate(events):
            if ts < len(orders):
                side, price, lots = orders[ts]
                size = str(D(lots) / 10)
                cid = f"o{ts}"
                request = market(side, size, cid) if price is None else limit(side, str(price), size, cid)
                m.submit(request, ts)
            reports.extend(m.advance(ts))
            if isinstance(a, int) and isinstance(b, int):
                m.on_market(trade(ts, str(a), str(D(b) / 10), BUY if a > 100 else SELL))
                continue
            assert isinstance(a, dict) and isinstance(b, dict)
            book = m.book(SYMBOL)
            reached = {
                (s, p) for s, levels in ((BUY, a), (SELL, b)) for p in levels if book.would_cross(s, p)
            }
            m.on_market((snapshot if kind == "snapshot" else delta)(ts, _wire(a), _wire(b)))
            book = m.book(SYMBOL)
            for side, levels in ((BUY, a), (SELL, b)):
                for price, lots in levels.items():
                    if (side, price) not in reached and not book.would_cross(side, price):
                        synthetic = [o.remaining for o in book.orders_at(side, price) if o.owner == SYNTHETIC]
                        assert sum(synthetic) == lots
        reports.extend(m.advance(len(events) + 10))
        return reports

    first = run()
    assert first == run()
    filled: dict[str, D] = {}
    for _, execution in first:
        if execution.fill is not None:
            cid = execution.order.client_order_id
            filled[cid] = filled.get(cid, D(0)) + execution.fill.size
            assert filled[cid] <= execution.order.size
            assert execution.order.filled_size == filled[cid]


# ---- price and size strings to ticks and lots


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(["1", "0.1", "0.01", "0.5", "0.00001", "10", "0.010", "25"]),
    st.from_regex(r"-?[0-9]{0,12}(\.[0-9]{0,9})?(e3)?", fullmatch=True),
)
def test_a_string_read_without_decimal_is_what_the_exchange_reads(step: str, text: str) -> None:
    """The replayed book reads most strings by integer arithmetic; whatever it takes, it takes
    as the exchange's scale would, and what it leaves (None) the exchange reads or refuses."""
    fast = Units(D(step)).of(text)
    try:
        exact: int | None = _Scale(D(step), "price").units(D(text))
    except Exception:  # not a number, or not a multiple of the step
        exact = None
    if fast is not None:
        assert fast == exact
        assert text[0].isdigit() and "e" not in text
    elif exact is not None and "-" not in text and "e" not in text and text[-1] != "." and text[0] != ".":
        raise AssertionError(f"{text!r} in steps of {step} left to the slow way")


# ---- the levels kept off the engine's book against every event applied to it


def _queues(book: OrderBook) -> list[tuple[Side, int, list[tuple[int, int, int]]]]:
    """Every level's queue, front first: (engine order id, owner, lots)."""
    return [
        (side, price, [(o.order_id, o.owner, o.remaining) for o in book.orders_at(side, price)])
        for side in (BUY, SELL)
        for price, _ in book.depth(side)
    ]


def _stop(side: Side, trigger: int, lots: int, cid: str) -> OrderRequest:
    size = str(D(lots) / 10)
    return OrderRequest(
        SYMBOL, side, OrderType.STOP_MARKET, D(size), None, TimeInForce.GTC, trigger_price=D(trigger),
        client_order_id=cid,
    )  # fmt: skip


def _deferred_step(ts: int, kind: object, a: object, b: object, c: object) -> object:
    """A recorded event, an order of ours, a cancel ("cancel", index of an earlier step) or a
    read of the book ("read")."""
    if kind in ("limit", "stop"):
        assert isinstance(a, Side) and isinstance(b, int) and isinstance(c, int)
        if kind == "stop":
            return _stop(a, b, c, f"o{ts}")
        return limit(a, str(b), str(D(c) / 10), f"o{ts}")
    if kind == "trade":
        assert isinstance(a, int) and isinstance(b, int)
        taker = None if c else (BUY if a > 100 else SELL)
        return trade(ts, str(a), str(D(b) / 10), taker)
    if kind in ("cancel", "read"):
        return (kind, a)
    assert isinstance(a, dict) and isinstance(b, dict)
    return (snapshot if kind == "snapshot" else delta)(ts, _wire(a), _wire(b))


def _run_deferred(
    steps: Sequence[object], latency: Latency, defer: bool, queue: QueueRule = QueueRule.BACK
) -> list[object]:
    """The executions reported, the best prices after each step (read without settling the
    book), the whole book at each read and at the end."""
    m = ReplayedMarket("sim", [BTC], FEES, BALANCES, latency, defer=defer, queue=queue)
    out: list[object] = []
    for ts, step in enumerate(steps):
        if isinstance(step, OrderRequest):
            m.submit(step, ts)
        elif isinstance(step, tuple) and step[0] == "cancel":
            with_id = f"o{step[1] % (ts + 1)}"
            if with_id in m._client_ids:
                m.cancel(with_id, ts)
        elif isinstance(step, tuple):
            out.append(_queues(m.book(SYMBOL)))
        out.extend(m.advance(ts))
        if isinstance(step, md.MarketEvent):
            m.on_market(step)
        out.append(m.best(SYMBOL))
        out.append(m.top(SYMBOL))
    out.extend(m.advance(len(steps) + 10))
    out.append(_queues(m.book(SYMBOL)))
    return out


# Books that often keep a level's size from one snapshot to the next, and at times cross.
steady_bids = st.dictionaries(st.integers(96, 101), st.sampled_from([0, 10, 20]), max_size=5)
steady_asks = st.dictionaries(st.integers(99, 104), st.sampled_from([0, 10, 20]), max_size=5)
deferred_steps = st.lists(
    st.one_of(
        st.tuples(st.just("snapshot"), bid_levels, ask_levels, st.none()),
        st.tuples(st.just("snapshot"), bid_levels, ask_levels, st.none()),
        st.tuples(st.just("snapshot"), steady_bids, steady_asks, st.none()),
        st.tuples(st.just("delta"), steady_bids, steady_asks, st.none()),
        st.tuples(st.just("trade"), st.integers(88, 112), st.integers(1, 40), st.booleans()),
        st.tuples(st.just("trade"), st.integers(88, 112), st.integers(1, 40), st.just(False)),
        st.tuples(st.just("limit"), st.sampled_from([BUY, SELL]), st.integers(85, 115), st.integers(1, 30)),
        st.tuples(st.just("limit"), st.just(BUY), st.integers(80, 89), st.integers(1, 30)),  # away
        st.tuples(st.just("limit"), st.just(SELL), st.integers(111, 120), st.integers(1, 30)),
        st.tuples(st.just("stop"), st.sampled_from([BUY, SELL]), st.integers(90, 110), st.integers(1, 10)),
        st.tuples(st.just("cancel"), st.integers(0, 60), st.none(), st.none()),
        st.tuples(st.just("read"), st.none(), st.none(), st.none()),
    ),
    min_size=10,
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(deferred_steps, st.integers(0, 3), st.integers(0, 3), st.sampled_from(QueueRule))
def test_levels_kept_off_the_book_give_what_every_event_applied_to_it_gives(
    steps: list[tuple[object, ...]], order_ns: int, report_ns: int, queue: QueueRule
) -> None:
    """The same events, orders, cancels and reads through the venue keeping the levels our
    orders cannot meet off the engine's book, and through one applying every event at once:
    the same executions (order ids, trade ids, fills, fees), the same best prices after every
    step, and every level's queue (engine ids included) the same at every read and at the end."""
    made = [_deferred_step(ts, *step) for ts, step in enumerate(steps)]
    latency = Latency(order_ns=order_ns, report_ns=report_ns)
    assert _run_deferred(made, latency, True, queue) == _run_deferred(made, latency, False, queue)


def test_a_deferred_snapshot_takes_the_ids_the_engine_would_and_a_read_puts_its_levels_back() -> None:
    """Two snapshots kept off the book take an id for each level they raise or add; our order
    placed after them gets the id it gets when both are applied at once, and reading the book
    shows their levels with their ids (a new level, and a raised one: its last order re-queued
    under a new id; a reduced one keeps its id)."""
    books: list[object] = []
    for defer in (True, False):
        m = ReplayedMarket("sim", [BTC], FEES, BALANCES, defer=defer)
        m.on_market(snapshot(1, bids=[("100", "2.0"), ("99", "1.0")], asks=[("101", "1.0")]))
        m.on_market(snapshot(2, bids=[("100", "3.0"), ("99", "0.5")], asks=[("102", "1.0")]))
        assert m.best(SYMBOL) == (100, 102)
        books.append(_queues(m.book(SYMBOL)))
        m.submit(limit(BUY, "98", "1.0", "b"), 3)
        (report,) = m.advance(3)
        books.append(report[1].order.order_id)
    assert (
        books[0]
        == books[2]
        == [
            (BUY, 100, [(4, SYNTHETIC, 30)]),
            (BUY, 99, [(2, SYNTHETIC, 5)]),
            (SELL, 102, [(5, SYNTHETIC, 10)]),
        ]
    )
    assert books[1] == books[3] == "6"


@pytest.mark.parametrize(
    ("cancel_ns", "ended"),
    [(3 * MS - 1, OrderStatus.CANCELED), (3 * MS, OrderStatus.CANCELED), (3 * MS + 1, OrderStatus.FILLED)],
)
def test_a_stop_raced_by_its_cancel_ends_as_the_recorded_arrivals_order_them(
    cancel_ns: int, ended: OrderStatus
) -> None:
    """A stop triggering while its cancel is on its way (the inspector resizing or withdrawing
    it): the cancel's recorded arrival decides it, as the live venue's clock did. Arriving by the
    triggering trade's time, it takes the stop out of the book first; a nanosecond later, the
    trade has triggered it and it sells, the cancel finding it filled."""
    m = venue()
    m.on_market(snapshot(1 * MS, bids=[("99", "1.0"), ("98", "5.0")], asks=[("101", "1.0")]))
    stop = OrderRequest(
        SYMBOL, SELL, OrderType.STOP_MARKET, D("1.0"), None, TimeInForce.IOC,
        client_order_id="stop", trigger_price=D("99"),
    )  # fmt: skip
    m.submit(stop, 2 * MS)
    assert statuses(m.advance(2 * MS)) == [OrderStatus.OPEN]
    m.cancel("stop", 2 * MS, cancel_ns)  # sent before the trade, reaching the venue at cancel_ns
    m.on_market(trade(3 * MS, "99", "0.5", SELL))
    reports = m.advance(4 * MS)
    assert statuses(reports)[-1] is ended
    sold = fills(reports)
    assert sold == ([] if ended is OrderStatus.CANCELED else [
        ("stop", D(99), D("0.5"), D("0.099"), Liquidity.TAKER),
        ("stop", D(98), D("0.5"), D("0.098"), Liquidity.TAKER),
    ])  # fmt: skip
    assert m.order("stop").status is ended
