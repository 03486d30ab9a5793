"""LogHub end to end with real processes and a real Redis: a gateway (--redis-url) and a sim venue
that log to the bus's `logs` stream, a probe logger of this process writing through the same
handler; their lines tailed through the gateway over gRPC, gRPC-web (`buf curl`) and MCP.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import aiohttp
import grpc
import pytest

from tests.bus_signing import signed
from tests.integration.gateway_support import (
    MESH_AUTH,
    Gateway,
    Processes,
    buf_curl,
    create_key,
    key_taken,
    module_database,
)
from tests.integration.mesh import redis_db
from tests.integration.postgres_server import database_url
from tests.integration.redis_cluster import emptied_cluster
from tests.integration.redis_server import redis_url
from tests.integration.support import (
    CALL_TIMEOUT_S,
    TEST_TOKEN,
    VENUE_ENV,
    Venue,
    best_prices,
    until,
    with_test_step,
)
from trademesh.advisor.v1 import messages_pb2 as am
from trademesh.bus.v1 import bus_pb2 as bus_pb
from trademesh.common.v1 import common_pb2 as common
from trademesh.core.platform.bus.codec import FIELD
from trademesh.core.platform.bus.names import INTENTS, POSITION_REQUESTS, SIGNALS
from trademesh.core.platform.bus.redis import open_redis
from trademesh.core.platform.config.env import GATEWAY, REDIS_URL
from trademesh.core.platform.logs.setup import log_fields, record_fields
from trademesh.core.platform.logs.stream import LOG_STREAM, StreamLogHandler, StreamSettings
from trademesh.core.platform.logs.stream.scrubber import Scrubber
from trademesh.core.platform.rpc.status import bad_request_violations
from trademesh.core.platform.service.process import ServiceProcess
from trademesh.logs.v1 import logs_pb2 as pb
from trademesh.logs.v1 import logs_pb2_grpc as pb_grpc
from trademesh.risk.v1 import inspector_pb2 as rk
from trademesh.risk.v1 import inspector_pb2_grpc as rk_grpc
from trademesh.signal.v1 import signal_pb2 as sig
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

__all__ = ["database_url", "module_database", "redis_url"]  # the fixtures, for pytest

TAIL = "trademesh.logs.v1.Logs/Tail"


@dataclass
class Hub:
    gateway: Gateway
    bus: str
    key: str
    probe: logging.Logger
    processes: Processes
    sim: Venue


@contextlib.contextmanager
def probe_logger(bus: str) -> Iterator[logging.Logger]:
    """A logger of this process whose lines go to the stream as service `probe`, instance `p1`."""
    handler = StreamLogHandler(
        StreamSettings(bus), "probe", "p1", record_fields, scrubber=Scrubber(["probe-secret"])
    )
    logger = logging.getLogger(f"tests.loghub.{uuid.uuid4().hex[:6]}")
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    logger.addHandler(handler)
    try:
        yield logger
    finally:
        logger.removeHandler(handler)
        handler.close()


@pytest.fixture(scope="module")
async def hub(
    tmp_path_factory: pytest.TempPathFactory, module_database: str, redis_url: str
) -> AsyncIterator[Hub]:
    processes = Processes(tmp_path_factory.mktemp("loghub"), module_database)
    async with redis_db(redis_url) as bus:
        try:
            streamed = {LOG_STREAM: bus, REDIS_URL: ""}
            gateway_argv = ["gateway", "--port", "0", "--grpc-port", "0", "--redis-url", bus]
            process, log_path = await asyncio.to_thread(
                processes._start, "gateway", gateway_argv, {"DATABASE_URL": module_database, **streamed}
            )
            gateway = Gateway(process, log_path)
            config = processes.directory / "sim.toml"
            config.write_text(with_test_step(None))
            sim_argv = ["venue", "sim", "--port", "0", "--metrics-port", "-1", "--config", str(config)]
            sim_env = {**VENUE_ENV, GATEWAY: gateway.grpc_address, **streamed}
            sim = Venue(*await asyncio.to_thread(processes._start, "sim", sim_argv, sim_env))
            key = await create_key(module_database, "loghub-reader", ["read"])
            await key_taken(gateway, key)
            with probe_logger(bus) as probe:
                yield Hub(gateway, bus, key, probe, processes, sim)
        finally:
            await processes.stop_all()


async def tail(gateway: Gateway, request: pb.TailRequest) -> list[pb.LogLine]:
    async with grpc.aio.insecure_channel(gateway.grpc_address) as channel:
        call = pb_grpc.LogsStub(channel).Tail(request, metadata=MESH_AUTH, timeout=CALL_TIMEOUT_S)
        return [line async for answer in call for line in answer.lines]


async def tailed(gateway: Gateway, request: pb.TailRequest, count: int) -> list[pb.LogLine]:
    """The tail's lines once it has at least `count` (the sender thread sends within ~20 ms)."""

    async def enough() -> list[pb.LogLine] | None:
        lines = await tail(gateway, request)
        return lines if len(lines) >= count else None

    return await until(enough, 15, interval_s=0.1, what=f"{count} lines for {request}")


