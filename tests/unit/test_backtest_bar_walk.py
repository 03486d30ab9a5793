"""The replayed venue's bar walk taken at once (ReplayedMarket._walk, Mirror.walk_ticks,
OffBook.walk) where it meets nothing of ours: the same executions, order and trade ids, levels
and last trade as the walk's visits one by one, on random sessions of bars and orders.

One instrument: BTC/USDT, tick 1, lot 0.1; maker fee 0.1 %, taker fee 0.2 %.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from tests.unit.test_backtest_bar_fills import BTC, FEES, MIN, MS, SYMBOL
from trademesh.core.backtest.market import Latency, ReplayedMarket
from trademesh.core.domain.matching.mirror import Mirror
from trademesh.core.domain.model import (
    Execution,
    OrderRequest,
    OrderType,
    Side,
    TimeInForce,
)

D = Decimal
BUY, SELL = Side.BUY, Side.SELL


def venue(latency_ms: int) -> ReplayedMarket:
    m = ReplayedMarket(
        "sim", [BTC], FEES, {"USDT": D("1000000"), "BTC": D("100")}, Latency(latency_ms * MS, 0)
    )
    m.fill_on_bars([SYMBOL])
    return m


def state(m: ReplayedMarket) -> tuple[object, ...]:
    """What the venue holds, read without settling its book: the ids it has taken, the last
    trade, the levels kept off the book and recorded, the engine's own book, our orders."""
    exchange = m._exchange
    market = exchange._markets[SYMBOL]
    mirror = m._mirrors[SYMBOL]
    off = mirror.off
    book = market.book
    engine = [
        (side, price, [(o.order_id, o.owner, o.remaining) for o in book.orders_at(side, price)])
        for side in (BUY, SELL)
        for price in sorted(book.prices(side))
    ]
    return (
        exchange._last_id, market.trade_seq, market.last_trade, off.active, _levels(off.bids),
        _levels(off.asks), mirror.recorded, engine, m.open_orders(), m.balances(),
    )  # fmt: skip


def _levels(levels: dict[int, list[list[int]]]) -> dict[int, tuple[tuple[int, ...], ...]]:
    """A copy of the levels kept off the book (their queues change in place later)."""
    return {price: tuple(map(tuple, queue)) for price, queue in levels.items()}


def request(rng: random.Random, mid: int, n: int) -> OrderRequest:
    """A random order near `mid`: limits either side, stops, stop limits, market orders."""
    side = rng.choice((BUY, SELL))
    kind = rng.choice(
        (OrderType.LIMIT, OrderType.LIMIT, OrderType.STOP_MARKET, OrderType.STOP_LIMIT, OrderType.MARKET)
    )
    away = rng.choice((1, 2, 3, 5, 10, 20, 40))
    below, above = D(mid - away), D(mid + away)
    price = trigger = None
    if kind is OrderType.LIMIT:
        price = rng.choice((below, above))
    elif kind is OrderType.STOP_MARKET:
        trigger = above if side is BUY else below
    elif kind is OrderType.STOP_LIMIT:
        trigger = above if side is BUY else below
        price = trigger + rng.choice((D(-3), D(0), D(3)))
    tif = TimeInForce.IOC if kind is OrderType.MARKET else TimeInForce.GTC
    size = D(rng.choice(("0.1", "0.5", "1.0")))
    return OrderRequest(SYMBOL, side, kind, size, price, tif, client_order_id=f"o-{n}", trigger_price=trigger)


def bars(rng: random.Random, count: int) -> list[tuple[Decimal, ...]]:
    """A random walk of bars (some gaps, some on the last close, some flat, some off the tick)."""
    out, close = [], 1000.0
    for _ in range(count):
        first = close if rng.random() < 0.5 else close + rng.choice((-3, -1, 1, 2, 15, -15))
        moves = [first + rng.gauss(0, 4) for _ in range(3)]
        high, low, close = max(first, *moves), min(first, *moves), moves[-1]
        if rng.random() < 0.05:
            high = low = close = first  # a flat bar
        out.append(tuple(D(f"{max(p, 5.0):.1f}") for p in (first, high, low, close)))
    return out


