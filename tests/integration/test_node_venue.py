"""node-ref (trademesh/venues/node_ref), the reference venue in TypeScript on Node, as a real process.

The venue is built first when its stamps are stale (`npm ci` on its lockfile, `npm run build` on
its sources, as ./dev does in its set-up), started as `node trademesh/venues/node_ref/dist/main.js
--port 0` with the mesh token and the trading credential, and read only through gRPC with the
Python generated stubs (gen/), as any mesh service reads a venue: instruments, a book snapshot and
its deltas, orders resting, filling and cancelled, executions resumed after a reconnect, the
tokens' rules, a refused order's field violations, the dead-man switch; and the conformance kit
(`trademesh venue-check`) run against it whole.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.integration.gateway_support import Gateway, list_instances
from tests.integration.support import (
    CALL_TIMEOUT_S,
    TEST_TOKEN,
    TEST_TRADE_TOKEN,
    Book,
    Stubs,
    Venue,
    limit_order,
    next_batch,
    until,
)
from tests.node_venue import running
from trademesh.admin.v1 import admin_pb2 as admin
from trademesh.common.v1 import common_pb2 as common
from trademesh.core.platform.config.env import GATEWAY, TOKEN, TRADE_TOKEN
from trademesh.core.platform.rpc.status import bad_request_violations
from trademesh.core.platform.service.process import start_service
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.registry.v1 import registry_pb2 as reg
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

pytestmark = pytest.mark.integration

SYMBOL = "BTC/USDT"
TICK = Decimal("0.01")


@pytest.fixture(scope="module")
async def node_ref(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Venue]:
    """The module's node-ref venue: the tests leave no open order behind on it."""
    async with running(tmp_path_factory.mktemp("node-ref") / "node-ref.log") as venue:
        yield venue


@pytest.fixture
async def stubs(node_ref: Venue) -> AsyncIterator[Stubs]:
    """Stubs with the trading credential (the test stands in for the inspector)."""
    found = node_ref.stubs()
    await found.tf.CancelAllOrders(tf.CancelAllOrdersRequest(), timeout=CALL_TIMEOUT_S)
    yield found
    await found.tf.CancelAllOrders(tf.CancelAllOrdersRequest(), timeout=CALL_TIMEOUT_S)
    await found.close()


async def best_prices(stubs: Stubs) -> tuple[Decimal, Decimal]:
    call = stubs.md.Subscribe(md.SubscribeRequest(symbols=[SYMBOL], channels=[md.CHANNEL_BOOK]))
    try:
        snapshot = (await next_batch(call)).events[0].book_snapshot
    finally:
        call.cancel()
    return Decimal(snapshot.bids[0].price), Decimal(snapshot.asks[0].price)


def on_tick(price: Decimal) -> str:
    return str((price / TICK).to_integral_value() * TICK)


class ExecutionReader:
    """A StreamExecutions call read in the background, its responses kept in order."""

    def __init__(self, stubs: Stubs, resume: tf.StreamExecutionsRequest.Resume | None = None) -> None:
        request = tf.StreamExecutionsRequest(symbols=[SYMBOL])
        if resume is not None:
            request.resume.CopyFrom(resume)
        self.call = stubs.tf.StreamExecutions(request)
        self.responses: list[tf.StreamExecutionsResponse] = []
        self._task = asyncio.create_task(self._read())

    async def open(self) -> ExecutionReader:
        """Once the venue has subscribed it (it sends its headers then): nothing after is missed."""
        await asyncio.wait_for(self.call.initial_metadata(), CALL_TIMEOUT_S)
        return self

    async def _read(self) -> None:
        with contextlib.suppress(grpc.aio.AioRpcError, asyncio.CancelledError):
            async for response in self.call:
                self.responses.append(response)

    @property
    def executions(self) -> list[tf.Execution]:
        return [e for r in self.responses for e in r.executions]

    async def until_order(self, order_id: str, status: tf.OrderStatus.ValueType) -> tf.Execution:
        async def found() -> tf.Execution | None:
            return next(
                (e for e in self.executions if e.order.order_id == order_id and e.order.status == status),
                None,
            )

        return await until(found, CALL_TIMEOUT_S, what=f"order {order_id} {tf.OrderStatus.Name(status)}")

    async def close(self) -> None:
        self.call.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


