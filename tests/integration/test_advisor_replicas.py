"""Two advisor replicas of one instance (real processes on a real sim, Redis and PostgreSQL; the
deterministic synthesis, no LLM), each its own consumer in the group `advisor` on one `signals`
stream: every signal has exactly one decision on the bus, both replicas decide a share of them,
and nothing stays pending. Then one replica is killed with -9 while it holds signals it read and
had not decided: the survivor takes them over once they sat `--claim-idle-ms` (XAUTOCLAIM) and
decides them and the signals that keep coming, each once, none lost."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import time
from collections import Counter
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis

from tests.integration.mesh import MeshProcesses, redis_db, sim_config
from tests.integration.postgres_server import database_url, fresh_database
from tests.integration.redis_server import redis_url
from tests.integration.support import VENUE_ENV, metric_samples, metrics_page, until
from trademesh.bus.v1 import bus_pb2 as bus
from trademesh.core.platform.bus.codec import FIELD, decode
from trademesh.core.platform.bus.names import DECISIONS, SIGNALS
from trademesh.core.platform.service.process import ServiceProcess, start_service
from trademesh.core.recorder.migrate import migrate
from trademesh.signal.v1 import signal_pb2 as sig

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # real processes and a kill
__all__ = ["database_url", "fresh_database", "redis_url"]  # fixtures, for pytest

GROUP = "advisor"
CONSUMERS = ("replica-1", "replica-2")  # two replicas on one host need names of their own
CLAIM_IDLE_MS = 1000
SHARED = 40  # signals while both replicas run
AFTER_KILL = 20  # signals published after the kill
PACE_S = 0.01  # a signal every 10 ms: a stream, not one burst
# The dead replica's entries are taken once they sat the claim time, by a scan every half of it
# (between the survivor's reads, which block for 0.5 s at most); the rest is a busy machine's
# slack (the deciding, the test's polling).
TAKEOVER_S = CLAIM_IDLE_MS / 1000 * 1.5 + 0.5 + 1.5
WAIT_S = 30.0


def _entry(signal_id: str) -> dict[bytes, bytes]:
    now = time.time_ns()
    envelope = bus.Envelope(source="test", ts_publish_ns=now)
    made = sig.Signal(
        signal_id=signal_id, venue="sim", symbol="BTC/USDT", direction=sig.DIRECTION_LONG,
        conviction="0.7", score="0.7", threshold="0.5", strategy_id="replicas",
        ts_signal_ns=now, ts_event_ns=now,
    )  # fmt: skip
    envelope.signals.signals.append(made)
    return {FIELD: envelope.SerializeToString()}


async def _decided(client: Any) -> Counter[str]:
    """How many decisions of each signal the bus holds."""
    found: Counter[str] = Counter()
    for _, fields in await client.xrange(DECISIONS):
        found.update(d.signal_id for d in decode(fields).decisions.decisions)
    return found


async def _pending(client: Any, consumer: str | None = None) -> list[str]:
    """The ids of the `signals` entries pending in the group (of one consumer's, if given)."""
    rows = await client.xpending_range(SIGNALS, GROUP, "-", "+", 1000, consumername=consumer)
    return [_text(r["message_id"]) for r in rows]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


async def _published_by(replica: ServiceProcess) -> float:
    """Decisions the replica published (its trademesh_advisor_decisions_total, every outcome)."""
    page = await metrics_page(int(replica.info["metrics_port"]))
    return sum(metric_samples(page, "trademesh_advisor_decisions_total").values())


async def _migrate(database: str) -> None:
    """The recorder's tables, which the context reads (bars: none here)."""
    connection = await asyncpg.connect(database)
    try:
        await migrate(connection)
    finally:
        await connection.close()


async def _all_decided(client: Any, ids: list[str]) -> Counter[str] | None:
    decided = await _decided(client)
    done = all(decided[i] for i in ids) and not await _pending(client)
    return decided if done else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _start_sim(stack: contextlib.ExitStack, directory: Path, port: int) -> ServiceProcess:
    config = sim_config(directory, 20, 50)
    log = stack.enter_context((directory / "sim.log").open("w"))
    return start_service(
        ["venue", "sim", "--port", str(port), "--metrics-port", "-1", "--config", str(config)],
        env=VENUE_ENV,
        stderr=log,
    )


class _Publisher:
    """Signals at PACE_S until `stop`, then `after` more."""

    def __init__(self, client: Any, prefix: str) -> None:
        self.client = client
        self.prefix = prefix
        self.ids: list[str] = []

    async def publish(self, count: int) -> None:
        for _ in range(count):
            await self.one()
            await asyncio.sleep(PACE_S)

    async def one(self) -> None:
        signal_id = f"{self.prefix}-{len(self.ids):04d}"
        await self.client.xadd(SIGNALS, _entry(signal_id))
        self.ids.append(signal_id)

    async def until_set(self, stop: asyncio.Event, after: int) -> None:
        while not stop.is_set():
            await self.one()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), PACE_S)
        await self.publish(after)


async def _readers_blocked(client: Any) -> bool | None:
    """True once both replicas wait on the bus (a blocking XREADGROUP each, on the test's db)."""
    db = str(client.connection_pool.connection_kwargs.get("db", 0))
    clients = await client.client_list(_type="normal")
    blocked = [
        c for c in clients if c.get("cmd") == "xreadgroup" and "b" in c.get("flags", "") and c.get("db") == db
    ]
    return True if len(blocked) >= 2 else None