async def test_a_venue_start_up_line_is_tailed_through_the_gateway(hub: Hub) -> None:
    request = pb.TailRequest(service="venue", text="SERVING GRPC", backlog=10)
    lines = await tailed(hub.gateway, request, 1)
    line = lines[-1]
    assert (line.service, line.instance, line.level) == ("venue", "sim", pb.LOG_LEVEL_INFO)
    assert "serving gRPC on 127.0.0.1" in line.message and line.venue == "sim"
    assert line.time_ns > 0 and line.id and line.process.endswith(tuple("0123456789"))
    everything = await tail(hub.gateway, pb.TailRequest(backlog=1000))
    assert {"venue", "gateway"} <= {found.service for found in everything}
    assert all(
        found.service == "venue"
        for found in await tail(hub.gateway, pb.TailRequest(service="venue", backlog=1000))
    )


async def test_filters_select_by_service_level_text_and_trace_id(hub: Hub) -> None:
    mark = uuid.uuid4().hex[:8]
    with log_fields(trace_id=f"trace-{mark}", venue="sim"):
        hub.probe.info("%s first, traced", mark)
        hub.probe.warning("%s second, traced, holding probe-secret", mark, extra={"symbol": "BTC/USDT"})
    hub.probe.error("%s THIRD", mark)
    hub.probe.debug("%s fourth", mark)
    try:
        raise ValueError(f"{mark} in the traceback")
    except ValueError:
        hub.probe.exception("failed")
    everything = await tailed(hub.gateway, pb.TailRequest(service="probe", text=mark, backlog=100), 5)
    assert [line.level for line in everything] == [
        pb.LOG_LEVEL_INFO, pb.LOG_LEVEL_WARNING, pb.LOG_LEVEL_ERROR, pb.LOG_LEVEL_DEBUG, pb.LOG_LEVEL_ERROR
    ]  # fmt: skip
    second = everything[1]
    assert second.message == f"{mark} second, traced, holding ***" and second.trace_id == f"trace-{mark}"
    assert dict(second.fields) == {"trace_id": f"trace-{mark}", "venue": "sim", "symbol": "BTC/USDT"}
    assert "ValueError" in everything[4].exception and everything[4].message == "failed"

    async def messages(**filters: object) -> list[str]:
        request = pb.TailRequest(**{"text": mark, "backlog": 100, **filters})  # type: ignore[arg-type]
        return [line.message.partition(",")[0] for line in await tail(hub.gateway, request)]

    assert await messages(min_level=pb.LOG_LEVEL_WARNING) == [f"{mark} second", f"{mark} THIRD", "failed"]
    assert await messages(trace_id=f"trace-{mark}") == [f"{mark} first", f"{mark} second"]
    assert await messages(venue="sim", service="probe") == [f"{mark} first", f"{mark} second"]
    assert await messages(text=f"{mark} third") == [f"{mark} THIRD"]  # case-insensitive
    assert await messages(service="venue") == []
    assert await messages(instance="p2") == []
    newest = await tail(hub.gateway, pb.TailRequest(service="probe", text=mark, backlog=2))
    assert [line.level for line in newest] == [pb.LOG_LEVEL_DEBUG, pb.LOG_LEVEL_ERROR]


async def test_follow_delivers_a_line_logged_after_the_tail_started(hub: Hub) -> None:
    mark = uuid.uuid4().hex[:8]
    async with grpc.aio.insecure_channel(hub.gateway.grpc_address) as channel:
        call = pb_grpc.LogsStub(channel).Tail(
            pb.TailRequest(text=mark, follow=True), metadata=MESH_AUTH, timeout=30
        )
        try:
            await call.initial_metadata()  # the tail is open (its backlog read) before the line
            hub.probe.info("%s after the tail started", mark)
            answer = await asyncio.wait_for(call.read(), 15)
        finally:
            call.cancel()
    assert isinstance(answer, pb.TailResponse)
    assert [line.message for line in answer.lines] == [f"{mark} after the tail started"]