async def test_instruments_are_listed_with_canonical_symbols_and_exact_steps(stubs: Stubs) -> None:
    listed = await stubs.md.ListInstruments(md.ListInstrumentsRequest(), timeout=CALL_TIMEOUT_S)
    by_symbol = {i.symbol: i for i in listed.instruments}
    assert sorted(by_symbol) == ["BTC/USDT", "ETH/USDT"]
    btc = by_symbol[SYMBOL]
    assert (btc.venue, btc.native_symbol, btc.kind) == ("node-ref", "BTC-USDT", common.INSTRUMENT_KIND_SPOT)
    assert (btc.base_asset, btc.quote_asset, btc.settle_asset) == ("BTC", "USDT", "USDT")
    assert (btc.tick_size, btc.lot_size, btc.min_size, btc.min_notional) == (
        "0.01",
        "0.00001",
        "0.00001",
        "5",
    )
    assert (btc.contract_value, btc.contract_value_asset, btc.active) == ("1", "BTC", True)
    # A liquid spot venue's fees, which the advisor's stops and targets are checked against.
    assert (btc.maker_fee_rate, btc.taker_fee_rate) == ("0.0002", "0.0005")
    filtered = await stubs.md.ListInstruments(
        md.ListInstrumentsRequest(symbols=["ETH/USDT"]), timeout=CALL_TIMEOUT_S
    )
    assert [i.symbol for i in filtered.instruments] == ["ETH/USDT"]


async def test_health_answers_for_the_server_its_services_and_the_probes_without_a_token(
    node_ref: Venue,
) -> None:
    health = health_pb2_grpc.HealthStub(node_ref.channel(None))
    names = [
        "",
        "trademesh.liveness",
        "trademesh.readiness",
        "trademesh.marketdata.v1.MarketData",
        "trademesh.tradeflow.v1.TradeFlow",
        "trademesh.admin.v1.Admin",
    ]
    for name in names:
        answer = await health.Check(health_pb2.HealthCheckRequest(service=name), timeout=CALL_TIMEOUT_S)
        assert answer.status == health_pb2.HealthCheckResponse.SERVING, name
    with pytest.raises(grpc.aio.AioRpcError) as unknown:
        await health.Check(health_pb2.HealthCheckRequest(service="no.such.Service"), timeout=CALL_TIMEOUT_S)
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND


async def test_book_snapshot_then_deltas_follow_without_sequence_holes(stubs: Stubs) -> None:
    call = stubs.md.Subscribe(md.SubscribeRequest(symbols=[SYMBOL], channels=[md.CHANNEL_BOOK]))
    try:
        first = await next_batch(call)
        assert first.events[0].WhichOneof("payload") == "book_snapshot"
        book = Book(first.events[0].book_snapshot)
        deltas, position = 0, first.position
        for event in first.events[1:]:
            book.apply(event.book_delta)  # asserts each sequence is the one before + 1
            deltas += 1
        deadline = time.monotonic() + 30
        while deltas < 100:
            assert time.monotonic() < deadline, f"only {deltas} deltas in 30 s"
            message = await next_batch(call)
            assert message.position > position and message.epoch == first.epoch
            position = message.position
            for event in message.events:
                book.apply(event.book_delta)
                deltas += 1
        bid, ask = book.best()
        assert bid is not None and ask is not None and Decimal(bid[0]) < Decimal(ask[0]), (
            "the book is crossed"
        )
    finally:
        call.cancel()


