"""The books' opening balances, asked of venues as gRPC servers (stand-ins that answer
TradeFlow.GetBalances as a venue does) on a real Redis: a venue that cannot answer yet is asked
again, with every other, until it answers; a venue whose answer is that it has no account opens
with no deposit; each round sets the executions' group to the stream's end."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any

import grpc
import pytest
import redis.asyncio as aioredis

from tests.integration.mesh import redis_db
from tests.integration.redis_server import redis_url
from tests.integration.support import until
from trademesh.core.ledger.engine.events import DepositEvent
from trademesh.core.ledger.opening import read_openings
from trademesh.core.ledger.venues import LedgerVenues
from trademesh.core.platform.bus.names import executions_stream
from trademesh.core.tools.resolver import VENUE_SERVICES, Instance, MeshResolver
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf
from trademesh.tradeflow.v1 import tradeflow_pb2_grpc as tf_grpc

pytestmark = pytest.mark.integration
__all__ = ["redis_url"]  # the fixture, for pytest

GROUP = "ledger"
Answer = Callable[[int], tuple[grpc.StatusCode, str] | list[tf.Balance]]


class Venue(tf_grpc.TradeFlowServicer):
    """GetBalances answers `answer(n)` at its n-th call (from 1): balances, or an error."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.calls = 0

    async def GetBalances(self, request: tf.GetBalancesRequest, context: Any) -> tf.GetBalancesResponse:
        self.calls += 1
        answer = self.answer(self.calls)
        if isinstance(answer, tuple):
            await context.abort(*answer)  # raises: the call ends with that status
            raise AssertionError("abort returned")
        return tf.GetBalancesResponse(balances=answer, as_of_ns=time.time_ns())


@contextlib.asynccontextmanager
async def venues(**answers: Answer) -> AsyncIterator[tuple[LedgerVenues, dict[str, Venue]]]:
    servers: list[grpc.aio.Server] = []
    served: dict[str, Venue] = {}
    given: list[Instance] = []
    for name, answer in answers.items():
        server = grpc.aio.server()
        served[name] = Venue(answer)  # type: ignore[abstract]  # GetBalances alone: what the ledger asks
        tf_grpc.add_TradeFlowServicer_to_server(served[name], server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        servers.append(server)
        given.append(Instance(name, f"127.0.0.1:{port}", VENUE_SERVICES))
    asked = LedgerVenues(MeshResolver(None, given), timeout_s=2.0)
    try:
        yield asked, served
    finally:
        await asked.close()
        for server in servers:
            await server.stop(None)


def usdt(total: str) -> list[tf.Balance]:
    return [tf.Balance(asset="USDT", total=total, free=total), tf.Balance(asset="BTC", total="0")]


async def streams_with_groups(url: str, names: list[str]) -> dict[str, str]:
    client = aioredis.from_url(url)
    try:
        streams = {name: executions_stream(name) for name in names}
        for stream in streams.values():
            await client.xgroup_create(stream, GROUP, "0", mkstream=True)
            await client.xadd(stream, {"before": "the books"})
        return streams
    finally:
        await client.aclose()


async def test_a_venue_not_answering_yet_is_asked_again_and_one_without_an_account_opens_empty(
    redis_url: str,
) -> None:
    def late(call: int) -> tuple[grpc.StatusCode, str] | list[tf.Balance]:
        return (grpc.StatusCode.UNAVAILABLE, "starting") if call <= 2 else usdt("1000.5")

    def no_key(call: int) -> tuple[grpc.StatusCode, str] | list[tf.Balance]:
        return (grpc.StatusCode.FAILED_PRECONDITION, "venue nokey has no credentials")

    async with (
        redis_db(redis_url) as url,
        venues(late=late, nokey=no_key, sim=lambda _: usdt("250")) as (
            asked,
            served,
        ),
    ):
        streams = await streams_with_groups(url, ["late", "nokey", "sim"])
        client = aioredis.from_url(url)
        try:
            events = await read_openings(client, GROUP, streams, asked, lambda: 7, asyncio.Event())
            groups = {name: await client.xinfo_groups(stream) for name, stream in streams.items()}
            last = {
                name: (await client.xinfo_stream(stream))["last-generated-id"]
                for name, stream in streams.items()
            }
        finally:
            await client.aclose()
    assert events is not None
    deposits = sorted(
        (e.event_id, e.venue, e.asset, e.amount, e.ts_ns) for e in events if isinstance(e, DepositEvent)
    )
    assert deposits == [
        ("opening/late/USDT", "late", "USDT", Decimal("1000.5"), 7),
        ("opening/sim/USDT", "sim", "USDT", Decimal("250"), 7),
    ]
    assert len(events) == 2  # no deposit of a zero balance, none of the venue without an account
    assert served["late"].calls == 3 and served["sim"].calls == 3  # every venue asked each round
    assert served["nokey"].calls == 3
    for name, [group] in groups.items():  # the executions are read from the books' opening on
        assert group["last-delivered-id"] == last[name], (name, group)


async def test_a_venue_that_never_answers_keeps_the_books_closed_until_the_ledger_stops(
    redis_url: str,
) -> None:
    def down(call: int) -> tuple[grpc.StatusCode, str] | list[tf.Balance]:
        return (grpc.StatusCode.DEADLINE_EXCEEDED, "busy")

    async with redis_db(redis_url) as url, venues(down=down) as (asked, served):
        streams = await streams_with_groups(url, ["down"])
        client = aioredis.from_url(url)
        stop = asyncio.Event()
        try:
            reading = asyncio.create_task(read_openings(client, GROUP, streams, asked, time.time_ns, stop))
            await until(lambda: _asked(served["down"], 2), 30, what="the venue asked twice")
            assert not reading.done()
            stop.set()
            assert await asyncio.wait_for(reading, 10) is None
        finally:
            await client.aclose()


async def _asked(venue: Venue, times: int) -> bool | None:
    return True if venue.calls >= times else None
