"""TradeFlow.StreamAccount and TradeFlow.AmendOrder on a real sim venue process (issue 41)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import grpc
import pytest

from tests.integration.support import (
    CALL_TIMEOUT_S,
    Stubs,
    best_prices,
    far_bid,
    limit_order,
    listening_executions,
    until,
)
from tests.integration.test_bad_input import invalid
from trademesh.admin.v1 import admin_pb2 as admin
from trademesh.common.v1 import common_pb2 as common
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("no_open_orders")]

SYMBOL = "BTC/USDT"
TICK = Decimal("0.01")
# The sim's default fees lock a resting buy for the dearer of maker and taker (0.002).
LOCK_FEE_RATE = Decimal("0.002")


def client_id(label: str) -> str:
    return f"{label}-{uuid.uuid4().hex[:12]}"


class Account:
    """A StreamAccount read in the background: its snapshot, then every change applied to it."""

    def __init__(self, stubs: Stubs) -> None:
        self.call = stubs.tf.StreamAccount(tf.StreamAccountRequest())
        self.responses: list[tf.StreamAccountResponse] = []
        self.balances: dict[str, tf.Balance] = {}
        self.positions: dict[str, tf.Position] = {}
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for response in self.call:
            self.responses.append(response)
            self.balances.update((b.asset, b) for b in response.balances)
            self.positions.update((p.symbol, p) for p in response.positions)

    async def close(self) -> None:
        self.call.cancel()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, grpc.aio.AioRpcError):
            await self._task


@pytest.fixture
async def account(stubs: Stubs) -> AsyncIterator[Account]:
    watcher = Account(stubs)
    await until(lambda: _some(watcher.responses), CALL_TIMEOUT_S, what="the account's snapshot")
    yield watcher
    await watcher.close()


async def _some(items: list[tf.StreamAccountResponse]) -> bool | None:
    return True if items else None


async def resting_bid(stubs: Stubs, label: str, size: str = "0.001") -> tf.Order:
    bid, _ = await best_prices(stubs, SYMBOL)
    request = limit_order(SYMBOL, common.SIDE_BUY, size, far_bid(bid, TICK), client_order_id=client_id(label))
    placed = await stubs.tf.PlaceOrder(request, timeout=CALL_TIMEOUT_S)
    assert placed.order.status == tf.ORDER_STATUS_OPEN
    return placed.order


async def test_the_account_stream_starts_with_a_snapshot_then_the_changes_a_fill_makes(
    stubs: Stubs, account: Account
) -> None:
    first = account.responses[0]
    before = await stubs.tf.GetBalances(tf.GetBalancesRequest(), timeout=CALL_TIMEOUT_S)
    assert first.snapshot and {b.asset for b in first.balances} == {b.asset for b in before.balances}
    btc_before = Decimal(account.balances["BTC"].total)
    size = Decimal("0.01")
    market = tf.PlaceOrderRequest(
        symbol=SYMBOL, side=common.SIDE_BUY, type=tf.ORDER_TYPE_MARKET, size=str(size),
        client_order_id=client_id("account-fill"),
    )  # fmt: skip
    placed = await stubs.tf.PlaceOrder(market, timeout=CALL_TIMEOUT_S)
    assert placed.order.status == tf.ORDER_STATUS_FILLED

    async def moved() -> bool | None:
        return True if Decimal(account.balances["BTC"].total) == btc_before + size else None

    await until(moved, CALL_TIMEOUT_S, what="the fill's BTC on the account stream")
    changes = account.responses[1:]
    assert changes and not any(r.snapshot for r in changes)
    assert all(len(r.balances) < len(first.balances) or r.positions for r in changes)
    balances = await stubs.tf.GetBalances(tf.GetBalancesRequest(), timeout=CALL_TIMEOUT_S)
    positions = await stubs.tf.GetPositions(tf.GetPositionsRequest(symbol=SYMBOL), timeout=CALL_TIMEOUT_S)
    assert {b.asset: b for b in balances.balances} == account.balances
    assert account.positions[SYMBOL] == positions.positions[0]


async def test_the_venue_says_it_amends_in_place_and_pushes_its_account(stubs: Stubs) -> None:
    status = await stubs.admin.GetStatus(admin.GetStatusRequest(), timeout=CALL_TIMEOUT_S)
    assert status.capabilities.amend == admin.AMEND_MODE_NATIVE
    assert status.capabilities.account_feed == admin.ACCOUNT_FEED_PUSH


async def test_a_resting_order_is_amended_in_place_and_its_lock_follows(
    stubs: Stubs, account: Account
) -> None:
    order = await resting_bid(stubs, "amend")
    executions = await listening_executions(stubs)
    try:
        locked_before = Decimal(account.balances["USDT"].locked)
        price = Decimal(order.price) - TICK
        request = tf.AmendOrderRequest(client_order_id=order.client_order_id, price=str(price), size="0.002")
        amended = await stubs.tf.AmendOrder(request, timeout=CALL_TIMEOUT_S)
        assert not amended.replaced and not amended.duplicate
        assert amended.order.order_id == order.order_id and amended.order.status == tf.ORDER_STATUS_OPEN
        assert (Decimal(amended.order.price), amended.order.size) == (price, "0.002")
        got = await stubs.tf.GetOrder(tf.GetOrderRequest(order_id=order.order_id), timeout=CALL_TIMEOUT_S)
        assert got.order == amended.order
        seen = await executions.wait_for(order.order_id, tf.ORDER_STATUS_OPEN)
        assert seen[-1].order.size == "0.002"
        # The lock of 0.001 at the old price became one of 0.002 at the new, each with the fee.
        old_lock, new_lock = Decimal(order.price) * Decimal("0.001"), price * Decimal("0.002")
        wanted = (new_lock - old_lock) * (1 + LOCK_FEE_RATE)

        async def relocked() -> bool | None:
            moved = Decimal(account.balances["USDT"].locked) - locked_before
            return True if moved == wanted else None

        await until(relocked, CALL_TIMEOUT_S, what="the amended lock on the account stream")
    finally:
        await executions.close()


async def test_an_amendment_of_a_filled_order_is_refused_as_a_failed_precondition(stubs: Stubs) -> None:
    market = tf.PlaceOrderRequest(
        symbol=SYMBOL, side=common.SIDE_BUY, type=tf.ORDER_TYPE_MARKET, size="0.001",
        client_order_id=client_id("filled"),
    )  # fmt: skip
    placed = await stubs.tf.PlaceOrder(market, timeout=CALL_TIMEOUT_S)
    assert placed.order.status == tf.ORDER_STATUS_FILLED
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stubs.tf.AmendOrder(
            tf.AmendOrderRequest(order_id=placed.order.order_id, size="0.002"), timeout=CALL_TIMEOUT_S
        )
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "filled, not open" in (refused.value.details() or "")


async def test_a_cancelled_order_is_not_amended_either(stubs: Stubs) -> None:
    order = await resting_bid(stubs, "cancelled")
    await stubs.tf.CancelOrder(tf.CancelOrderRequest(order_id=order.order_id), timeout=CALL_TIMEOUT_S)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stubs.tf.AmendOrder(
            tf.AmendOrderRequest(order_id=order.order_id, price=order.price), timeout=CALL_TIMEOUT_S
        )
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"price": "-1"}, "price"),
        ({"size": "abc"}, "size"),
        ({"trigger_price": "NaN"}, "trigger_price"),
        ({"new_client_order_id": "has spaces"}, "new_client_order_id"),
        ({}, "size"),  # nothing to change
        ({"price": "0.001"}, "price"),  # off the tick grid
        ({"size": "0.0001"}, "size"),  # below the lot
        ({"trigger_price": "100"}, "trigger_price"),  # a limit order has no trigger
    ],
)
async def test_a_bad_amendment_is_invalid_argument_naming_the_field(
    stubs: Stubs, fields: dict[str, Any], field: str
) -> None:
    order = await resting_bid(stubs, "bad-amend")
    request = tf.AmendOrderRequest(order_id=order.order_id, **fields)
    violations = await invalid(stubs.tf.AmendOrder(request, timeout=CALL_TIMEOUT_S))
    assert field in [f for f, _ in violations], violations
    got = await stubs.tf.GetOrder(tf.GetOrderRequest(order_id=order.order_id), timeout=CALL_TIMEOUT_S)
    assert (got.order.price, got.order.size) == (order.price, order.size)


async def test_a_renamed_order_answers_a_repeated_amendment_as_a_duplicate(stubs: Stubs) -> None:
    order = await resting_bid(stubs, "rename")
    renamed = client_id("renamed")
    request = tf.AmendOrderRequest(
        client_order_id=order.client_order_id,
        price=str(Decimal(order.price) - TICK),
        new_client_order_id=renamed,
    )
    first = await stubs.tf.AmendOrder(request, timeout=CALL_TIMEOUT_S)
    again = await stubs.tf.AmendOrder(request, timeout=CALL_TIMEOUT_S)
    assert first.order.client_order_id == renamed and not first.duplicate
    assert again.duplicate and again.order.order_id == order.order_id
    got = await stubs.tf.GetOrder(tf.GetOrderRequest(client_order_id=renamed), timeout=CALL_TIMEOUT_S)
    assert got.order.order_id == order.order_id