async def test_an_order_with_the_trading_credential_rests_then_is_cancelled(stubs: Stubs) -> None:
    best_bid, _ = await best_prices(stubs)
    price = on_tick(best_bid * Decimal("0.9"))
    placed = await stubs.tf.PlaceOrder(
        limit_order(SYMBOL, common.SIDE_BUY, "0.001", price, client_order_id="rest-1"), timeout=CALL_TIMEOUT_S
    )
    assert placed.order.status == tf.ORDER_STATUS_OPEN and not placed.duplicate
    listed = await stubs.tf.ListOpenOrders(tf.ListOpenOrdersRequest(symbol=SYMBOL), timeout=CALL_TIMEOUT_S)
    assert [o.order_id for o in listed.orders] == [placed.order.order_id]
    balances = await stubs.tf.GetBalances(tf.GetBalancesRequest(), timeout=CALL_TIMEOUT_S)
    usdt = next(b for b in balances.balances if b.asset == "USDT")
    # price * size * (1 + the dearer fee rate, the taker's 0.05 %), exact
    assert Decimal(usdt.locked) == Decimal(price) * Decimal("0.001") * Decimal("1.0005")
    canceled = await stubs.tf.CancelOrder(
        tf.CancelOrderRequest(client_order_id="rest-1", reason="test: done"), timeout=CALL_TIMEOUT_S
    )
    assert (canceled.order.status, canceled.order.status_reason) == (tf.ORDER_STATUS_CANCELED, "test: done")
    read = await stubs.tf.GetOrder(tf.GetOrderRequest(order_id=placed.order.order_id), timeout=CALL_TIMEOUT_S)
    assert read.order.status == tf.ORDER_STATUS_CANCELED
    after = await stubs.tf.GetBalances(tf.GetBalancesRequest(), timeout=CALL_TIMEOUT_S)
    assert next(b.locked for b in after.balances if b.asset == "USDT") == "0"


async def test_a_crossing_order_fills_and_its_executions_resume_after_a_reconnect(stubs: Stubs) -> None:
    first = await ExecutionReader(stubs).open()
    try:
        _, best_ask = await best_prices(stubs)
        crossing = await stubs.tf.PlaceOrder(
            limit_order(
                SYMBOL,
                common.SIDE_BUY,
                "0.002",
                on_tick(best_ask * Decimal("1.01")),
                time_in_force=tf.TIME_IN_FORCE_IOC,
            ),
            timeout=CALL_TIMEOUT_S,
        )
        assert crossing.order.status in (tf.ORDER_STATUS_FILLED, tf.ORDER_STATUS_EXPIRED)
        assert Decimal(crossing.order.filled_size) > 0, "a buy above the best ask filled nothing"
        ended = await first.until_order(crossing.order.order_id, crossing.order.status)
        fills = [
            e.fill
            for e in first.executions
            if e.order.order_id == crossing.order.order_id and e.HasField("fill")
        ]
        assert sum(Decimal(f.size) for f in fills) == Decimal(crossing.order.filled_size)
        assert all(
            f.liquidity == tf.LIQUIDITY_TAKER and f.fee_asset == "USDT" and Decimal(f.fee) > 0 for f in fills
        )
        point = tf.StreamExecutionsRequest.Resume(epoch=first.responses[-1].epoch, position=ended.sequence)
    finally:
        await first.close()
    # While no stream is open: an order rests and is cancelled, another crosses and fills.
    best_bid, best_ask = await best_prices(stubs)
    resting = await stubs.tf.PlaceOrder(
        limit_order(SYMBOL, common.SIDE_BUY, "0.001", on_tick(best_bid * Decimal("0.9"))),
        timeout=CALL_TIMEOUT_S,
    )
    await stubs.tf.CancelOrder(tf.CancelOrderRequest(order_id=resting.order.order_id), timeout=CALL_TIMEOUT_S)
    missed_fill = await stubs.tf.PlaceOrder(
        limit_order(
            SYMBOL,
            common.SIDE_SELL,
            "0.001",
            on_tick(best_bid * Decimal("0.99")),
            time_in_force=tf.TIME_IN_FORCE_IOC,
        ),
        timeout=CALL_TIMEOUT_S,
    )
    resumed = await ExecutionReader(stubs, point).open()
    try:
        await resumed.until_order(resting.order.order_id, tf.ORDER_STATUS_CANCELED)
        await resumed.until_order(missed_fill.order.order_id, missed_fill.order.status)
        header = resumed.responses[0]
        assert (header.gap, header.position, len(header.executions)) == (False, point.position, 0)
        sequences = [e.sequence for e in resumed.executions]
        assert sequences == list(range(point.position + 1, point.position + 1 + len(sequences))), sequences
        missed = {e.order.order_id for e in resumed.executions}
        assert {resting.order.order_id, missed_fill.order.order_id} <= missed
        assert crossing.order.order_id not in missed, "an execution seen before the reconnect came again"
        assert any(
            e.HasField("fill") for e in resumed.executions if e.order.order_id == missed_fill.order.order_id
        )
    finally:
        await resumed.close()


