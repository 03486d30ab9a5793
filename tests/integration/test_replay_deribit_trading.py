"""Deribit TradeFlow against the replay stand-in, through the real ccxt client (JSON-RPC v2).

The capture holds options (amounts in contracts, prices in BTC or ETH). Expected values
are worked out here: prices from the capture's own book (EXPECTED, read independently of
the stand-in), fees by Deribit's option rule, balances from the stand-in's documented
starting cash (trademesh/venues/deribit/standin/order_store.py: 1.5 BTC and 20 ETH).
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from tests.integration.replay import capture_files, collect, instruments, replay_venue_fixture
from tests.integration.support import (
    CALL_TIMEOUT_S,
    Stubs,
    Venue,
    limit_order,
    listening_executions,
    open_order_ids,
    until,
)
from tests.integration.test_replay_deribit import CHANNELS, EXPECTED
from trademesh.admin.v1 import admin_pb2 as admin
from trademesh.common.v1 import common_pb2 as common
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

pytestmark = [pytest.mark.integration, pytest.mark.slow]

FILES = capture_files("DERIBIT")
D = Decimal
SECRET = "deribit-replay-secret-4c1e"
ENV = {"TRADEMESH_DERIBIT_API_KEY": "replay-key", "TRADEMESH_DERIBIT_API_SECRET": SECRET}
PUT = "BTC/USD:BTC-210924-8000-P"  # BTC-24SEP21-8000-P
PUT_NATIVE = "BTC-24SEP21-8000-P"
ETH_CALL = "ETH/USD:ETH-210730-2800-C"  # ETH-30JUL21-2800-C
START = {"BTC": D("1.5"), "ETH": D("20")}

replay_venue = replay_venue_fixture("deribit", FILES)


def option_fee(price: D, contracts: D) -> D:
    """Deribit's option taker fee: 0.0003 of the underlying per contract, at most 12.5 % of the premium."""
    return min(D("0.0003") * contracts, D("0.125") * price * contracts)


async def balances(stubs: Stubs) -> dict[str, tuple[D, D]]:
    answer = await stubs.tf.GetBalances(tf.GetBalancesRequest(), timeout=CALL_TIMEOUT_S)
    return {b.asset: (D(b.free), D(b.locked)) for b in answer.balances}


@pytest.mark.replay(env=ENV)
async def test_orders_cancels_and_the_dead_man_switch(replay_venue: Venue) -> None:
    stubs = replay_venue.stubs()
    executions = await listening_executions(stubs)
    assert await balances(stubs) == {"BTC": (START["BTC"], D(0)), "ETH": (START["ETH"], D(0))}

    # No market subscriber yet, so the replay has not started: the stand-in's books are empty
    # and a limit order rests.
    order = limit_order(PUT, common.SIDE_BUY, "3", "0.0005", client_order_id="tm-label-1")
    first = await stubs.tf.PlaceOrder(order, timeout=CALL_TIMEOUT_S)
    assert first.order.status == tf.ORDER_STATUS_OPEN and not first.duplicate
    assert (first.order.client_order_id, first.order.symbol) == ("tm-label-1", PUT)
    assert (D(first.order.price), D(first.order.size)) == (D("0.0005"), D(3))
    # Deribit would take a second order with the same label: the connector looks it up first.
    again = await stubs.tf.PlaceOrder(order, timeout=CALL_TIMEOUT_S)
    assert again.duplicate and again.order.order_id == first.order.order_id
    assert await open_order_ids(stubs) == [first.order.order_id]
    by_label = await stubs.tf.GetOrder(
        tf.GetOrderRequest(client_order_id="tm-label-1"), timeout=CALL_TIMEOUT_S
    )
    assert by_label.order.order_id == first.order.order_id
    # The resting buy holds back its premium, 3 x 0.0005 BTC.
    reserved = D(3) * D("0.0005")
    assert (await balances(stubs))["BTC"] == (START["BTC"] - reserved, reserved)

    canceled = await stubs.tf.CancelOrder(
        tf.CancelOrderRequest(order_id=first.order.order_id), timeout=CALL_TIMEOUT_S
    )
    assert canceled.order.status == tf.ORDER_STATUS_CANCELED
    assert await open_order_ids(stubs) == []

    placed = [
        await stubs.tf.PlaceOrder(limit_order(symbol, side, "1", price), timeout=CALL_TIMEOUT_S)
        for symbol, side, price in ((PUT, common.SIDE_BUY, "0.001"), (ETH_CALL, common.SIDE_SELL, "0.9"))
    ]
    all_canceled = await stubs.tf.CancelAllOrders(tf.CancelAllOrdersRequest(), timeout=CALL_TIMEOUT_S)
    assert sorted(o.order_id for o in all_canceled.orders) == sorted(p.order.order_id for p in placed)
    assert await open_order_ids(stubs) == []

    # The dead-man switch: no cancel-after in ccxt's deribit, so the venue's timer cancels all.
    last = await stubs.tf.PlaceOrder(
        limit_order(ETH_CALL, common.SIDE_BUY, "2", "0.0005"), timeout=CALL_TIMEOUT_S
    )
    armed = await stubs.admin.Heartbeat(admin.HeartbeatRequest(ttl_ms=1_000), timeout=CALL_TIMEOUT_S)
    assert armed.dead_man.armed

    async def none_open() -> bool | None:
        return True if not await open_order_ids(stubs) else None

    await until(none_open, 10.0, what="cancel-all after the lapsed heartbeat")
    status = await stubs.admin.GetStatus(admin.GetStatusRequest(), timeout=CALL_TIMEOUT_S)
    assert status.dead_man.trips == 1
    fetched = await stubs.tf.GetOrder(
        tf.GetOrderRequest(order_id=last.order.order_id), timeout=CALL_TIMEOUT_S
    )
    assert fetched.order.status == tf.ORDER_STATUS_CANCELED
    assert await balances(stubs) == {"BTC": (START["BTC"], D(0)), "ETH": (START["ETH"], D(0))}
    for order_id in [first.order.order_id, last.order.order_id, *(p.order.order_id for p in placed)]:
        await executions.wait_for(order_id, tf.ORDER_STATUS_OPEN)
        await executions.wait_for(order_id, tf.ORDER_STATUS_CANCELED)
    assert SECRET not in replay_venue.log()


