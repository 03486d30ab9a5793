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

from tests.integration.bars_support import (
    BusTape,
    Trade,
    bar_fields,
    bars_positions,
    metric_total,
    read_bars,
    scope,
    start_bars,
    venue_candles,
    wait_closed_bars,
)
from tests.integration.redis_server import redis_url
from tests.integration.support import Stubs, VenueFactory, until
from trademesh.bus.v1 import bus_pb2 as pb
from trademesh.core.bars.timeframes import TO_PB
from trademesh.core.domain.model import Timeframe
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


# A sim that played three minutes of its market before it opened (trademesh/venues/sim/venue.py,
# history_s): its candles of those minutes are closed, the venue's history a gap is repaired from.
HISTORY = "history_s = 180\n"
TRADES_PER_S = 10
GAP_S = (20, 25)  # seconds into the gap's minute: no trade between them (the trades lost)


def _made_up_tape(symbols: list[str], lead_in: int, gap_minute: int) -> list[Trade]:
    """TRADES_PER_S trades a second per symbol, stamped (bars go by event time) from 10 s before
    the lead-in minute's end to 2 s after the gap minute's (which closes its 1m bar), none in GAP_S."""
    step = S // TRADES_PER_S
    since, resumed = (gap_minute + seconds * S for seconds in GAP_S)
    stamps = [*range(lead_in + 50 * S, since + 1, step), *range(resumed + step, gap_minute + 62 * S, step)]
    return [
        Trade(symbol, ts + j, str(i + 1), f"{65000 + i % 97}.5", "0.01")
        for i, ts in enumerate(stamps)
        for j, symbol in enumerate(symbols)
    ]


@pytest.mark.slow  # a long fault test: not in the fast tier
async def test_a_gap_is_replaced_by_the_venues_candles_at_1s_and_1m_flagged_repaired(
    fresh_venue: VenueFactory, scope: tuple[aioredis.Redis, str], redis_url: str, tmp_path: Path
) -> None:
    """The tape's trades are stamped inside the venue's history: its bars, 1m too, close by event
    time as soon as they are read, and the venue's candles they are repaired from are closed."""
    redis, name = scope
    venue = fresh_venue(HISTORY)
    stubs = venue.stubs()
    history = await venue_candles(stubs, SYMBOLS[0], Timeframe.M1, time.time_ns() - 300 * S, time.time_ns())
    # The gap is in the history's second whole minute (its first may have begun before the history
    # did), the tape begins in the minute before: the seam of a symbol's first trade, repaired
    # too, stays out of the gap's minute.
    assert len(history) >= 3 and history[2].closed, "the venue has closed candles of two whole minutes"
    lead_in, gap_minute = history[1].open_time_ns, history[2].open_time_ns
    resumed = gap_minute + GAP_S[1] * S
    trades = _made_up_tape(SYMBOLS, lead_in, gap_minute)
    before = [t for t in trades if t.ts < resumed]
    after_gap = trades[len(before) :]
    after = await bars_positions(redis, name)
    tape = BusTape(redis, name)
    await tape.publish(before)
    gaps = {symbol: (max(t.ts for t in before if t.symbol == symbol), resumed) for symbol in SYMBOLS}
    for symbol, (since, _) in gaps.items():
        await tape.gap(symbol, since, resumed)  # as ingest marks the trades a reconnect lost
    await tape.publish(after_gap)
    # Started on the whole tape: its stream is there to find at once, and read from its start.
    bars = start_bars(tmp_path, redis_url, f"md.{{{name}}}.trades", {name: venue.address})
    try:
        # Every bar the tape closes was published (its 1m bars too): the live bars.
        published, _ = await wait_closed_bars(redis, tape, after)
        live = {(symbol, second) for symbol, timeframe, second in published if timeframe is Timeframe.S1}
        for symbol in SYMBOLS:
            since, resumed = gaps[symbol]
            span = (since, max(resumed, min(t.ts for t in after_gap if t.symbol == symbol)))
            seconds = await repaired_like_the_venue(redis, stubs, name, after, symbol, Timeframe.S1, span)
            assert any((symbol, second) not in live for second in seconds), "a second lost whole is filled"
            await repaired_like_the_venue(redis, stubs, name, after, symbol, Timeframe.M1, span)
    finally:
        bars.stop()


@pytest.mark.slow  # a long fault test: not in the fast tier
async def test_an_unreachable_venue_is_retried_with_backoff_while_live_bars_go_on(
    fresh_venue: VenueFactory, scope: tuple[aioredis.Redis, str], redis_url: str, tmp_path: Path
) -> None:
    redis, name = scope
    target = fresh_venue()
    after = await bars_positions(redis, name)
    tape = BusTape(redis, name)
    feeding = asyncio.create_task(_feed_now(tape, "BTC/USDT"))
    # Started once the tape's stream is there: found at once, not at the next look for new ones.
    await until(lambda: _some(tape.published), 10, what="the tape's first trade")
    venues = {name: target.address}
    bars = start_bars(tmp_path, redis_url, f"md.{{{name}}}.trades", venues, "--repair-timeout-ms", "300")
    process = target.service.process
    try:
        await until(lambda: _live_bars(redis, name, after, 0), 30, 0.2, what="live bars of the tape")
        process.send_signal(signal.SIGSTOP)
        stopped_ns = time.time_ns()
        since = tape.published[-1].ts
        await tape.gap("BTC/USDT", since, stopped_ns)

        async def meanwhile() -> tuple[list[pb.Bar], float] | None:
            """Live bars after the stop, and the repairs tried and failed, once there are both."""
            live = await _live_bars(redis, name, after, stopped_ns + S)
            failures = metric_total(await bars.metrics(), "trademesh_bars_repair_failures_total", name)
            return (live, failures) if live and failures >= 1 else None

        live_meanwhile, failures = await until(meanwhile, 30, 0.2, what="live bars and a failed repair")
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


async def _live_bars(
    redis: aioredis.Redis, venue: str, after: dict[Timeframe, str], since_ns: int
) -> list[pb.Bar] | None:
    """The live (not repaired) bars of the venue opened after since_ns; None while there are none."""
    found = [b for b in await read_bars(redis, venue, after) if not b.repaired and b.open_time_ns > since_ns]
    return found or None


async def _some(trades: list[Trade]) -> bool | None:
    return True if trades else None
