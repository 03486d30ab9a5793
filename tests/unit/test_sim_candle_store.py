"""The sim's closed candles in fixed-capacity int64 columns (trademesh/venues/sim/candle_store.py).

A 2-hour soak saw the sim grow 4.71 MB/h: its six hours of 1s candles were a deque of
dataclasses, about 300 bytes each. The ring takes its memory at start and keeps the same
answers: append order, the same ranges, exact values beyond int64.
"""

from __future__ import annotations

import gc
import random
import tracemalloc
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal

import pytest

from trademesh.core.domain.model import Candle, Timeframe
from trademesh.venues.sim.candle_store import CandleRing
from trademesh.venues.sim.candles import CandleBook, IntCandle

D = Decimal
TICK, LOT = D("0.01"), D("0.001")
T0 = 1_767_225_600 * 10**9
S = 10**9
INT64_MAX = 2**63 - 1
EVERYTHING = (0, INT64_MAX)


def row(t: int, *values: int) -> tuple[int, ...]:
    return (t, *values)


def times(rows: list[tuple[int, ...]]) -> list[int]:
    return [r[0] for r in rows]


def ignore(timeframe: Timeframe, candle: IntCandle) -> None:
    pass


# ---- the ring


def test_a_full_ring_drops_its_oldest_rows_and_keeps_the_rest_in_append_order() -> None:
    ring = CandleRing(3, 5)
    for t in range(12):
        ring.append(row(t, 10 * t, 100 * t))
    assert len(ring) == 5
    assert ring.between(*EVERYTHING) == [row(t, 10 * t, 100 * t) for t in range(7, 12)]


def test_a_ring_not_yet_full_holds_every_row() -> None:
    ring = CandleRing(2, 5)
    assert ring.between(*EVERYTHING) == []
    for t in (3, 4):
        ring.append(row(t, t))
    assert ring.between(*EVERYTHING) == [(3, 3), (4, 4)]


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (45, 75, [50, 60, 70]),  # across the slot where the ring wrapped
        (0, 45, [40]),  # the oldest kept; 10 .. 30 were dropped
        (40, 41, [40]),
        (80, 81, [80]),  # the newest
        (0, 80, [40, 50, 60, 70]),  # the end is excluded
        (81, 100, []),
        (0, 40, []),
    ],
)
def test_a_range_across_the_wrap_is_the_rows_inside_it(start: int, end: int, expected: list[int]) -> None:
    ring = CandleRing(2, 5)
    for t in range(10, 90, 10):  # 8 rows in 5 slots: the newest 3 in the first slots
        ring.append(row(t, -t))
    assert ring.between(start, end) == [(t, -t) for t in expected]


def test_rows_out_of_time_order_are_found_in_append_order_until_they_leave_the_ring() -> None:
    ring = CandleRing(1, 4)
    for t in (10, 30, 20, 40, 50):
        ring.append(row(t))
    assert times(ring.between(15, 35)) == [30, 20]  # as appended, not sorted
    ring.append(row(60))  # 30 leaves: the rows kept are in time order again
    assert times(ring.between(0, 65)) == [20, 40, 50, 60]
    assert times(ring.between(15, 45)) == [20, 40]
    ring.append(row(70))
    assert times(ring.between(45, 65)) == [50, 60]


@pytest.mark.parametrize("seed", range(20))
def test_every_range_is_what_a_bounded_deque_would_give(seed: int) -> None:
    rng = random.Random(seed)
    capacity = rng.choice([1, 2, 7, 50])
    ring, kept = CandleRing(2, capacity), deque[tuple[int, ...]](maxlen=capacity)
    t = 0
    for _ in range(rng.randint(0, 300)):
        t += rng.choice([0, 1, 1, 5])
        late = t - rng.randint(1, 20) if rng.random() < 0.05 else t  # now and then a late row
        values = row(late, rng.randint(-(2**70), 2**70) if rng.random() < 0.1 else rng.randint(0, 99))
        ring.append(values)
        kept.append(values)
        start = rng.randint(-5, t + 5)
        end = start + rng.randint(0, 30)
        assert ring.between(start, end) == [r for r in kept if start <= r[0] < end]
    assert ring.between(*EVERYTHING) == list(kept)


def test_values_beyond_int64_come_back_exact() -> None:
    ring = CandleRing(3, 4)
    big = [row(1, 2**63, 5), row(2, -(2**63) - 1, 2**200), row(3, INT64_MAX, -(2**63))]
    for values in big:
        ring.append(values)
    assert ring.between(*EVERYTHING) == big
    assert ring.between(2, 3) == [big[1]]


def test_a_slot_that_held_an_exact_row_holds_the_new_row_once_overwritten() -> None:
    ring = CandleRing(2, 3)
    ring.append(row(1, 2**64))
    for t in range(2, 6):  # 4 more rows in 3 slots: the exact row's slot is reused
        ring.append(row(t, t))
    assert ring.between(*EVERYTHING) == [(3, 3), (4, 4), (5, 5)]


def test_an_open_time_outside_int64_is_refused_and_the_ring_is_unchanged() -> None:
    ring = CandleRing(2, 3)
    ring.append(row(1, 1))
    with pytest.raises(OverflowError):
        ring.append(row(2**63, 2))
    assert ring.between(*EVERYTHING) == [(1, 1)]


def test_a_row_of_the_wrong_width_is_refused() -> None:
    with pytest.raises(ValueError, match="width"):
        CandleRing(3, 2).append((1, 2))


# ---- memory


@contextmanager
def traced() -> Iterator[Callable[[], int]]:
    gc.collect()
    tracemalloc.start()

    def now() -> int:
        gc.collect()
        return tracemalloc.get_traced_memory()[0]

    try:
        yield now
    finally:
        tracemalloc.stop()