async def test_the_mesh_token_is_refused_for_orders_and_no_token_for_anything(
    node_ref: Venue, stubs: Stubs
) -> None:
    mesh = node_ref.stubs(TEST_TOKEN)
    listed = await mesh.md.ListInstruments(md.ListInstrumentsRequest(), timeout=CALL_TIMEOUT_S)
    assert listed.instruments, "the mesh token reads"
    order = limit_order(SYMBOL, common.SIDE_BUY, "0.001", "30000")
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await mesh.tf.PlaceOrder(order, timeout=CALL_TIMEOUT_S)
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert TRADE_TOKEN in (refused.value.details() or "")
    with pytest.raises(grpc.aio.AioRpcError) as heartbeat:
        await mesh.admin.Heartbeat(admin.HeartbeatRequest(ttl_ms=5000), timeout=CALL_TIMEOUT_S)
    assert heartbeat.value.code() == grpc.StatusCode.PERMISSION_DENIED
    anonymous = node_ref.stubs(None)
    with pytest.raises(grpc.aio.AioRpcError) as unauthenticated:
        await anonymous.tf.GetBalances(tf.GetBalancesRequest(), timeout=CALL_TIMEOUT_S)
    assert unauthenticated.value.code() == grpc.StatusCode.UNAUTHENTICATED
    still = await stubs.tf.ListOpenOrders(tf.ListOpenOrdersRequest(), timeout=CALL_TIMEOUT_S)
    assert list(still.orders) == [], "a refused order was placed"


async def test_a_bad_order_is_invalid_argument_naming_each_bad_field(stubs: Stubs) -> None:
    bad = tf.PlaceOrderRequest(
        symbol=SYMBOL,
        side=common.SIDE_BUY,
        type=tf.ORDER_TYPE_LIMIT,
        size="-1",
        price="65000.001",
        client_order_id="bad 1",
    )
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stubs.tf.PlaceOrder(bad, timeout=CALL_TIMEOUT_S)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    violations = dict(bad_request_violations(refused.value))
    assert set(violations) == {"size", "price", "client_order_id"}, violations
    assert "tick size 0.01" in violations["price"]
    with pytest.raises(grpc.aio.AioRpcError) as unknown:
        await stubs.tf.PlaceOrder(tf.PlaceOrderRequest(symbol="NO/SUCH", size="1"), timeout=CALL_TIMEOUT_S)
    assert {field for field, _ in bad_request_violations(unknown.value)} == {"symbol", "side", "type"}
    still = await stubs.tf.ListOpenOrders(tf.ListOpenOrdersRequest(), timeout=CALL_TIMEOUT_S)
    assert list(still.orders) == []


