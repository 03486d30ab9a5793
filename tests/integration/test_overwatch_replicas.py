"""Two Overwatch processes of one timeframe on a real Redis (docs/overview.md, "Replicas"): one
leads and publishes, the other stands by (its RPCs UNAVAILABLE naming the leader). The leader is
frozen while a new regime's bars arrive, then killed with -9: the standby takes the lease within
its ttl, warms on the whole history, and publishes the one change the bus was owed (the regime
the dead leader never published), so regimes.1m holds each change once, in order."""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import grpc
import pytest
import redis.asyncio as aioredis

from tests.integration.mesh import redis_db
from tests.integration.redis_server import redis_url
from tests.integration.support import CALL_TIMEOUT_S, TEST_TOKEN, until
from tests.integration.test_leader_failover import check_standby, failover, start_replica
from tests.overwatch_support import bus_bar
from trademesh.core.domain.model import Candle
from trademesh.core.domain.regime import Regime
from trademesh.core.overwatch.synthetic import SeriesSpec, segments_bars
from trademesh.core.platform.bus.codec import decode, encode_bars
from trademesh.core.platform.config.env import REDIS_URL, TOKEN
from trademesh.core.platform.replicas.leader import leader_lease_name
from trademesh.core.platform.service.process import ServiceProcess
from trademesh.overwatch.v1 import overwatch_pb2 as ow
from trademesh.overwatch.v1 import overwatch_pb2_grpc as ow_grpc

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # kills and a failover
__all__ = ["redis_url"]  # the fixture, for pytest

AUTH = (("authorization", f"Bearer {TEST_TOKEN}"),)
TTL_MS = 900
TAKEOVER_S = TTL_MS / 1000 * 4 / 3 + 1.5  # a ttl and a renewal period, and a busy machine's slack
WARM, THIN, VOLATILE = 150, 60, 80  # bars of the calm warm-up, then of each regime (seed 7)
SYMBOL = "BTC/USDT"


async def _publish(client: Any, venue: str, candles: Sequence[Candle]) -> None:
    for start in range(0, len(candles), 20):
        chunk = [bus_bar(c, venue) for c in candles[start : start + 20]]
        await client.xadd(f"bars.{{{venue}}}.1m", {b"d": encode_bars("bars/test", chunk)})


async def _on_bus(client: Any) -> list[tuple[int, int]]:
    """(previous, regime) of every change on regimes.1m, oldest first."""
    entries = await client.xrange("regimes.1m")
    return [(c.previous, c.regime) for _, fields in entries for c in decode(fields).regimes.changes]


async def _board(process: ServiceProcess) -> ow.Board:
    async with grpc.aio.insecure_channel(process.address) as channel:
        reply = await ow_grpc.OverwatchStub(channel).GetBoard(
            ow.GetBoardRequest(), metadata=AUTH, timeout=CALL_TIMEOUT_S
        )
    board: ow.Board = reply.board
    return board


async def test_the_standby_takes_over_and_publishes_the_change_the_dead_leader_owed(
    redis_url: str, tmp_path: Path
) -> None:
    venue = "t" + uuid.uuid4().hex[:10]
    order = [Regime.THIN_LIQUIDITY, Regime.HIGH_VOLATILITY]
    bars = segments_bars(order, [THIN, VOLATILE], seed=7, spec=SeriesSpec(warmup_bars=WARM)).bars
    async with redis_db(redis_url) as bus_url:
        client: Any = aioredis.Redis.from_url(bus_url)
        args = ["overwatch", "--port", "0", "--metrics-port", "-1", "--discover-s", "0.2"]
        args += ["--leader-ttl-ms", str(TTL_MS)]
        env = {**os.environ, TOKEN: TEST_TOKEN, REDIS_URL: bus_url}
        replicas: list[ServiceProcess] = []
        try:
            await _publish(client, venue, bars[:WARM])
            replicas.append(start_replica(args, env, tmp_path / "overwatch-1.log"))
            replicas.append(start_replica(args, env, tmp_path / "overwatch-2.log"))
            leader, standby = replicas
            assert leader.info["event"] == "serving"
            await check_standby(standby, lambda: _board(standby), leader.process.pid)

            # The leader publishes its warm market's regime (never published), then the thin change.
            first = (ow.REGIME_UNKNOWN, ow.REGIME_RANGE)
            await _publish(client, venue, bars[WARM : WARM + THIN])
            thin = (ow.REGIME_RANGE, ow.REGIME_THIN_LIQUIDITY)
            await until(lambda: _equal(_on_bus(client), [first, thin]), 30, 0.1, "the leader's change")

            # Frozen, it never reads the volatile bars; killed, it never will.
            leader.process.send_signal(signal.SIGSTOP)
            await _publish(client, venue, bars[WARM + THIN :])
            leader.process.kill()
            leader.process.wait()
            lease = leader_lease_name("overwatch", "1m", "{regimes.1m}")
            took, serving = await failover(bus_url, lease, standby, lambda: _board(standby))
            assert took < TAKEOVER_S, f"taken after {took:.2f} s"

            owed = (ow.REGIME_THIN_LIQUIDITY, ow.REGIME_HIGH_VOLATILITY)
            changes = await until(
                lambda: _equal(_on_bus(client), [first, thin, owed]), 30, 0.1, "the owed change"
            )
            assert changes == [first, thin, owed]
            [market] = (await _board(standby)).markets
            assert (market.regime, market.bars) == (ow.REGIME_HIGH_VOLATILITY, len(bars))
            entries = await client.xrange("regimes.1m")
            [last] = decode(entries[-1][1]).regimes.changes
            assert (last.venue, last.symbol, last.since_ns) == (venue, SYMBOL, market.since_ns)
            print(f"overwatch: lease taken {took:.2f} s after the kill, served at {serving:.2f} s")
        finally:
            for replica in replicas:
                if replica.process.poll() is None:
                    await asyncio.to_thread(replica.terminate)
            await client.aclose()


async def _equal(read: Any, wanted: list[tuple[int, int]]) -> list[tuple[int, int]] | None:
    found: list[tuple[int, int]] = await read
    return found if found == wanted else None
