"""Many following Logs/Tail streams (issue 57, item 10), with a real gateway on a real Redis:
one API key follows at most MAX_FOLLOWING_PER_KEY tails (the next is RESOURCE_EXHAUSTED naming
the limit), and 160 following tails of five keys (more than redis-py's pool of 100 connections,
which 128 tails of one key used up: everyone else's Tail and the MCP tool failed UNAVAILABLE)
leave another key's Tail, its follow and the `logs_tail` tool working; one reader feeds them all."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import grpc
import pytest

from tests.integration.gateway_support import (
    Gateway,
    OpenStream,
    Processes,
    create_key,
    frame,
    grpcweb_call,
    key_taken,
    module_database,
    web_headers,
)
from tests.integration.mesh import redis_db
from tests.integration.postgres_server import database_url
from tests.integration.redis_server import redis_url
from tests.integration.support import CALL_TIMEOUT_S, until
from tests.integration.test_loghub import probe_logger, tailed
from trademesh.core.platform.config.env import REDIS_URL
from trademesh.core.platform.logs.stream import LOG_STREAM
from trademesh.gateway.logs.servicer import MAX_FOLLOWING_PER_KEY
from trademesh.logs.v1 import logs_pb2 as pb

pytestmark = [pytest.mark.integration, pytest.mark.slow]
__all__ = ["database_url", "module_database", "redis_url"]  # the fixtures, for pytest

TAIL = "trademesh.logs.v1.Logs/Tail"
GREEDY = 5  # keys each following their most: 160 tails, past the pool's 100 connections


@dataclass
class Mesh:
    gateway: Gateway
    bus: str
    greedy: list[str]
    other: str


@pytest.fixture(scope="module")
async def mesh(
    tmp_path_factory: pytest.TempPathFactory, module_database: str, redis_url: str
) -> AsyncIterator[Mesh]:
    processes = Processes(tmp_path_factory.mktemp("loghub-streams"), module_database)
    async with redis_db(redis_url) as bus:
        try:
            argv = ["gateway", "--port", "0", "--grpc-port", "0", "--redis-url", bus]
            env = {"DATABASE_URL": module_database, LOG_STREAM: bus, REDIS_URL: ""}
            process, log_path = await asyncio.to_thread(processes._start, "gateway", argv, env)
            gateway = Gateway(process, log_path)
            names = [f"greedy-{n}" for n in range(GREEDY)] + ["other"]
            keys = await asyncio.gather(*(create_key(module_database, name, ["read"]) for name in names))
            for key in keys:
                await key_taken(gateway, key)
            yield Mesh(gateway, bus, keys[:GREEDY], keys[GREEDY])
        finally:
            await processes.stop_all()


async def follow(gateway: Gateway, key: str, text: str) -> OpenStream | int:
    """A following Tail of the lines holding `text` (the newest first), open once its first answer
    came; the status code when it was refused instead."""
    request = pb.TailRequest(text=text, backlog=1, follow=True).SerializeToString()
    session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(sock_read=CALL_TIMEOUT_S * 3))
    reply = await session.post(f"{gateway.url}/{TAIL}", data=frame(request), headers=web_headers(False, key))
    if "grpc-status" in reply.headers:  # trailers only: refused before any answer
        reply.close()
        await session.close()
        return int(reply.headers["grpc-status"])
    stream = OpenStream(session, reply)
    try:
        await stream.messages(1)
    except BaseException:
        await stream.close()
        raise
    return stream


def lines_of(messages: list[bytes]) -> list[str]:
    return [line.message for raw in messages for line in pb.TailResponse.FromString(raw).lines]


async def mcp_tail(gateway: Gateway, key: str, text: str) -> list[str]:
    call = {
        "jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "logs_tail", "arguments": {"text": text, "lines": 5, "follow_s": 0.5}},
    }  # fmt: skip
    headers = {
        "Authorization": f"Bearer {key}",
        "Accept": "application/json, text/event-stream",
        "Content-Type": "application/json",
    }
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http,
        http.post(f"{gateway.url}/mcp", data=json.dumps(call), headers=headers) as reply,
    ):
        body = await reply.json(content_type=None)
    result = body["result"]
    assert not result.get("isError"), result
    return [line["message"] for line in result["structuredContent"]["lines"]]


async def test_a_key_past_its_following_tails_is_refused_and_every_other_tail_goes_on(mesh: Mesh) -> None:
    gateway = mesh.gateway
    mark = uuid.uuid4().hex[:8]
    streams: list[OpenStream] = []
    with probe_logger(mesh.bus) as probe:
        probe.info("%s first", mark)
        await tailed(gateway, pb.TailRequest(text=mark, backlog=1), 1)
        try:
            for key in mesh.greedy:
                opened = await asyncio.gather(
                    *(follow(gateway, key, mark) for _ in range(MAX_FOLLOWING_PER_KEY))
                )
                streams += [s for s in opened if isinstance(s, OpenStream)]
                assert len(streams) % MAX_FOLLOWING_PER_KEY == 0, [s for s in opened if isinstance(s, int)]
                # One more of the same key: refused, naming the limit.
                past = pb.TailRequest(text=mark, backlog=1, follow=True).SerializeToString()
                refused = await asyncio.wait_for(grpcweb_call(gateway, TAIL, past, key=key), CALL_TIMEOUT_S)
                assert refused.code == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0], (
                    refused.code,
                    refused.message,
                )
                assert (
                    f"{MAX_FOLLOWING_PER_KEY}" in refused.message
                    and "MAX_FOLLOWING_PER_KEY" in refused.message
                )
            assert len(streams) == GREEDY * MAX_FOLLOWING_PER_KEY > 100
            # Another key: a look at the backlog, a follow of its own, the MCP tool.
            looked = await grpcweb_call(
                gateway, TAIL, pb.TailRequest(text=mark, backlog=5).SerializeToString(), key=mesh.other
            )
            assert looked.code == 0 and lines_of(looked.messages) == [f"{mark} first"], looked.message
            mine = await follow(gateway, mesh.other, mark)
            assert isinstance(mine, OpenStream), mine
            streams.append(mine)
            probe.info("%s second", mark)
            assert f"{mark} second" in await mcp_tail(gateway, mesh.other, mark)
            # Every following tail gets the new line, from the one reader.
            seen = await asyncio.gather(*(s.messages(1) for s in streams))
            assert all(lines_of(got) == [f"{mark} second"] for got in seen), seen[:3]
        finally:
            await asyncio.gather(*(s.close() for s in streams), return_exceptions=True)

    # The streams ended: their key's count is given back.
    async def again() -> OpenStream | None:
        opened = await follow(gateway, mesh.greedy[0], mark)
        return opened if isinstance(opened, OpenStream) else None

    reopened = await until(again, 30, interval_s=0.2, what="a following tail of the key again")
    await reopened.close()