async def test_the_dead_man_switch_cancels_open_orders_within_ttl_plus_one_second(stubs: Stubs) -> None:
    best_bid, _ = await best_prices(stubs)
    reader = await ExecutionReader(stubs).open()
    try:
        placed = await stubs.tf.PlaceOrder(
            limit_order(SYMBOL, common.SIDE_BUY, "0.001", on_tick(best_bid * Decimal("0.9"))),
            timeout=CALL_TIMEOUT_S,
        )
        armed = await stubs.admin.Heartbeat(admin.HeartbeatRequest(ttl_ms=1000), timeout=CALL_TIMEOUT_S)
        assert armed.dead_man.armed and armed.dead_man.ttl_ms == 1000
        canceled = await reader.until_order(placed.order.order_id, tf.ORDER_STATUS_CANCELED)
        assert canceled.order.status_reason.startswith("dead-man: no heartbeat within 1000 ms")
        # The venue's own clock: the cancel at its deadline, not before, and within a second after.
        late_ns = canceled.order.updated_ns - armed.dead_man.deadline_ns
        assert -5_000_000 <= late_ns <= 1_000_000_000, f"cancelled {late_ns / 1e9:+.3f} s from the deadline"
        status = await stubs.admin.GetStatus(admin.GetStatusRequest(), timeout=CALL_TIMEOUT_S)
        assert (
            not status.dead_man.armed
            and status.dead_man.trips >= 1
            and status.dead_man.last_trip_canceled == 1
        )
    finally:
        await reader.close()


async def test_node_ref_passes_the_venue_contract_kit(tmp_path: Path) -> None:
    """The whole kit, on a venue of its own (the kit drains it last)."""
    async with running(tmp_path / "node-ref-kit.log") as venue:
        environment = {**os.environ, TOKEN: TEST_TOKEN, TRADE_TOKEN: TEST_TRADE_TOKEN}
        done = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "trademesh.core.cli", "venue-check", venue.address, "--json"],
            capture_output=True,
            text=True,
            env=environment,
            timeout=240,
            check=False,
        )
        assert done.returncode == 0, f"{done.stdout[-6000:]}\n{done.stderr[-2000:]}"
    report = json.loads(done.stdout)
    assert report["venue"] == "node-ref" and report["conforms"] and report["failed"] == 0
    # Skipped only where its capabilities say it does not offer the behaviour: spot has no funding.
    skipped = [check["name"] for check in report["checks"] if check["outcome"] == "skip"]
    assert skipped == ["subscribe.funding"], skipped


async def test_node_ref_registers_with_the_gateway_and_unregisters_when_it_stops(tmp_path: Path) -> None:
    # No API keys' database: the registry takes the mesh token alone.
    fast = ["--heartbeat-interval-s", "0.5", "--registry-ttl-s", "2"]
    with (tmp_path / "gateway.log").open("w") as log_file:
        service = await asyncio.to_thread(
            start_service,
            ["gateway", "--port", "0", "--grpc-port", "0", *fast],
            {TOKEN: TEST_TOKEN},
            60,
            log_file,
        )
    gateway = Gateway(service, tmp_path / "gateway.log")
    try:
        async with running(tmp_path / "node-ref.log", {GATEWAY: gateway.grpc_address}) as venue:

            async def registered() -> reg.Instance | None:
                return (await list_instances(gateway)).get("node-ref")

            instance = await until(registered, 30, what="node-ref registered with the gateway")
            assert (instance.kind, instance.address) == (reg.KIND_VENUE, venue.address)
            assert set(instance.services) == {
                "trademesh.marketdata.v1.MarketData",
                "trademesh.tradeflow.v1.TradeFlow",
                "trademesh.admin.v1.Admin",
                "grpc.health.v1.Health",
            }
            # Still listed past the registry's ttl: its heartbeats keep it.
            first_beat = instance.last_heartbeat_ns

            async def beating() -> reg.Instance | None:
                found = (await list_instances(gateway)).get("node-ref")
                return (
                    found
                    if found is not None and found.last_heartbeat_ns > first_beat + 2_000_000_000
                    else None
                )

            await until(beating, 30, what="node-ref heartbeating past the registry's ttl")
        listed = await list_instances(gateway)
        assert "node-ref" not in listed, "node-ref stopped but is still registered"
    finally:
        assert await asyncio.to_thread(service.terminate) == 0