def session(
    seed: int, *, at_once: bool, check: Callable[[ReplayedMarket], None] | None = None
) -> tuple[list[tuple[object, ...]], int, int]:
    """A session's state after every bar, and how many prices were walked at once and visited
    one by one; `check` is called after each bar, and after each order or cancel sent."""
    rng = random.Random(seed)
    m = venue(rng.choice((0, 20)))
    walked = visited = 0
    mirror: Mirror = m._mirrors[SYMBOL]
    walk_ticks, visit = mirror.walk_ticks, m._visit

    def counted(prices: list[int], depth: int, lots: int) -> bool:
        nonlocal walked
        done = walk_ticks(prices, depth, lots)
        walked += len(prices) if done else 0
        return done

    def visiting(*args: Any) -> None:
        nonlocal visited
        visited += 1
        visit(*args)

    mirror.walk_ticks = counted  # type: ignore[method-assign]
    m._visit = visiting  # type: ignore[method-assign,assignment]
    if not at_once:
        m._walk = lambda *args: False  # type: ignore[method-assign]
    states: list[tuple[object, ...]] = []
    n, submitted = 0, []
    for i, prices in enumerate(bars(rng, 400)):
        close_ns = (i + 1) * MIN
        m.on_bar(SYMBOL, prices, close_ns)
        reports = m.advance(close_ns)
        states.append((tuple(reports), state(m)))
        if check is not None:
            check(m)
        if rng.random() < 0.12:
            n += 1
            submitted.append(m.submit(request(rng, int(prices[3]), n), close_ns))
        if submitted and rng.random() < 0.06:
            m.cancel(rng.choice(submitted), close_ns)
        if check is not None:
            m.advance(close_ns + 30 * MS)  # what was sent reaches the venue (or waits for a bar)
            check(m)
        if rng.random() < 0.01:
            m.book(SYMBOL)  # a read puts the levels back into the engine
    return states, walked, visited


@pytest.mark.parametrize("seed", range(12))
def test_a_bar_walked_at_once_leaves_what_its_visits_leave(seed: int) -> None:
    at_once, walked, visited = session(seed, at_once=True)
    one_by_one, none, every = session(seed, at_once=False)
    assert none == 0
    # Walked at once mostly, not always (orders met on the way): the same prices in all.
    assert walked > 2 * visited > 0
    assert walked + visited == every
    for bar, (new, old) in enumerate(zip(at_once, one_by_one, strict=True)):
        assert new == old, f"bar {bar}"


def test_the_walk_at_once_is_taken_with_our_orders_resting_out_of_the_bars_reach() -> None:
    def walk(at_once: bool) -> tuple[list[bool], list[tuple[int, Execution]], tuple[object, ...]]:
        m = venue(0)
        m.on_bar(SYMBOL, (D(100), D(102), D(99), D(101)), MIN)
        for cid, side, kind, price, trigger in (
            ("bid", BUY, OrderType.LIMIT, D(90), None),
            ("ask", SELL, OrderType.LIMIT, D(110), None),
            ("stop", SELL, OrderType.STOP_MARKET, None, D(95)),
        ):
            placed = OrderRequest(
                SYMBOL, side, kind, D(1), price, TimeInForce.GTC, client_order_id=cid, trigger_price=trigger
            )
            m.submit(placed, MIN)
        m.on_bar(SYMBOL, (D(101), D(103), D(100), D(102)), 2 * MIN)  # placed at its open
        assert m._exchange.book(SYMBOL).prices(BUY) == [90]  # ours on the engine's book
        if not at_once:
            m._walk = lambda *args: False  # type: ignore[method-assign]
        mirror, taken = m._mirrors[SYMBOL], []
        walk_ticks = mirror.walk_ticks

        def noted(prices: list[int], depth: int, lots: int) -> bool:
            taken.append(walk_ticks(prices, depth, lots))
            return taken[-1]

        mirror.walk_ticks = noted  # type: ignore[method-assign]
        m.on_bar(SYMBOL, (D(102), D(108), D(97), D(104)), 3 * MIN)  # nothing of ours reached
        m.on_bar(SYMBOL, (D(104), D(111), D(103), D(105)), 4 * MIN)  # the ask reached
        return taken, m.advance(4 * MIN), state(m)

    taken, reports, after = walk(True)
    # The second bar reaches the ask (104, 103, 111, 105): its open walked at once, then visited
    # up to 111 (the ask filled at 110 on the way), its last leg walked at once.
    assert taken == [True, True, True]
    assert [e.order.client_order_id for _, e in reports if e.fill is not None] == ["ask"]
    assert walk(False)[1:] == (reports, after)


def test_the_holdings_kept_between_changes_are_the_balances_and_positions_digit_for_digit() -> None:
    def same(m: ReplayedMarket) -> None:
        totals, sizes = m.holdings()
        # As text: a total's digits move with a lock (100 + 0 against 90.0 + 10.0), its value not.
        assert [(asset, str(total)) for asset, total in totals] == [
            (b.asset, str(b.total)) for b in m.balances()
        ]
        assert [(symbol, str(size)) for symbol, size in sizes] == [
            (p.symbol, str(p.size)) for p in m.positions()
        ]

    for seed in range(4):
        session(seed, at_once=True, check=same)