@pytest.mark.replay(env=ENV)
async def test_a_marketable_order_fills_once_at_the_best_ask(replay_venue: Venue) -> None:
    stubs = replay_venue.stubs()
    executions = await listening_executions(stubs)
    # Play the capture out: the stand-in's book is then the capture's last book.
    symbols = await instruments(stubs)
    await collect(stubs, list(symbols.values()), CHANNELS, quiet_s=5.0, played=replay_venue.log_path)
    best_ask = min(EXPECTED.books[PUT_NATIVE][1])
    assert best_ask == D("0.0015")  # the capture itself, as a sanity check

    order = limit_order(PUT, common.SIDE_BUY, "2", "0.01", client_order_id="tm-fill-1")
    placed = await stubs.tf.PlaceOrder(order, timeout=CALL_TIMEOUT_S)
    assert placed.order.status == tf.ORDER_STATUS_FILLED
    assert (D(placed.order.filled_size), D(placed.order.average_fill_price)) == (D(2), best_ask)

    async def the_fill() -> tf.Execution | None:
        return next((e for e in executions.of(placed.order.order_id) if e.HasField("fill")), None)

    execution = await until(the_fill, CALL_TIMEOUT_S, what="a fill on the private stream")
    fill = execution.fill
    fee = option_fee(best_ask, D(2))
    assert (fill.client_order_id, fill.symbol, fill.side) == ("tm-fill-1", PUT, common.SIDE_BUY)
    assert (D(fill.price), D(fill.size), D(fill.fee), fill.fee_asset) == (best_ask, D(2), fee, "BTC")
    assert fill.liquidity == tf.LIQUIDITY_TAKER and execution.order.status == tf.ORDER_STATUS_FILLED
    await asyncio.sleep(0.5)  # any late duplicate would have arrived by now
    fills = [e for e in executions.of(placed.order.order_id) if e.HasField("fill")]
    assert len(fills) == 1, "each fill once, though REST and the private stream both tell of it"

    positions = await stubs.tf.GetPositions(tf.GetPositionsRequest(), timeout=CALL_TIMEOUT_S)
    assert [(p.symbol, D(p.size), D(p.entry_price)) for p in positions.positions] == [(PUT, D(2), best_ask)]
    paid = best_ask * 2 + fee
    assert (await balances(stubs))["BTC"] == (START["BTC"] - paid, D(0))


@pytest.mark.replay(env=ENV, faults=["slow@1"], config="request_timeout_s = 1\n")
async def test_an_order_whose_answer_times_out_is_found_by_its_label(replay_venue: Venue) -> None:
    stubs = replay_venue.stubs()
    order = limit_order(PUT, common.SIDE_BUY, "1", "0.0005", client_order_id="tm-slow-1")
    placed = await stubs.tf.PlaceOrder(order, timeout=CALL_TIMEOUT_S)
    assert placed.order.client_order_id == "tm-slow-1" and placed.order.status == tf.ORDER_STATUS_OPEN
    listed = await stubs.tf.ListOpenOrders(tf.ListOpenOrdersRequest(), timeout=CALL_TIMEOUT_S)
    assert [o.client_order_id for o in listed.orders] == ["tm-slow-1"], "exactly one order at the venue"
    assert "no clear answer" in replay_venue.log(), "the delayed private/buy timed out and was settled"
