"""Two processes of one single-writer instance, real processes on a real sim, Redis and
PostgreSQL: exactly one leads (the other's RPCs answer UNAVAILABLE "standby: <holder> leads",
its "" NOT_SERVING, its readiness and liveness SERVING); the leader killed with -9, the standby leads
within the lease's ttl and a renewal period, replays, and nothing is done twice: every intent
placed once at the venue (the inspector), every fill posted once (the ledger)."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import grpc
import pytest
import redis.asyncio as aioredis
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.bus_signing import signed
from tests.integration.gateway_support import Processes
from tests.integration.inspector_mesh import AUTH, InspectorMesh, inspector_mesh, intent
from tests.integration.mesh import WARM_HISTORY_S, bus_signals, redis_db
from tests.integration.postgres_server import database_url, new_database
from tests.integration.redis_server import redis_url
from tests.integration.support import CALL_TIMEOUT_S, TEST_TOKEN, TEST_TRADE_TOKEN, until
from tests.integration.test_ledger_process import Books, _posted_fills, _whole, books
from trademesh.bus.v1 import bus_pb2 as bus
from trademesh.core.platform.bus.names import INTENTS, SIGNALS, journal_stream, tagged
from trademesh.core.platform.config.env import DATABASE_URL, REDIS_URL, TOKEN, TRADE_TOKEN
from trademesh.core.platform.replicas.leader import leader_lease_name
from trademesh.core.platform.replicas.lease import lease_key
from trademesh.core.platform.rpc.server import LIVENESS_SERVICE, READINESS_SERVICE
from trademesh.core.platform.service.process import ServiceProcess, start_service
from trademesh.ledger.v1 import ledger_pb2 as lg
from trademesh.ledger.v1 import ledger_pb2_grpc as lg_grpc
from trademesh.patch.v1 import patch_pb2 as patch_pb
from trademesh.patch.v1 import patch_pb2_grpc as patch_grpc
from trademesh.risk.v1 import inspector_pb2 as rk
from trademesh.risk.v1 import inspector_pb2_grpc as rk_grpc
from trademesh.risk.v1 import journal_pb2 as jr

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # whole meshes and kills
__all__ = ["database_url", "redis_url"]  # the fixtures, for pytest

TTL_MS = 1500
LEADER = ("--leader-ttl-ms", str(TTL_MS))
# The standby takes the lease at most a ttl after the leader's last renewal, and asks every
# third of it; the rest is a busy machine's slack.
TAKEOVER_S = TTL_MS / 1000 * 4 / 3 + 1.5
WAIT_S = 60.0
SIZE = Decimal("0.01")


def start_replica(args: list[str], env: dict[str, str], log: Path) -> ServiceProcess:
    """A process that may come up as the leader (its serving line) or a standby (its standby line)."""
    with log.open("w") as log_file:
        return start_service(args, env=env, stderr=log_file, events=("serving", "standby"))


async def health(address: str, service: str) -> int:
    async with grpc.aio.insecure_channel(address) as channel:
        reply = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=service), timeout=CALL_TIMEOUT_S
        )
    status: int = reply.status
    return status


async def check_standby(process: ServiceProcess, call: Any, leader_pid: int) -> None:
    """`process` stands by: alive, ready as a standby, not serving: its RPC refused naming the
    leader."""
    assert process.info["event"] == "standby", process.info
    assert f":{leader_pid}:" in process.info["leader"]
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call()
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    assert (refused.value.details() or "").startswith("standby: "), refused.value.details()
    assert f":{leader_pid}:" in (refused.value.details() or "")
    assert await health(process.address, "") == health_pb2.HealthCheckResponse.NOT_SERVING
    assert await health(process.address, LIVENESS_SERVICE) == health_pb2.HealthCheckResponse.SERVING
    # Ready (able to take over): a Kubernetes rollout waits on it (issue 56).
    assert await health(process.address, READINESS_SERVICE) == health_pb2.HealthCheckResponse.SERVING


async def failover(bus_url: str, lease: str, standby: ServiceProcess, answers: Any) -> tuple[float, float]:
    """From now (the leader just killed): seconds until the standby holds the lease, and until
    its API answers."""
    client: Any = aioredis.Redis.from_url(bus_url)
    killed = time.monotonic()
    try:

        async def taken() -> bool | None:
            value = await client.get(lease_key(lease))
            return True if value is not None and f":{standby.process.pid}:".encode() in value else None

        await until(taken, WAIT_S, 0.02, "the standby to take the lease")
        took = time.monotonic() - killed
    finally:
        await client.aclose()

    async def serving() -> bool | None:
        try:
            await answers()
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.UNAVAILABLE:
                raise
            return None
        return True

    await until(serving, WAIT_S, 0.02, "the new leader to serve")
    return took, time.monotonic() - killed


# ---------------------------------------------------------------- the inspector


def _inspector_replica(mesh: InspectorMesh, log: Path) -> ServiceProcess:
    args = ["inspector", "--port", "0", "--metrics-port", "-1", "--venue", f"sim={mesh.venue.address}"]
    env = {TOKEN: TEST_TOKEN, TRADE_TOKEN: TEST_TRADE_TOKEN, REDIS_URL: mesh.bus}
    return start_replica([*args, *mesh.args], env, log)


async def _publish(client: Any, intent_ids: list[str]) -> None:
    for intent_id in intent_ids:
        envelope = bus.Envelope(source="test")
        envelope.intents.intents.append(intent(intent_id=intent_id, strategy_id="s1", expires_at_ns=2**62))
        await client.xadd(INTENTS, signed(INTENTS, envelope.SerializeToString()))  # as the advisor


async def _journaled_intents(client: Any) -> list[str]:
    """The intent ids the journal holds, one per journaled intent (both leaders' entries)."""
    found = []
    for _, fields in await client.xrange(journal_stream("inspector")):
        entry = jr.JournalEntry.FromString(fields[b"d"])
        if entry.WhichOneof("input") == "intent":
            found.append(entry.intent.intent.intent_id)
    return found


async def _position_is(mesh: InspectorMesh, size: Decimal) -> bool | None:
    return True if await mesh.venue_position() == size else None


async def test_two_inspectors_one_leads_and_the_standby_takes_over_placing_nothing_twice(
    tmp_path: Path, redis_url: str
) -> None:
    async with inspector_mesh(tmp_path, redis_url, *LEADER) as mesh:
        leader = mesh.process
        assert leader is not None and leader.info["event"] == "serving"
        standby = _inspector_replica(mesh, tmp_path / "standby.log")
        try:
            async with grpc.aio.insecure_channel(standby.address) as channel:
                stub = rk_grpc.InspectorStub(channel)

                async def state() -> Any:
                    return await stub.GetRiskState(
                        rk.GetRiskStateRequest(), metadata=AUTH, timeout=CALL_TIMEOUT_S
                    )

                await check_standby(standby, state, leader.process.pid)
                client: Any = aioredis.Redis.from_url(mesh.bus)
                try:
                    first = [f"f-{n}" for n in range(4)]
                    await _publish(client, first)
                    await until(
                        lambda: _position_is(mesh, SIZE * 4), WAIT_S, 0.05, "the first intents placed"
                    )
                    await mesh.stop(kill=True)
                    later = [f"l-{n}" for n in range(4)]
                    await _publish(client, [*first[:2], *later])  # redelivered ones among new ones
                    took, served = await failover(mesh.bus, "leader.inspector.{inspector}", standby, state)
                    print(
                        f"inspector failover: lease taken {took:.2f} s, serving {served:.2f} s after the kill"
                    )
                    assert took < TAKEOVER_S, took
                    await until(
                        lambda: _position_is(mesh, SIZE * 8), WAIT_S, 0.05, "the later intents placed"
                    )
                    await asyncio.sleep(1.0)  # and nothing more comes
                    assert await mesh.venue_position() == SIZE * 8
                    with pytest.raises(grpc.aio.AioRpcError) as again:
                        await stub.SubmitIntent(
                            rk.SubmitIntentRequest(intent=intent(intent_id="f-0")),
                            metadata=AUTH,
                            timeout=CALL_TIMEOUT_S,
                        )
                    assert again.value.code() == grpc.StatusCode.FAILED_PRECONDITION  # the journal replayed
                    events = await stub.ListRiskEvents(
                        rk.ListRiskEventsRequest(page_size=500, action=rk.RISK_ACTION_ALLOW),
                        metadata=AUTH,
                        timeout=CALL_TIMEOUT_S,
                    )
                    allowed = [e.intent_id for e in events.events]
                    assert len(allowed) == len(set(allowed)) and set(allowed) <= {*first, *later}, allowed
                    journaled = await _journaled_intents(client)
                    assert sorted(journaled) == sorted([*first, *later]), journaled  # each once
                finally:
                    await client.aclose()
        finally:
            await asyncio.to_thread(standby.terminate)
        assert "journal entries replayed" in (tmp_path / "standby.log").read_text()


async def test_a_leader_stopped_gracefully_hands_over_at_once_and_a_standby_stops_cleanly(
    tmp_path: Path, redis_url: str
) -> None:
    async with inspector_mesh(tmp_path, redis_url, "--leader-ttl-ms", "9000") as mesh:
        assert mesh.process is not None
        standby = _inspector_replica(mesh, tmp_path / "standby.log")
        third = _inspector_replica(mesh, tmp_path / "third.log")
        try:
            assert standby.info["event"] == third.info["event"] == "standby"
            assert await asyncio.to_thread(third.terminate) == 0  # a standby stops at once, cleanly
            async with grpc.aio.insecure_channel(standby.address) as channel:
                stub = rk_grpc.InspectorStub(channel)

                async def state() -> Any:
                    return await stub.GetRiskState(
                        rk.GetRiskStateRequest(), metadata=AUTH, timeout=CALL_TIMEOUT_S
                    )

                await mesh.stop()  # SIGTERM: the lease released, not left to lapse (6-9 s from now)
                took, served = await failover(mesh.bus, "leader.inspector.{inspector}", standby, state)
                print(f"inspector handover: lease taken {took:.2f} s, serving {served:.2f} s after the stop")
                assert took < 5.0, took  # the standby's next ask (every 3 s), before the lease could lapse
        finally:
            await asyncio.to_thread(standby.terminate)


# ---------------------------------------------------------------- the ledger


def _ledger_replica(ledger: Books, log: Path) -> ServiceProcess:
    venue = f"sim={ledger.mesh.venue.address}"
    args = ["ledger", "--port", "0", "--metrics-port", "-1", "--venue", venue, *ledger.args]
    env = {TOKEN: TEST_TOKEN, REDIS_URL: ledger.mesh.bus, DATABASE_URL: ledger.database}
    return start_replica(args, env, log)


async def test_two_ledgers_one_posts_and_the_standby_takes_over_posting_each_fill_once(
    tmp_path: Path, database_url: str, redis_url: str
) -> None:
    async with books(tmp_path, database_url, redis_url, None, *LEADER) as ledger:
        assert ledger.process is not None
        leader_pid = ledger.process.process.pid
        standby = _ledger_replica(ledger, tmp_path / "ledger-standby.log")
        try:
            async with grpc.aio.insecure_channel(standby.address) as channel:
                stub = lg_grpc.LedgerStub(channel)

                async def verify() -> Any:
                    return await stub.Verify(lg.VerifyRequest(), metadata=AUTH, timeout=CALL_TIMEOUT_S)

                await check_standby(standby, verify, leader_pid)
                placed = await _trade(ledger, range(0, 8))
                await ledger.stop(kill=True)
                placed += await _trade(ledger, range(8, 16))
                took, served = await failover(ledger.mesh.bus, "leader.ledger.{ledger}", standby, verify)
                print(f"ledger failover: lease taken {took:.2f} s, serving {served:.2f} s after the kill")
                assert took < TAKEOVER_S, took
                ledger.channel = channel  # the books read through the new leader
                expected = {f.fill_id for order in placed for f in await _whole(ledger.mesh, order)}
                await until(lambda: _posted_fills(ledger, len(expected)), WAIT_S, what="every fill posted")
                ledger.channel = None
                assert (await verify()).ok
        finally:
            await asyncio.to_thread(standby.terminate)
        await _each_fill_once(ledger.database, len(expected))


async def _trade(ledger: Books, rounds: range) -> list[str]:
    placed: list[str] = []
    for n in rounds:
        side = "buy" if n % 2 == 0 else "sell"
        answer = await ledger.mesh.submit(
            intent(side, "0.001", intent_id=f"k-{n}", strategy_id="k", reduce_only=side == "sell")
        )
        if answer.client_order_id:  # a sell finding no position yet is blocked: no order
            placed.append(answer.client_order_id)
    return placed


async def _each_fill_once(database: str, count: int) -> None:
    connection = await asyncpg.connect(database)
    try:
        events = await connection.fetchval("SELECT count(*) FROM ledger_events WHERE event_id LIKE 'fill/%'")
        per_fill = await connection.fetchval(
            "SELECT count(DISTINCT event_id) FROM ledger_transfers WHERE fill_id <> ''"
        )
    finally:
        await connection.close()
    assert events == per_fill == count  # each fill once: none twice, none lost


# ---------------------------------------------------------------- the detector


async def test_two_detectors_one_signals_and_the_standby_takes_over(
    tmp_path: Path, database_url: str, redis_url: str
) -> None:
    """Two processes of the detector instance on one sim: one runs the patches and signals, the
    other stands by; the leader killed with -9, the standby leads and signals on its own."""
    async with new_database(database_url, "detector") as database, redis_db(redis_url) as bus_url:
        processes = Processes(tmp_path, database)
        replicas: list[ServiceProcess] = []
        try:
            sim = processes.sim(None, f"history_s = {WARM_HISTORY_S}\n")
            args = ["detector", "--port", "0", "--metrics-port", "-1", "--venue", f"sim={sim.address}"]
            args += ["--database-url", database, *LEADER]
            env = {TOKEN: TEST_TOKEN, REDIS_URL: bus_url, DATABASE_URL: database}
            replicas.append(start_replica(args, env, tmp_path / "detector-1.log"))
            replicas.append(start_replica(args, env, tmp_path / "detector-2.log"))
            leader, standby = replicas
            assert leader.info["event"] == "serving"
            await check_standby(standby, lambda: _patches(standby), leader.process.pid)
            await until(lambda: _more_signals(bus_url, 0), 90, 0.5, "the leader's signals")

            leader.process.kill()
            leader.process.wait()
            signalled = len(await bus_signals(bus_url))
            took, serving = await failover(
                bus_url,
                leader_lease_name("detector", "detector", tagged(SIGNALS)),
                standby,
                lambda: _patches(standby),
            )
            print(
                f"detector: the standby took the lease {took:.2f} s after the kill, served at {serving:.2f} s"
            )
            assert took < TAKEOVER_S, f"taken after {took:.2f} s"
            # The leader is dead: new signals are the new leader's.
            await until(lambda: _more_signals(bus_url, signalled), 90, 0.5, "the new leader's signals")
        finally:
            for replica in replicas:
                await asyncio.to_thread(replica.terminate)
            await processes.stop_all()


async def _patches(process: ServiceProcess) -> patch_pb.ListPatchesResponse:
    async with grpc.aio.insecure_channel(process.address) as channel:
        stub = patch_grpc.PatchStub(channel)
        reply: patch_pb.ListPatchesResponse = await stub.ListPatches(
            patch_pb.ListPatchesRequest(), metadata=AUTH, timeout=CALL_TIMEOUT_S
        )
        return reply


async def _more_signals(bus_url: str, than: int) -> bool | None:
    return True if len(await bus_signals(bus_url)) > than else None
