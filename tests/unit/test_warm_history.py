"""Warm-ups' history (trademesh.core.platform.warm_history): without a gateway the venue gives every bar;
a gateway that cannot be reached is said once and not asked again for a while; the venue's bars
are taken from the start only, closed and in range; Overwatch skips the streamed bars history
already gave (trademesh.core.overwatch.history_seed.Seeded)."""

from __future__ import annotations

import logging
import socket

import pytest

from trademesh.common.v1 import common_pb2 as common
from trademesh.core.domain.model import Timeframe
from trademesh.core.overwatch.feed import Read
from trademesh.core.overwatch.history_seed import Seeded
from trademesh.core.platform.warm_history import HeldHistory, bus_bar, first_missing, merged, warm_candles
from trademesh.marketdata.v1 import marketdata_pb2 as md

MINUTE = Timeframe.M1.ns


def _candle(open_ns: int, close: str = "1.5", closed: bool = True) -> md.Candle:
    return md.Candle(
        timeframe=common.TIMEFRAME_1_MINUTE, open_time_ns=open_ns, open=close, high=close, low=close,
        close=close, volume="2", quote_volume="3", trade_count=1, closed=closed,
    )  # fmt: skip


def _nowhere() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{probe.getsockname()[1]}"


async def test_without_a_gateway_the_venue_gives_the_range_closed_bars_only() -> None:
    asked: list[int] = []

    async def venue(after_ns: int) -> list[md.Candle]:
        asked.append(after_ns)
        return [_candle(0), _candle(MINUTE), _candle(2 * MINUTE), _candle(3 * MINUTE, closed=False)]

    for history in (None, HeldHistory(None, "test")):
        got = await warm_candles(history, "sim", "BTC/USDT", Timeframe.M1, MINUTE, 4 * MINUTE, venue)
        assert [c.open_time_ns for c in got] == [MINUTE, 2 * MINUTE]
    assert asked == [MINUTE, MINUTE]


async def test_a_gateway_away_is_said_once_and_not_asked_again_for_a_while(
    caplog: pytest.LogCaptureFixture,
) -> None:
    history = HeldHistory(_nowhere(), "test", metadata=())

    async def venue(after_ns: int) -> list[md.Candle]:
        return [_candle(after_ns)]

    try:
        with caplog.at_level(logging.INFO, logger="trademesh.core.platform.warm_history"):
            for _ in range(3):
                got = await warm_candles(history, "sim", "BTC/USDT", Timeframe.M1, 0, 2 * MINUTE, venue)
                assert [c.open_time_ns for c in got] == [0]
            assert await history.series(Timeframe.M1) is None
    finally:
        await history.close()
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and "UNAVAILABLE" in lines[0] and "warming from the venue" in lines[0], lines


def test_the_venue_is_asked_from_the_first_bar_history_misses_and_fills_only_what_is_not_held() -> None:
    start, end = 10 * MINUTE + 7, 20 * MINUTE  # off the grid: the first bar is 11's
    whole = [_candle(i * MINUTE, "9") for i in range(11, 20)]
    assert first_missing(whole, Timeframe.M1, start, end) == end  # nothing missing
    assert first_missing(whole[:5], Timeframe.M1, start, end) == 16 * MINUTE  # after the last held
    holed = whole[:2] + whole[4:]  # 13 and 14 missing
    assert first_missing(holed, Timeframe.M1, start, end) == 13 * MINUTE
    assert first_missing(whole[3:], Timeframe.M1, start, end) == 11 * MINUTE  # missing at the start
    assert first_missing([], Timeframe.M1, start, end) == 11 * MINUTE
    venue = [_candle(i * MINUTE, "1") for i in range(12, 21)] + [_candle(20 * MINUTE, "1", closed=False)]
    got = merged(holed, venue, 13 * MINUTE, end)
    assert [(c.open_time_ns // MINUTE, c.close) for c in got] == [
        (11, "9"), (12, "9"), (13, "1"), (14, "1"), *((i, "9") for i in range(15, 20)),
    ]  # fmt: skip


def test_overwatch_skips_the_streamed_bars_history_gave() -> None:
    seeded = Seeded(last={("sim", "BTC/USDT"): 5 * MINUTE})
    bars = tuple(bus_bar("sim", "BTC/USDT", _candle(i * MINUTE)) for i in range(4, 8))
    other = (bus_bar("sim", "ETH/USDT", _candle(MINUTE)),)
    reads = [Read("bars.{sim}.1m", "1-0", bars, True), Read("bars.{sim}.1m", "2-0", other, False)]
    after = seeded.after(reads)
    assert [[b.open_time_ns for b in r.bars] for r in after] == [[6 * MINUTE, 7 * MINUTE], [MINUTE]]
    assert [(r.entry_id, r.warm) for r in after] == [("1-0", True), ("2-0", False)]
    only_old = [Read("bars.{sim}.1m", "3-0", bars[:2], False)]
    assert seeded.after(only_old) == []
    assert Seeded().after(reads) == reads
