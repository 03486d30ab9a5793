"""Gap repair by a real `trademesh bars` process from a real sim venue's candles: the bars of a
gap are replaced by the venue's (flagged), at 1s and 1m; an unreachable venue is retried while
live bars go on."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from core.bars.timeframes import TO_PB
from core.foundations.model import Timeframe
from tests.integration.bars_support import (
    LATENESS_NS,
    BusTape,
    SimTape,
    Trade,
    bar_fields,
    bars_positions,
    metric_total,
    read_bars,
    scope,
    start_bars,
    venue_candles,
)
from tests.integration.redis_server import redis_url
from tests.integration.support import Stubs, Venue, VenueFactory, until
from trademesh.bus.v1 import bus_pb2 as pb
from trademesh.marketdata.v1 import marketdata_pb2 as md

pytestmark = pytest.mark.integration
__all__ = ["redis_url", "scope"]  # fixtures, for pytest

S = 1_000_000_000
SYMBOLS = ["BTC/USDT", "ETH/USDT"]


async def repaired_like_the_venue(
    redis: aioredis.Redis,
    stubs: Stubs,
    venue: str,
    after: dict[Timeframe, str],
    symbol: str,
    timeframe: Timeframe,
    span: tuple[int, int],
) -> dict[int, pb.Bar]:
    """Waits for a repaired bar per venue candle of the span's bars; checks each equals its candle."""
    first, last = (timeframe.open_time_ns(ts) for ts in span)

    async def closed_candles() -> list[md.Candle] | None:
        # The span's last bar may still be open at the venue (one just resumed, under load).
        found = await venue_candles(stubs, symbol, timeframe, first, last + timeframe.ns)
        return found if found and all(c.closed for c in found) else None

    candles = await until(closed_candles, 15, what=f"the venue's closed {timeframe.name} candles of {symbol}")

    async def repaired() -> dict[int, pb.Bar] | None:
        found = {b.open_time_ns: b for b in await read_bars(redis, venue, after)
                 if b.repaired and b.symbol == symbol and b.timeframe == TO_PB[timeframe]}  # fmt: skip
        return found if {c.open_time_ns for c in candles} <= found.keys() else None

    found = await until(repaired, 30, what=f"repaired {timeframe.name} bars of {symbol}")
    for candle in candles:
        assert bar_fields(found[candle.open_time_ns]) == bar_fields(candle), f"{symbol} {timeframe.name}"
    return found


async def _room_in_this_minute(seconds: float) -> None:
    """Returns when at least `seconds` are left in the wall clock's minute: a gap that starts now
    ends inside it, so its 1m bar closes soon after."""
    left = 60 - time.time() % 60
    if left < seconds:
        await asyncio.sleep(left + 0.2)


@pytest.mark.slow  # a long fault test: not in the fast tier
async def test_a_gap_is_replaced_by_the_venues_candles_at_1s_and_1m_flagged_repaired(
    venue: Venue, scope: tuple[aioredis.Redis, str], redis_url: str, tmp_path: Path
) -> None:
    redis, name = scope
    after = await bars_positions(redis)
    bars = start_bars(tmp_path, redis_url, f"md.{name}.trades", {name: venue.address})
    stubs = venue.stubs()
    tape = SimTape(stubs, BusTape(redis, name), SYMBOLS)
    try:
        tape.start()
        await asyncio.sleep(2)
        await _room_in_this_minute(6)
        await tape.drop(2.5)
        await until(lambda: _published_after_gap(tape), 10, what="trades after the gap")
        resumed_minute_end = Timeframe.M1.open_time_ns(max(r for _, r in tape.gaps.values())) + 60 * S
        await asyncio.sleep(max(0.0, (resumed_minute_end + LATENESS_NS - time.time_ns()) / 1e9 + 1.0))
        await tape.stop()
        live = {(b.symbol, b.open_time_ns) for b in await read_bars(redis, name, after)
                if not b.repaired and b.timeframe == TO_PB[Timeframe.S1]}  # fmt: skip
        for symbol in SYMBOLS:
            since, resumed = tape.gaps[symbol]
            after_gap = [t.ts for t in tape.bus.published[tape.published_before_gap :] if t.symbol == symbol]
            span = (since, max(resumed, min(after_gap)))
            seconds = await repaired_like_the_venue(redis, stubs, name, after, symbol, Timeframe.S1, span)
            assert any((symbol, second) not in live for second in seconds), "a second lost whole is filled"
            await repaired_like_the_venue(redis, stubs, name, after, symbol, Timeframe.M1, span)
    finally:
        bars.stop()


async def _published_after_gap(tape: SimTape) -> bool | None:
    after_gap = {t.symbol for t in tape.bus.published[tape.published_before_gap :]}
    return True if tape.gaps and after_gap >= set(SYMBOLS) else None


@pytest.mark.slow  # a long fault test: not in the fast tier
async def test_an_unreachable_venue_is_retried_with_backoff_while_live_bars_go_on(
    fresh_venue: VenueFactory, scope: tuple[aioredis.Redis, str], redis_url: str, tmp_path: Path
) -> None:
    redis, name = scope
    target = fresh_venue()
    after = await bars_positions(redis)
    venues = {name: target.address}
    bars = start_bars(tmp_path, redis_url, f"md.{name}.trades", venues, "--repair-timeout-ms", "300")
    tape = BusTape(redis, name)
    feeding = asyncio.create_task(_feed_now(tape, "BTC/USDT"))
    process = target.service.process
    try:
        await asyncio.sleep(2)
        process.send_signal(signal.SIGSTOP)
        stopped_ns = time.time_ns()
        since = tape.published[-1].ts
        await tape.gap("BTC/USDT", since, stopped_ns)
        await asyncio.sleep(4)
        live_meanwhile = [b for b in await read_bars(redis, name, after)
                          if not b.repaired and b.open_time_ns > stopped_ns + S]  # fmt: skip
        failures = metric_total(await bars.metrics(), "trademesh_bars_repair_failures_total", name)
        assert live_meanwhile, "live bars stopped while the venue was unreachable"
        assert failures >= 1, "no repair was tried (and failed) while the venue was stopped"
        # The repair is still owed: it survives a crash, and comes back with no new entry to read.
        feeding.cancel()
        bars.kill()
        bars.start()
    finally:
        process.send_signal(signal.SIGCONT)
    try:
        first_after = min(t.ts for t in tape.published if t.ts > stopped_ns)
        await repaired_like_the_venue(
            redis, target.stubs(), name, after, "BTC/USDT", Timeframe.S1, (since, first_after)
        )
    finally:
        feeding.cancel()
        bars.stop()


async def _feed_now(tape: BusTape, symbol: str) -> None:
    """Made-up trades stamped now, 20 a second, until cancelled."""
    for i in range(1, 10**9):
        await tape.publish([Trade(symbol, time.time_ns(), str(i), f"{65000 + i % 50}", "0.01")])
        await asyncio.sleep(0.05)