async def _kill_holding(victim: ServiceProcess, consumer: str, client: Any) -> list[str]:
    """Kill -9 the victim while it holds entries it read and has not decided: frozen (SIGSTOP)
    while it waits on the bus, the next signals come to it and stay pending under its name, and
    it is killed so. A freeze that caught none (its read ended first) is undone and tried again.
    The ids of the entries it left."""
    pid = victim.process.pid
    for _ in range(20):
        await until(lambda: _readers_blocked(client), 10, 0.005, "both replicas waiting on the bus")
        os.kill(pid, signal.SIGSTOP)
        deadline = time.monotonic() + 0.5
        while time.monotonic() < deadline:
            held = await _pending(client, consumer)
            if held:
                victim.process.send_signal(signal.SIGKILL)  # stopped or not, it ends here
                victim.process.wait()
                return held
            await asyncio.sleep(0.005)
        os.kill(pid, signal.SIGCONT)
    raise AssertionError(f"{consumer} never held a signal when frozen")


async def test_two_replicas_decide_each_signal_once_and_the_survivor_takes_over_a_killed_ones(
    tmp_path: Path, redis_url: str, fresh_database: str
) -> None:
    started = time.monotonic()
    async with contextlib.AsyncExitStack() as stack:
        url = await stack.enter_async_context(redis_db(redis_url))
        files = stack.enter_context(contextlib.ExitStack())
        mesh = MeshProcesses(tmp_path, url, fresh_database)
        stack.push_async_callback(mesh.stop_all)
        # The sim and the replicas start at once (the sim on a port chosen first: the replicas
        # reach it only when a signal comes, after all three serve).
        port = _free_port()
        venue = ("--venue", f"sim=127.0.0.1:{port}", "--claim-idle-ms", str(CLAIM_IDLE_MS))
        migrating = asyncio.create_task(_migrate(fresh_database))
        sim_start = asyncio.to_thread(_start_sim, files, tmp_path, port)
        starts = [
            asyncio.to_thread(mesh.start, "advisor", *venue, "--metrics-port", "0", "--consumer", name)
            for name in CONSUMERS
        ]
        results = await asyncio.gather(sim_start, *starts, return_exceptions=True)
        if isinstance(results[0], ServiceProcess):
            stack.push_async_callback(asyncio.to_thread, results[0].terminate)
        await migrating
        failed = [r for r in results if isinstance(r, BaseException)]
        if failed:
            raise failed[0]
        replicas = [r for r in results[1:] if isinstance(r, ServiceProcess)]
        client: Any = aioredis.Redis.from_url(url)
        stack.push_async_callback(client.aclose)
        ready_s = time.monotonic() - started

        # Both replicas: each signal decided once, by one or the other.
        shared = _Publisher(client, "shared")
        await shared.publish(SHARED)
        decided = await until(lambda: _all_decided(client, shared.ids), WAIT_S, 0.05, "the signals decided")
        assert {i: decided[i] for i in shared.ids} == dict.fromkeys(shared.ids, 1)
        # The group hands each read to one waiting consumer: with the signals spread over time
        # and both waiting, each gets some (Redis promises no split; a replica busy at every
        # signal would get none, which these two, idle between signals, are not).
        shares = [await _published_by(r) for r in replicas]
        assert sum(shares) == SHARED and all(shares), shares
        consumers = {_text(c["name"]) for c in await client.xinfo_consumers(SIGNALS, GROUP)}
        assert consumers == set(CONSUMERS)

        # Replica 2 killed while it holds signals; they keep coming.
        victim, survivor = replicas[1], replicas[0]
        later = _Publisher(client, "later")
        killed = asyncio.Event()
        publishing = asyncio.create_task(later.until_set(killed, AFTER_KILL))
        try:
            left = await _kill_holding(victim, CONSUMERS[1], client)
            killed_at = time.monotonic()
            killed.set()
            left_signals = [
                s.signal_id
                for i in left
                for _, fields in await client.xrange(SIGNALS, i, i)
                for s in decode(fields).signals.signals
            ]

            async def taken_over() -> bool | None:
                decided = await _decided(client)
                gone = not await _pending(client, CONSUMERS[1])
                return True if gone and all(decided[s] for s in left_signals) else None

            await until(taken_over, WAIT_S, 0.02, f"{CONSUMERS[1]}'s signals taken over")
            takeover_s = time.monotonic() - killed_at
        finally:
            killed.set()
            await publishing
        ids = shared.ids + later.ids
        decided = await until(lambda: _all_decided(client, ids), WAIT_S, 0.05, "every signal decided")
        assert {i: decided[i] for i in ids} == dict.fromkeys(ids, 1), "a signal decided twice or never"
        assert set(decided) == set(ids)
        assert int((await client.xpending(SIGNALS, GROUP))["pending"]) == 0
        assert survivor.process.poll() is None
        assert takeover_s <= TAKEOVER_S, f"taken over {takeover_s:.2f} s after the kill"
        print(
            f"replicas ready in {ready_s:.1f} s; {SHARED} signals shared {shares[0]:.0f}/{shares[1]:.0f}; "
            f"{len(left)} entries ({', '.join(left_signals)}) of the killed replica decided by the "
            f"survivor {takeover_s:.2f} s after the kill (claim idle {CLAIM_IDLE_MS} ms); "
            f"{len(later.ids)} signals published from the freeze on, each decided once; "
            f"{time.monotonic() - started:.1f} s in all"
        )