async def test_bad_filters_are_invalid_arguments_naming_each_field(hub: Hub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await tail(hub.gateway, pb.TailRequest(min_level=9, backlog=5000))  # type: ignore[arg-type]
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert dict(bad_request_violations(error.value)).keys() == {"min_level", "backlog"}


async def test_without_a_bus_tail_is_a_failed_precondition(hub: Hub) -> None:
    argv = ["gateway", "--port", "0", "--grpc-port", "0"]
    env = {"DATABASE_URL": hub.processes.database_url, REDIS_URL: "", LOG_STREAM: "off"}
    process, log_path = await asyncio.to_thread(hub.processes._start, "gateway", argv, env)
    try:
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await tail(Gateway(process, log_path), pb.TailRequest(backlog=1))
        assert error.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "log stream is not configured" in (error.value.details() or "")
    finally:
        await hub.processes.stop(process)


async def test_buf_curl_tails_through_grpc_web_with_a_read_key(hub: Hub) -> None:
    mark = uuid.uuid4().hex[:8]
    hub.probe.warning("%s for buf curl", mark)
    await tailed(hub.gateway, pb.TailRequest(text=mark, backlog=1), 1)
    body = json.dumps({"text": mark, "backlog": 5})
    done = await buf_curl(hub.gateway, TAIL, "-d", body, key=hub.key)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    [line] = answer["lines"]
    assert line["message"] == f"{mark} for buf curl" and line["level"] == "LOG_LEVEL_WARNING"
    refused = await buf_curl(hub.gateway, TAIL, "-d", body)
    assert refused.returncode != 0 and "unauthenticated" in refused.stderr.lower()


async def test_the_mcp_tool_gives_the_last_matching_lines(hub: Hub) -> None:
    mark = uuid.uuid4().hex[:8]
    for n in range(3):
        hub.probe.info("%s line %d", mark, n)
    await tailed(hub.gateway, pb.TailRequest(text=mark, backlog=3), 3)
    call = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": "logs_tail", "arguments": {"service": "probe", "text": mark, "lines": 2}},
    }
    headers = {
        "Authorization": f"Bearer {hub.key}",
        "Accept": "application/json, text/event-stream",
        "Content-Type": "application/json",
    }
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http,
        http.post(f"{hub.gateway.url}/mcp", data=json.dumps(call), headers=headers) as reply,
    ):
        body = await reply.json(content_type=None)
    result = body["result"]
    assert not result.get("isError"), result
    found = result["structuredContent"]
    assert [line["message"] for line in found["lines"]] == [f"{mark} line 1", f"{mark} line 2"]
    assert found["lines"][0]["level"] == "info" and found["lines"][0]["service"] == "probe"
    # Resumed after the first of the two: the next one, oldest first, and no more.
    resume = {"service": "probe", "text": mark, "lines": 5, "after_id": found["lines"][0]["id"]}
    call["params"] = {"name": "logs_tail", "arguments": resume}
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http,
        http.post(f"{hub.gateway.url}/mcp", data=json.dumps(call), headers=headers) as reply,
    ):
        body = await reply.json(content_type=None)
    since = body["result"]["structuredContent"]
    assert [line["message"] for line in since["lines"]] == [f"{mark} line 2"]
    assert (since["more"], since["trimmed"]) == (False, False)


async def _answers(gateway: Gateway, request: pb.TailRequest) -> list[pb.TailResponse]:
    async with grpc.aio.insecure_channel(gateway.grpc_address) as channel:
        call = pb_grpc.LogsStub(channel).Tail(request, metadata=MESH_AUTH, timeout=CALL_TIMEOUT_S)
        return [answer async for answer in call]


async def test_a_tail_resumed_after_a_line_gets_every_line_since_and_then_follows(hub: Hub) -> None:
    mark = uuid.uuid4().hex[:8]
    for n in range(3):
        hub.probe.info("%s line %d", mark, n)
    seen = await tailed(hub.gateway, pb.TailRequest(text=mark, backlog=3), 3)
    answers = await _answers(hub.gateway, pb.TailRequest(text=mark, after_id=seen[0].id))
    assert [line.message for a in answers for line in a.lines] == [f"{mark} line 1", f"{mark} line 2"]
    assert not any(answer.trimmed for answer in answers)
    assert await _answers(hub.gateway, pb.TailRequest(text=mark, after_id=seen[-1].id)) == []
    # An id older than the stream's first line: that line is gone, so the first answer says so.
    gone = await _answers(hub.gateway, pb.TailRequest(text=mark, after_id="1-0"))
    assert [line.message for a in gone for line in a.lines] == [f"{mark} line {n}" for n in range(3)]
    assert [answer.trimmed for answer in gone] == [True]
    async with grpc.aio.insecure_channel(hub.gateway.grpc_address) as channel:
        request = pb.TailRequest(text=mark, after_id=seen[1].id, follow=True)
        call = pb_grpc.LogsStub(channel).Tail(request, metadata=MESH_AUTH, timeout=30)
        try:
            first = await asyncio.wait_for(call.read(), 15)
            hub.probe.info("%s line 3, after the resume", mark)
            then = await asyncio.wait_for(call.read(), 15)
        finally:
            call.cancel()
    assert isinstance(first, pb.TailResponse) and isinstance(then, pb.TailResponse)
    assert [line.message for line in first.lines] == [f"{mark} line 2"]
    assert [line.message for line in then.lines] == [f"{mark} line 3, after the resume"]


