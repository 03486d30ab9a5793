"""`trademesh bars` on a real sim venue's trade stream: bars equal a group-by of the trades, the
first bars of each symbol are repaired from the venue, and kill -9 at any moment changes nothing."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from tests.integration.bars_support import (
    BusTape,
    Fields,
    Key,
    SimTape,
    Trade,
    bar_fields,
    bars_positions,
    closed_keys,
    group_by,
    read_bars,
    scope,
    start_bars,
    synthetic,
    venue_candles,
    wait_closed_bars,
)
from tests.integration.redis_server import redis_url
from tests.integration.support import Venue, until
from trademesh.bus.v1 import bus_pb2 as pb
from trademesh.common.v1 import common_pb2 as common
from trademesh.core.domain.model import Timeframe

pytestmark = pytest.mark.integration
__all__ = ["redis_url", "scope"]  # fixtures, for pytest

S = 1_000_000_000
SYMBOLS = ["BTC/USDT", "ETH/USDT", "SOL/USDT"]


async def test_bars_of_a_live_sim_stream_equal_a_group_by_of_its_trades(
    venue: Venue, scope: tuple[aioredis.Redis, str], redis_url: str, tmp_path: Path
) -> None:
    redis, name = scope
    after = await bars_positions(redis, name)
    bars = start_bars(tmp_path, redis_url, f"md.{{{name}}}.trades", {name: venue.address})
    tape = SimTape(venue.stubs(), BusTape(redis, name), SYMBOLS)
    try:
        tape.start()
        await asyncio.sleep(5)
        await tape.stop()
        live, expected = await wait_closed_bars(redis, tape.bus, after)
        assert len(expected) > 10 and all(len(versions) == 1 for versions in live.values())
        assert {key: versions[0] for key, versions in live.items()} == expected
        for symbol in SYMBOLS:
            await _live_seconds_equal_the_venues_candles(tape, symbol, live)
            await _first_second_is_repaired_from_the_venue(tape, symbol, after)
    finally:
        bars.stop()


async def _live_seconds_equal_the_venues_candles(
    tape: SimTape, symbol: str, live: dict[tuple[str, Timeframe, int], list[Fields]]
) -> None:
    """Built from the venue's complete trade stream, a 1s bar is the venue's own 1s candle."""
    seconds = sorted(k[2] for k in live if k[:2] == (symbol, Timeframe.S1))
    complete = seconds[1:]  # the tape began inside the first
    candles = await venue_candles(tape.stubs, symbol, Timeframe.S1, complete[0], complete[-1] + S)
    assert len(complete) >= 3 and [c.open_time_ns for c in candles] == complete
    for candle in candles:
        assert live[(symbol, Timeframe.S1, candle.open_time_ns)] == [bar_fields(candle)]


async def _first_second_is_repaired_from_the_venue(
    tape: SimTape, symbol: str, after: dict[Timeframe, str]
) -> None:
    """The tape began inside that second: its bar is a seam, rebuilt from the venue's 1s candle."""
    first = min(t.ts for t in tape.bus.published if t.symbol == symbol)
    second = first - first % S

    async def repaired() -> list[pb.Bar] | None:
        bars = await read_bars(tape.bus.redis, tape.bus.venue, after)
        key = (symbol, second, common.TIMEFRAME_1_SECOND)
        found = [b for b in bars if b.repaired and (b.symbol, b.open_time_ns, b.timeframe) == key]
        return found or None

    (bar,) = await until(repaired, 10, what=f"the repaired first second of {symbol}")
    (candle,) = await venue_candles(tape.stubs, symbol, Timeframe.S1, second, second + S)
    assert candle.closed and bar_fields(bar) == bar_fields(candle)


@pytest.mark.slow  # a long fault test: not in the fast tier
async def test_kill_9_mid_stream_then_restart_publishes_every_bar_once_and_right(
    venue: Venue, scope: tuple[aioredis.Redis, str], redis_url: str, tmp_path: Path
) -> None:
    redis, name = scope
    after = await bars_positions(redis, name)
    # A restarted bars process waits out its killed predecessor's stream leases: a short ttl, so
    # each restart resumes while the tapes still run (the kills land mid-stream).
    streams, venues = f"md.{{{name}-*}}.trades", {f"{name}-sim": venue.address}
    bars = start_bars(tmp_path, redis_url, streams, venues, "--lease-ttl-ms", "1000")
    sim = SimTape(venue.stubs(), BusTape(redis, f"{name}-sim"), SYMBOLS)
    # 16 hours of made-up trades across a week's end, Monday 00:00 UTC (bars of every timeframe
    # close), fed while the process is killed and restarted.
    start = Timeframe.W1.open_time_ns(1_700_000_000 * S) - 10 * 3600 * S
    made_up = BusTape(redis, f"{name}-syn")
    trades = synthetic(["AAA/USDT", "BBB/USDT"], start, 12_000, 10 * S, seed=11)
    feeding = asyncio.create_task(_feed(made_up, trades, per_entry=100, seconds=6.0))
    try:
        sim.start()
        rng, progress = random.Random(), []
        for _ in range(3):
            await asyncio.sleep(rng.uniform(0.5, 2.0))
            bars.kill()
            progress.append(await _progress(redis, made_up.stream))
            await asyncio.to_thread(bars.start)  # the tapes go on meanwhile
        # The sim's tape goes on for 2 s after the last restart, and the made-up one to its end;
        # then until the sim's holds more than 20 closed bars (the restarts are quick now: its
        # tape was 18 bars once, too few to say much).
        await asyncio.gather(feeding, asyncio.sleep(2))

        async def enough() -> bool | None:
            published = sim.bus.published
            return True if len(closed_keys(group_by(published), published)) > 20 else None

        await until(enough, 60, 0.2, "more than 20 closed bars of the sim's tape")
        assert any(0 < done < len(trades) // 100 for done in progress), f"no kill mid-stream: {progress}"
        await sim.stop()
        closed: dict[str, dict[Key, Fields]] = {}
        for tape in (sim.bus, made_up):
            live, expected = await wait_closed_bars(redis, tape, after, 60)
            closed[tape.venue] = expected
            assert [key for key, versions in live.items() if len(versions) > 1] == [], "published twice"
            assert {key: versions[0] for key, versions in live.items()} == expected
            assert len(expected) > 20
        # The made-up tape's closed bars (closed_keys(group_by(trades), trades): it published them all).
        assert made_up.published == trades
        made_up_timeframes = {key[1] for key in closed[made_up.venue]}
        assert made_up_timeframes == set(Timeframe), "bars of every timeframe were closed"
    finally:
        bars.stop()


async def _feed(tape: BusTape, trades: list[Trade], per_entry: int, seconds: float) -> None:
    entries = range(0, len(trades), per_entry)
    for index in entries:
        await tape.publish(trades[index : index + per_entry])
        await asyncio.sleep(seconds / len(entries))


async def _progress(redis: aioredis.Redis, stream: str) -> int:
    """Entries of the stream the bars group has acknowledged (its work committed)."""
    for group in await redis.xinfo_groups(stream):
        if group["name"] == b"bars":
            return int(group["entries-read"] or 0) - int(group["pending"])
    return 0
