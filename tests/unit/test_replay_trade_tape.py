"""The stand-ins' shared trade history (trademesh/venues/replay/trades.py): the session's trades in id order,
a made-up past before them that agrees with the made-up 1-minute candles (count, volume, open,
prices within high and low), ids increasing and unique across both, reading forward and backward
from any time or id, nothing after the session, and the rolling day's statistics."""

from __future__ import annotations

import itertools
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from trademesh.venues.replay.candles import CandleHistory, Grid
from trademesh.venues.replay.trades import NS_PER_MS, Print, TradeTape, candle_trades

D = Decimal
MINUTE = 60_000
START = 1_700_000_050_000  # the session: 10 s past a minute, for 3 minutes
END = START + 3 * MINUTE
SESSION = [
    Print(5000, (START + 1_000) * NS_PER_MS, D("100.00"), D("0.5"), buy=True),
    Print(5003, (START + 20_000) * NS_PER_MS, D("101.50"), D("0.25"), buy=False),
    Print(5001, (START + 1_000) * NS_PER_MS + 1, D("100.25"), D("1"), buy=True),  # ids out of order
    Print(5003, (START + 20_000) * NS_PER_MS, D("101.50"), D("0.25"), buy=False),  # pushed twice
    Print(5007, (START + 2 * MINUTE) * NS_PER_MS, D("99.75"), D("2"), buy=False),
]
SESSION_MINUTE = START - 10_000


def tape() -> TradeTape:
    candles = CandleHistory(candle_trades(SESSION), START, END)
    return TradeTape(SESSION, candles)


def test_the_session_is_each_trade_once_in_id_order() -> None:
    found = tape()
    assert [p.id for p in found.session] == [5000, 5001, 5003, 5007]
    assert list(found.forward(from_ns=START * NS_PER_MS)) == found.session
    assert found.first_id == 5000 and found.session_minute == SESSION_MINUTE


def test_a_made_up_minute_agrees_with_its_made_up_candle() -> None:
    found = tape()
    grid = Grid(MINUTE)
    for open_ms in range(SESSION_MINUTE - 30 * MINUTE, SESSION_MINUTE, MINUTE):
        candle = found.candles.candle(grid, open_ms)
        trades = found.minute(open_ms)
        assert candle is not None and candle.made_up
        assert len(trades) == candle.trades and sum(p.size for p in trades) == candle.volume
        assert trades[0].price == candle.open and trades[0].ts_ms == open_ms
        assert all(candle.low <= p.price <= candle.high for p in trades)
        assert all(open_ms <= p.ts_ms < open_ms + MINUTE for p in trades) and all(p.made_up for p in trades)
    assert found.minute(SESSION_MINUTE) == []  # the session's minute is its trades alone


def test_ids_increase_with_time_and_count_back_from_the_session() -> None:
    found = tape()
    before = list(found.backward(to_ns=START * NS_PER_MS - 1))[:200]
    before.reverse()
    assert before[-1].ts_ms < SESSION_MINUTE and before[-1].id < 5000
    both = [*before, *found.session]
    assert all(a.id < b.id and a.ts_ns < b.ts_ns for a, b in itertools.pairwise(both))
    last_minute = found.minute(SESSION_MINUTE - MINUTE)
    assert [p.id for p in last_minute] == list(range(4990, 4990 + len(last_minute)))


def test_the_past_starts_where_ids_would_fall_below_one() -> None:
    found = tape()
    assert found.past_minute == SESSION_MINUTE - 499 * MINUTE  # ids 10 .. 18 the first minute
    oldest = next(found.forward())
    assert oldest.ts_ms == found.past_minute and oldest.id == 10
    assert found.oldest(0, found.past_minute * NS_PER_MS - 1, 10) == []
    # A market without trades counts its ids from the epoch: its past reaches back to 0.
    quiet = TradeTape([], CandleHistory([], START, END, anchor=D("50.0")))
    assert quiet.past_minute == 0 and next(quiet.forward()).ts_ms == 0
    assert quiet.last() is not None and quiet.last().ts_ms < SESSION_MINUTE  # type: ignore[union-attr]


def test_nothing_follows_the_session() -> None:
    found = tape()
    assert found.oldest((END + 1) * NS_PER_MS, 2**62, 10) == []
    assert found.last() == found.session[-1]
    assert found.newest(0, None, 2) == found.session[-2:]


@settings(max_examples=60, deadline=None)
@given(
    back=st.integers(min_value=0, max_value=600 * MINUTE),
    span=st.integers(min_value=0, max_value=30 * MINUTE),
    limit=st.integers(min_value=1, max_value=50),
)
def test_pages_forward_by_id_or_time_and_backward_agree(back: int, span: int, limit: int) -> None:
    found = tape()
    start = (START - back) * NS_PER_MS
    end = start + span * NS_PER_MS
    whole = found.oldest(start, end, 10_000)
    assert whole == list(reversed(list(itertools.takewhile(lambda p: p.ts_ns >= start, found.backward(end)))))
    by_id: list[Print] = []
    cursor = whole[0].id if whole else None
    while cursor is not None:
        page = found.oldest(start, end, limit, from_id=cursor)
        by_id += page
        cursor = page[-1].id + 1 if len(page) == limit else None
    assert by_id == whole
    by_time: list[Print] = []
    at = start
    while True:
        page = found.oldest(at, end, limit)
        by_time += page
        if len(page) < limit:
            break
        at = page[-1].ts_ns + 1
    assert by_time == whole
    newest = found.newest(start, end, limit)
    assert newest == whole[-limit:] if whole else newest == []


def test_an_id_between_two_minutes_reads_on_from_the_next() -> None:
    found = tape()
    minute = found.minute(SESSION_MINUTE - 5 * MINUTE)
    gap = minute[-1].id + 1  # no trade has it (the minute's spare ids)
    assert next(found.forward(from_id=gap)) == found.minute(SESSION_MINUTE - 4 * MINUTE)[0]
    assert next(found.backward(to_id=gap)) == minute[-1]
    assert next(found.forward(from_id=5002)).id == 5003  # inside the session


def test_the_day_counts_the_rolling_24_hours() -> None:
    found = tape()
    day = found.day()
    window = list(found.forward(from_ns=day.open_ns + 1))
    assert day.close_ns == END * NS_PER_MS and day.count == len(window)
    assert day.volume == sum(p.size for p in window) and day.last == D("99.75")
    assert (day.first_id, day.last_id) == (window[0].id, 5007)
    assert day.high == max(p.price for p in window) and day.low == min(p.price for p in window)
    assert day.open == window[0].price and day.vwap == day.notional / day.volume