async def test_a_resume_after_no_line_id_is_an_invalid_argument(hub: Hub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await tail(hub.gateway, pb.TailRequest(after_id="yesterday"))
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert dict(bad_request_violations(error.value)).keys() == {"after_id"}


async def test_the_hub_runs_on_a_redis_cluster(hub: Hub, redis_cluster_url: str) -> None:
    """A gateway whose bus is a Redis Cluster tails the lines a process logs to that cluster."""
    async with emptied_cluster(redis_cluster_url) as cluster:
        argv = ["gateway", "--port", "0", "--grpc-port", "0", "--redis-url", cluster]
        env = {"DATABASE_URL": hub.processes.database_url, REDIS_URL: "", LOG_STREAM: cluster}
        process, log_path = await asyncio.to_thread(hub.processes._start, "gateway", argv, env)
        try:
            gateway = Gateway(process, log_path)
            mark = uuid.uuid4().hex[:8]
            with probe_logger(cluster) as probe:
                probe.warning("%s on the cluster", mark)
                lines = await tailed(gateway, pb.TailRequest(text=mark, backlog=5), 1)
            assert [(line.service, line.message) for line in lines] == [("probe", f"{mark} on the cluster")]
            # The gateway's own lines reach the cluster's stream too (its start-up's).
            own = await tailed(gateway, pb.TailRequest(service="gateway", backlog=5), 1)
            assert own and all(line.service == "gateway" for line in own)
        finally:
            await hub.processes.stop(process)


async def test_a_signals_chain_is_logged_under_its_trace_from_the_advisor_to_the_venue(hub: Hub) -> None:
    """A signal's chain shares one trace id (trademesh.core.platform.logs.setup.chain_trace_id): the advisor's
    decision of a signal, and the inspector's verdict on an intent of that signal with the venue's
    line of its order (the inspector passes the trace on as `traceparent`); a position request's
    likewise, under its own. The intent is put on the bus by the test, as the advisor would
    (whatever the advisor decides of the signal), and the request as a detector would."""
    started = await asyncio.gather(
        asyncio.to_thread(hub.processes.mesh_service, hub.gateway, "inspector", redis_url=hub.bus),
        # The venue's executions reach the inspector through ingest and the bus.
        asyncio.to_thread(hub.processes.mesh_service, hub.gateway, "ingest", redis_url=hub.bus),
        asyncio.to_thread(
            hub.processes.mesh_service, hub.gateway, "advisor", "--database-url",
            hub.processes.database_url, redis_url=hub.bus,
        ),
    )  # fmt: skip
    client: Any = open_redis(hub.bus)
    try:
        decided_id, placed_id = str(uuid.uuid4()), str(uuid.uuid4())
        await client.xadd(SIGNALS, {FIELD: _signal_entry(decided_id)})
        decided = f"advisor: signal {decided_id} decided: "
        advisor = await _traced(hub.gateway, decided_id, lambda lines: any(decided in m for _, m in lines))
        assert {service for service, _ in advisor} == {"advisor"}, advisor  # its other lines too
        await client.xadd(INTENTS, signed(INTENTS, await _intent_entry(hub, placed_id)))
        both = {"inspector", "venue"}
        chain = await _traced(hub.gateway, placed_id, lambda lines: both <= dict(lines).keys())
        assert {service for service, _ in chain} == both, chain
        verdicts = [m for s, m in chain if s == "inspector" and m.startswith("inspector: signal intent ")]
        assert len(verdicts) == 1, chain
        verdict = verdicts[0]
        assert verdict.startswith("inspector: signal intent ") and "ALLOW" in verdict, verdict
        # The entry's order, and its protective orders (placed under the same trace) as they come.
        orders = [message for service, message in chain if service == "venue"]
        assert all(message.startswith("sim: order ") for message in orders), orders
        assert [message for message in orders if " BUY 0.001" in message] != [], orders
        # The strategy closes by its own request: the inspector's verdict on the exit and the
        # venue's line of it, under the request's own trace.
        await until(lambda: _holding(started[0], "traced"), 20, 0.1, "the inspector holding traced's buy")
        closing_id = str(uuid.uuid4())
        await client.xadd(POSITION_REQUESTS, signed(POSITION_REQUESTS, _close_entry(closing_id)))
        closed = await _traced(hub.gateway, closing_id, lambda lines: both <= dict(lines).keys())
        exits = [m for s, m in closed if s == "inspector" and m.startswith("inspector: request intent ")]
        assert len(exits) == 1 and "SELL 0.001" in exits[0] and "ALLOW" in exits[0], closed
        assert any(" SELL 0.001" in m for s, m in closed if s == "venue"), closed
    finally:
        await client.aclose()
        for process in started:
            await hub.processes.stop(process)


async def _traced(
    gateway: Gateway, signal_id: str, enough: Callable[[list[tuple[str, str]]], bool]
) -> list[tuple[str, str]]:
    """(service, message) of the lines under `signal_id`'s chain trace, once `enough` of them."""
    request = pb.TailRequest(trace_id=uuid.UUID(signal_id).hex, backlog=100)

    async def lines() -> list[tuple[str, str]] | None:
        found = [(line.service, line.message) for line in await tail(gateway, request)]
        return found if enough(found) else None

    return await until(lines, 20, interval_s=0.1, what=f"the lines of signal {signal_id}'s trace")


async def _holding(inspector: ServiceProcess, strategy: str) -> bool | None:
    """True once the inspector counts a position of `strategy` (its fills have come)."""
    async with grpc.aio.insecure_channel(inspector.address) as channel:
        answer = await rk_grpc.InspectorStub(channel).ListPositions(
            rk.ListPositionsRequest(venue="sim"), metadata=MESH_AUTH, timeout=CALL_TIMEOUT_S
        )
    shares = [v for p in answer.positions for v in p.strategies if v.name == strategy]
    return True if any(Decimal(v.value) != 0 for v in shares) else None


def _close_entry(request_id: str) -> bytes:
    """Strategy `traced` asks to close its position (as its detector would)."""
    request = sig.PositionRequest(
        request_id=request_id, venue="sim", symbol="BTC/USDT", action=sig.POSITION_ACTION_CLOSE,
        strategy_id="traced", ts_request_ns=time.time_ns(),
    )  # fmt: skip
    request.ts_event_ns = request.ts_request_ns
    envelope = bus_pb.Envelope(source="test", ts_publish_ns=request.ts_request_ns)
    envelope.position_requests.requests.append(request)
    return envelope.SerializeToString()


def _signal_entry(signal_id: str) -> bytes:
    signal = sig.Signal(
        signal_id=signal_id, venue="sim", symbol="BTC/USDT", direction=sig.DIRECTION_LONG,
        conviction="0.6", score="0.6", threshold="0.5", strategy_id="traced",
    )  # fmt: skip
    signal.ts_signal_ns = signal.ts_event_ns = time.time_ns()
    envelope = bus_pb.Envelope(source="test", ts_publish_ns=signal.ts_signal_ns)
    envelope.signals.signals.append(signal)
    return envelope.SerializeToString()


async def _intent_entry(hub: Hub, signal_id: str) -> bytes:
    """A market buy of 0.001 BTC with its protective prices 2,000 away, as an advisor's intent of
    `signal_id`."""
    stubs = hub.sim.stubs(TEST_TOKEN)
    try:
        bid, ask = await best_prices(stubs, "BTC/USDT")
    finally:
        await stubs.close()
    mark = (bid + ask) / 2
    intent = am.Intent(
        intent_id=f"traced-{uuid.uuid4().hex[:8]}", signal_id=signal_id, venue="sim", symbol="BTC/USDT",
        side=common.SIDE_BUY, size="0.001", entry_type=tf.ORDER_TYPE_MARKET, strategy_id="traced",
        stop_loss=str(mark - 2000), take_profit=str(mark + 2000), ts_intent_ns=time.time_ns(),
        expires_at_ns=time.time_ns() + 60 * 10**9,
    )  # fmt: skip
    envelope = bus_pb.Envelope(source="test", ts_publish_ns=time.time_ns())
    envelope.intents.intents.append(intent)
    return envelope.SerializeToString()