def fill(ring: CandleRing, first: int, count: int) -> None:
    for i in range(first, first + count):
        price, lots = 6_500_000 + i, 1234 + i
        ring.append((T0 + i * S, price, price + 100, price - 100, price + 50, lots, price * lots, 7 + i % 5))


def test_a_full_ring_takes_at_most_100_bytes_a_candle() -> None:
    with traced() as now:
        base = now()
        ring = CandleRing(8, 20_000)
        fill(ring, 0, 20_000)
        used = now() - base
    assert len(ring) == 20_000
    assert used / 20_000 <= 100, f"{used / 20_000:.0f} bytes a candle"


def test_a_full_ring_does_not_grow_as_more_candles_come() -> None:
    ring = CandleRing(8, 5_000)
    with traced() as now:
        fill(ring, 0, 6_000)  # past its capacity
        full = now()
        fill(ring, 6_000, 5_000)  # another capacity's worth
        later = now()
    assert abs(later - full) <= 1_000, f"{later - full} bytes after 5,000 more candles"


def test_a_sim_symbols_1s_history_does_not_grow_memory_as_it_fills() -> None:
    # The deque of dataclasses grew about 300 bytes a stored 1s candle here.
    book = CandleBook(TICK, LOT)
    with traced() as now:
        for i in range(100):
            book.add_trade(T0 + i * S, 6_500_000 + i, 1234 + i, ignore)
        base = now()
        for i in range(100, 20_100):
            book.add_trade(T0 + i * S, 6_500_000 + i, 1234 + i, ignore)
        grown = now() - base
    assert grown / 20_000 <= 100, f"{grown / 20_000:.0f} bytes a stored 1s candle"


# ---- the book's history over its rings


Trade = tuple[int, int, int]  # ts_ns, price ticks, lots


def expected(trades: list[Trade], timeframe: Timeframe, closed: bool) -> Candle:
    prices = [p for _, p, _ in trades]
    return Candle(
        timeframe=timeframe,
        open_time_ns=timeframe.open_time_ns(trades[0][0]),
        open=prices[0] * TICK,
        high=max(prices) * TICK,
        low=min(prices) * TICK,
        close=prices[-1] * TICK,
        volume=sum(q for _, _, q in trades) * LOT,
        quote_volume=sum(p * q for _, p, q in trades) * TICK * LOT,
        trade_count=len(trades),
        closed=closed,
    )


def by_interval(trades: list[Trade], timeframe: Timeframe) -> dict[int, list[Trade]]:
    grouped: dict[int, list[Trade]] = {}
    for trade in trades:
        grouped.setdefault(timeframe.open_time_ns(trade[0]), []).append(trade)
    return grouped


def book_of(trades: list[Trade], s1_entries: int, m1_entries: int) -> CandleBook:
    book = CandleBook(TICK, LOT, s1_entries=s1_entries, m1_entries=m1_entries)
    for trade in trades:
        book.add_trade(*trade, ignore)
    return book


def test_the_1s_history_after_the_wrap_is_the_newest_closed_seconds_then_the_open_one() -> None:
    trades = [(T0 + i * S // 2, 6_500_000 + (i * 7) % 11, 1 + i % 3) for i in range(60)]  # 30 s
    book = book_of(trades, s1_entries=10, m1_entries=5)
    seconds = list(by_interval(trades, Timeframe.S1).values())
    want = [expected(t, Timeframe.S1, closed=True) for t in seconds[-11:-1]]
    want.append(expected(seconds[-1], Timeframe.S1, closed=False))
    assert book.history(Timeframe.S1, *EVERYTHING, limit=1000) == want
    assert book.history(Timeframe.S1, *EVERYTHING, limit=3) == want[:3]
    middle = want[4].open_time_ns
    assert book.history(Timeframe.S1, middle, middle + 3 * S, limit=1000) == want[4:7]


def test_larger_timeframes_are_regrouped_from_the_1m_candles_kept_after_the_wrap() -> None:
    trades = [(T0 + i * 20 * S, 6_500_000 + (i * 13) % 17, 1 + i % 4) for i in range(60)]  # 20 min
    book = book_of(trades, s1_entries=10, m1_entries=7)
    minutes = list(by_interval(trades, Timeframe.M1).values())
    kept = [t for minute in minutes[-8:-1] for t in minute]  # the 7 closed minutes kept
    fives = by_interval(trades, Timeframe.M5)
    last_five = max(fives)
    want = [expected(t, Timeframe.M5, closed=True) for start, t in by_interval(kept, Timeframe.M5).items()
            if start != last_five]  # fmt: skip
    want.append(expected(fives[last_five], Timeframe.M5, closed=False))  # the open 5m candle, whole
    assert book.history(Timeframe.M5, *EVERYTHING, limit=1000) == want


def test_a_notional_beyond_int64_is_exact_in_the_history() -> None:
    price, lots = 2**62 + 3, 2**10 + 1  # a single trade's notional is about 2**72
    trades = [(T0 + i * S, price + i, lots) for i in range(8)] + [(T0 + 400 * S, 1, 1)]
    book = book_of(trades, s1_entries=4, m1_entries=4)
    seconds = book.history(Timeframe.S1, *EVERYTHING, limit=1000)
    assert [c.quote_volume for c in seconds] == [(price + i) * lots * TICK * LOT for i in range(4, 8)] + [
        TICK * LOT
    ]
    # The first 5m candle is regrouped from the kept 1m candle of the 8 big trades.
    first, now_open = book.history(Timeframe.M5, *EVERYTHING, limit=1000)
    assert first.quote_volume == sum((price + i) * lots for i in range(8)) * TICK * LOT
    assert (first.closed, first.trade_count, now_open.closed) == (True, 8, False)
