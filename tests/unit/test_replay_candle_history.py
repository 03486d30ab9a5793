"""The stand-ins' shared candle history (trademesh/venues/replay/candles.py): the session's trades in candles,
quiet intervals filled or left out, the made-up past (well formed, continuous, the same every time,
near the session's first price), nothing after the session, and the oldest/newest range picks."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trademesh.venues.replay.candles import CandleHistory, Grid, Trade

D = Decimal
MINUTE = 60_000
START = 1_700_000_050_000  # the session: 10 s past a minute, for 3 minutes
END = START + 3 * MINUTE
TRADES = [
    Trade(START + 1_000, D("100.00"), D("0.5")),
    Trade(START + 20_000, D("101.50"), D("0.25")),
    Trade(START + 30_000, D("99.75"), D("1")),
    # the next minute is quiet
    Trade(START + 2 * MINUTE + 5_000, D("100.25"), D("2")),
]
GRID = Grid(MINUTE)


def history(fill: bool = True) -> CandleHistory:
    return CandleHistory(TRADES, START, END, fill=fill)


def test_grids_open_at_their_offset() -> None:
    week = Grid(7 * 86_400_000, 4 * 86_400_000)  # Mondays
    assert week.floor(0) == -3 * 86_400_000 and week.ceil(1) == 4 * 86_400_000
    assert GRID.floor(START) == START - 10_000 and GRID.ceil(START) == START + 50_000
    assert GRID.ceil(START - 10_000) == START - 10_000


def test_a_session_candle_is_its_trades() -> None:
    candle = history().candle(GRID, GRID.floor(START))
    assert candle is not None and not candle.made_up
    assert (candle.open, candle.high, candle.low, candle.close) == (
        D("100.00"),
        D("101.50"),
        D("99.75"),
        D("99.75"),
    )
    assert (candle.volume, candle.trades) == (D("1.75"), 3)
    assert candle.notional == D("100.00") * D("0.5") + D("101.50") * D("0.25") + D("99.75")
    assert candle.vwap == candle.notional / D("1.75")


def test_a_quiet_interval_is_flat_at_the_last_close_or_absent() -> None:
    quiet = GRID.floor(START) + MINUTE
    filled = history().candle(GRID, quiet)
    assert filled is not None and filled.volume == 0 and filled.trades == 0 and filled.vwap is None
    assert filled.open == filled.high == filled.low == filled.close == D("99.75")
    assert history(fill=False).candle(GRID, quiet) is None
    assert [c.open_ms for c in history(fill=False).newest(GRID, 0, END, 3)] == [
        GRID.floor(START) - MINUTE,
        GRID.floor(START),
        GRID.floor(START) + 2 * MINUTE,
    ]


def test_nothing_follows_the_session() -> None:
    found = history()
    assert found.now_open(GRID) == GRID.floor(END)
    assert found.candle(GRID, GRID.floor(END) + MINUTE) is None
    assert found.oldest(GRID, END + MINUTE, END + 10 * MINUTE, 5) == []
    assert found.newest(GRID, 0, 10**15, 1)[0].open_ms == GRID.floor(END)


def test_oldest_and_newest_pick_their_end_of_a_range_in_order() -> None:
    found = history()
    oldest = found.oldest(GRID, 10 * MINUTE + 1, 20 * MINUTE, 3)
    newest = found.newest(GRID, 10 * MINUTE + 1, 20 * MINUTE, 3)
    assert [c.open_ms for c in oldest] == [11 * MINUTE, 12 * MINUTE, 13 * MINUTE]
    assert [c.open_ms for c in newest] == [18 * MINUTE, 19 * MINUTE, 20 * MINUTE]
    assert found.oldest(GRID, 0, MINUTE, 10) == found.newest(GRID, -5, MINUTE, 10)  # nothing before 0
    assert found.oldest(GRID, 5 * MINUTE, 4 * MINUTE, 10) == []


def test_the_made_up_past_meets_the_session_and_stays_near_its_first_price() -> None:
    found = history()
    before = found.candle(GRID, GRID.floor(START) - MINUTE)
    assert before is not None and before.made_up
    # The wave is at the first price when the session starts: 10 s before, a few ticks off.
    assert abs(before.close - D("100.00")) <= D("0.05")
    day = found.newest(Grid(86_400_000), 0, START, 400)
    assert all(D("99.00") <= c.low and c.high <= D("101.00") for c in day[:-1])  # 0.5 % and a wiggle


@given(
    open_ms=st.integers(min_value=0, max_value=START - 2 * 86_400_000),  # the next one made up too
    step_ms=st.sampled_from([1_000, MINUTE, 15 * MINUTE, 3_600_000, 86_400_000]),
)
def test_a_made_up_candle_is_well_formed_continuous_and_always_the_same(open_ms: int, step_ms: int) -> None:
    grid = Grid(step_ms)
    at = grid.floor(open_ms)
    candle, following = history().candle(grid, at), history().candle(grid, at + step_ms)
    assert candle is not None and following is not None and candle.made_up
    assert 0 < candle.low <= min(candle.open, candle.close) <= max(candle.open, candle.close) <= candle.high
    assert all(price % D("0.01") == 0 for price in (candle.open, candle.high, candle.low, candle.close))
    assert candle.close == following.open
    assert candle.volume > 0 and candle.trades >= 1 and candle.volume % D("0.01") == 0
    assert history().candle(grid, at) == candle


def test_a_market_without_trades_takes_its_anchor() -> None:
    with pytest.raises(ValueError, match="anchor"):
        CandleHistory([], START, END)
    quiet = CandleHistory([], START, END, anchor=D("0.0420"))
    first, now = quiet.candle(GRID, GRID.floor(START)), quiet.candle(GRID, GRID.floor(END))
    assert first is not None and now is not None and now.volume == first.volume == 0
    assert now.close == first.open and quiet.tick == D("0.0001")
