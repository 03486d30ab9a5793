"""Kraken spot TradeFlow against the replay stand-in, through the real ccxt.pro client.

The stand-in keeps an order store in Kraken's REST formats
(trademesh/venues/kraken/standin/order_store.py) and sends every order change on the WebSocket
v2 `executions` channel. Expected values come from the capture itself (the book as the replay
leaves it, computed from the v1 text by the Expected of test_replay_kraken; the pair's
decimals and first taker fee tier from the recorded AssetPairs) and from the stand-in's
documented account: fixed balances, open buys holding their quote value, fees in the quote
currency on a buy and the base currency on a sell.
"""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal

import pytest

from tests.integration.replay import collect, replay_venue_fixture
from tests.integration.support import (
    CALL_TIMEOUT_S,
    Executions,
    Stubs,
    Venue,
    far_bid,
    limit_order,
    listening_executions,
    open_order_ids,
    until,
)
from tests.integration.test_replay_kraken import EXPECTED, FILES
from trademesh.admin.v1 import admin_pb2 as admin
from trademesh.common.v1 import common_pb2 as common
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

pytestmark = [pytest.mark.integration, pytest.mark.slow]

D = Decimal
NATIVE, SYMBOL, REST_PAIR = "XBT/CHF", "BTC/CHF", "XBTCHF"
SIZE = D("0.001")
SECRET = "cmVwbGF5LWtyYWtlbi1zZWNyZXQtOWYzYQ=="  # base64, as Kraken's secrets are
CREDENTIALS = {"TRADEMESH_KRAKEN_API_KEY": "replay-kraken-key", "TRADEMESH_KRAKEN_API_SECRET": SECRET}
# The stand-in's account (trademesh/venues/kraken/standin/order_store.py BALANCES), by ccxt's currency codes.
BALANCES = {"BTC": D(2), "CHF": D(100000), "USD": D(100000), "EUR": D(100000)}

replay_venue = replay_venue_fixture("kraken", FILES)


def asset_pair() -> dict[str, object]:
    """The recorded AssetPairs row of the traded pair."""
    for line in FILES[0].read_text().splitlines():
        url, _, rest = line.partition(" -> ")
        if url.endswith("/0/public/AssetPairs"):
            row: dict[str, object] = json.loads(rest.split(": ", 1)[1])["result"][REST_PAIR]
            return row
    raise LookupError(f"no AssetPairs answer in {FILES[0]}")


PAIR = asset_pair()
TICK = D(1).scaleb(-int(str(PAIR["pair_decimals"])))
TAKER_RATE = D(str(PAIR["fees"][0][1])) / 100  # type: ignore[index]
BIDS, ASKS = EXPECTED.books[NATIVE]
# A bid far under the recorded market: it rests (the book's best before any replay is the same
# order of magnitude as at its end).
RESTING = far_bid(max(BIDS), TICK)


@pytest.mark.replay(env=CREDENTIALS)
async def test_orders_through_ccxt(replay_venue: Venue) -> None:
    stubs = replay_venue.stubs()
    executions = await listening_executions(replay_venue.stubs())
    order = limit_order(SYMBOL, common.SIDE_BUY, str(SIZE), RESTING, client_order_id="tm-kraken-1")
    first = await stubs.tf.PlaceOrder(order, timeout=CALL_TIMEOUT_S)
    assert first.order.status == tf.ORDER_STATUS_OPEN and not first.duplicate
    assert (first.order.client_order_id, first.order.symbol) == ("tm-kraken-1", SYMBOL)
    assert (D(first.order.size), D(first.order.price)) == (SIZE, D(RESTING))
    again = await stubs.tf.PlaceOrder(order, timeout=CALL_TIMEOUT_S)
    assert again.duplicate and again.order.order_id == first.order.order_id, "the first order wins"
    assert sorted(await open_order_ids(replay_venue.stubs())) == [first.order.order_id]

    balances = await stubs.tf.GetBalances(tf.GetBalancesRequest(), timeout=CALL_TIMEOUT_S)
    held = SIZE * D(RESTING)  # an open buy holds its quote value
    expected = {asset: (amount, D(0)) for asset, amount in BALANCES.items()}
    expected["CHF"] = (BALANCES["CHF"] - held, held)
    assert {b.asset: (D(b.free), D(b.locked)) for b in balances.balances} == expected

    canceled = await stubs.tf.CancelOrder(
        tf.CancelOrderRequest(client_order_id="tm-kraken-1"), timeout=CALL_TIMEOUT_S
    )
    assert canceled.order.order_id == first.order.order_id
    assert canceled.order.status == tf.ORDER_STATUS_CANCELED
    assert sorted(await open_order_ids(replay_venue.stubs())) == []

    placed = [
        await stubs.tf.PlaceOrder(
            limit_order(SYMBOL, common.SIDE_BUY, str(SIZE), price, client_order_id=f"tm-kraken-all-{n}"),
            timeout=CALL_TIMEOUT_S,
        )
        for n, price in enumerate([RESTING, str(D(RESTING) - TICK)])
    ]
    ids = sorted(p.order.order_id for p in placed)
    assert sorted(await open_order_ids(replay_venue.stubs())) == ids
    answer = await stubs.tf.CancelAllOrders(tf.CancelAllOrdersRequest(), timeout=CALL_TIMEOUT_S)
    assert sorted(o.order_id for o in answer.orders) == ids
    assert sorted(await open_order_ids(replay_venue.stubs())) == []
    fetched = await stubs.tf.GetOrder(tf.GetOrderRequest(order_id=ids[0]), timeout=CALL_TIMEOUT_S)
    assert fetched.order.status == tf.ORDER_STATUS_CANCELED

    for order_id in [first.order.order_id, *ids]:
        await executions.wait_for(order_id, tf.ORDER_STATUS_OPEN)
        await executions.wait_for(order_id, tf.ORDER_STATUS_CANCELED)
    log = replay_venue.log()
    assert SECRET not in log and "private watch_" not in log


@pytest.mark.replay(env=CREDENTIALS)
async def test_a_heartbeat_arms_krakens_cancel_all_orders_after(replay_venue: Venue) -> None:
    stubs = replay_venue.stubs()
    armed = await stubs.admin.Heartbeat(admin.HeartbeatRequest(ttl_ms=5_000), timeout=CALL_TIMEOUT_S)
    assert armed.dead_man.armed and armed.dead_man.ttl_ms == 5_000
    # Kraken's timeout is in seconds: 5 s.
    assert "Kraken CancelAllOrdersAfter timeout=5" in replay_venue.log()
    disarmed = await stubs.admin.Heartbeat(admin.HeartbeatRequest(ttl_ms=0), timeout=CALL_TIMEOUT_S)
    assert not disarmed.dead_man.armed
    log = replay_venue.log()
    assert "Kraken CancelAllOrdersAfter timeout=0" in log, "a timeout of 0 disarms Kraken's switch"
    assert "could not arm" not in log


async def dead_man(stubs: Stubs, ttl_ms: int) -> admin.DeadManStatus:
    answer = await stubs.admin.Heartbeat(admin.HeartbeatRequest(ttl_ms=ttl_ms), timeout=CALL_TIMEOUT_S)
    return answer.dead_man


def protective_sell(client_order_id: str) -> tf.PlaceOrderRequest:
    """A reduce-only sell far over the market (a take-profit): Kraken spot reads it back without
    the flag, the connector keeps it."""
    far_ask = str(max(ASKS) * 2)
    return limit_order(
        SYMBOL, common.SIDE_SELL, str(SIZE), far_ask, reduce_only=True, client_order_id=client_order_id
    )


@pytest.mark.replay(env=CREDENTIALS)
async def test_krakens_own_switch_goes_off_before_a_reduce_only_order_and_stays_off_while_it_rests(
    replay_venue: Venue,
) -> None:
    """Kraken's CancelAllOrdersAfter cancels every order, a stop-loss too: it is armed only while
    no reduce-only order rests, and switched off before one is placed."""
    stubs = replay_venue.stubs()
    armed = await dead_man(stubs, 5_000)
    assert "Kraken CancelAllOrdersAfter timeout=5" in replay_venue.log()
    placed = await stubs.tf.PlaceOrder(protective_sell("tm-kraken-tp"), timeout=CALL_TIMEOUT_S)
    assert placed.order.reduce_only and placed.order.status == tf.ORDER_STATUS_OPEN
    log = replay_venue.log()
    off, added = log.find("CancelAllOrdersAfter timeout=0"), log.find("AddOrder sell cl_ord_id=tm-kraken-tp")
    assert 0 <= off < added, "the switch must be off before the reduce-only order reaches Kraken"
    assert armed.native.armed and armed.native.available

    kept_off = await dead_man(stubs, 5_000)
    assert kept_off.armed and not kept_off.native.armed, kept_off
    assert "reduce-only" in kept_off.native.detail
    assert replay_venue.log().count("CancelAllOrdersAfter timeout=5") == 1, "re-armed over the protection"

    await stubs.tf.CancelOrder(tf.CancelOrderRequest(order_id=placed.order.order_id), timeout=CALL_TIMEOUT_S)
    assert (await dead_man(stubs, 5_000)).native.armed, "armed again once no reduce-only order rests"
    assert replay_venue.log().count("CancelAllOrdersAfter timeout=5") == 2
    assert not (await dead_man(stubs, 0)).native.armed


@pytest.mark.replay(env=CREDENTIALS)
async def test_the_dead_man_switch_keeps_the_reduce_only_order_and_says_why_it_cancelled(
    replay_venue: Venue,
) -> None:
    stubs = replay_venue.stubs()
    executions = await listening_executions(stubs)
    protection = await stubs.tf.PlaceOrder(protective_sell("tm-kraken-sl"), timeout=CALL_TIMEOUT_S)
    entry = await stubs.tf.PlaceOrder(
        limit_order(SYMBOL, common.SIDE_BUY, str(SIZE), RESTING, client_order_id="tm-kraken-entry"),
        timeout=CALL_TIMEOUT_S,
    )
    armed = await dead_man(stubs, 1_000)
    seen = await executions.wait_for(entry.order.order_id, tf.ORDER_STATUS_CANCELED, timeout_s=10.0)
    listed = await stubs.tf.ListOpenOrders(tf.ListOpenOrdersRequest(), timeout=CALL_TIMEOUT_S)
    assert [(o.order_id, o.reduce_only) for o in listed.orders] == [(protection.order.order_id, True)]
    assert seen[-1].order.status_reason.startswith("dead-man: no heartbeat within 1000 ms")
    assert armed.armed and not armed.native.armed, "Kraken's switch would cancel the protection"
    status = await stubs.admin.GetStatus(admin.GetStatusRequest(), timeout=CALL_TIMEOUT_S)
    assert (status.dead_man.trips, status.dead_man.last_trip_canceled, status.dead_man.last_trip_kept) == (
        1,
        1,
        1,
    )
    assert "CancelAllOrdersAfter timeout=1" not in replay_venue.log()


@pytest.mark.replay(env=CREDENTIALS)
async def test_a_fill_comes_over_the_private_stream_once(replay_venue: Venue) -> None:
    stubs = replay_venue.stubs()
    executions = await listening_executions(replay_venue.stubs())
    await collect(
        stubs, [SYMBOL], played=replay_venue.log_path
    )  # plays the whole session: the stand-in's book is the capture's last
    best_bid, best_ask = max(BIDS), min(ASKS)
    order = limit_order(SYMBOL, common.SIDE_BUY, str(SIZE), str(best_ask * 2), client_order_id="tm-fill-1")
    placed = await stubs.tf.PlaceOrder(order, timeout=CALL_TIMEOUT_S)
    assert placed.order.status == tf.ORDER_STATUS_FILLED
    assert (D(placed.order.filled_size), D(placed.order.average_fill_price)) == (SIZE, best_ask)
    fill, status = await _the_fill(executions, placed.order.order_id)
    assert (fill.client_order_id, fill.symbol, fill.side) == ("tm-fill-1", SYMBOL, common.SIDE_BUY)
    assert (D(fill.price), D(fill.size)) == (best_ask, SIZE)
    assert (D(fill.fee), fill.fee_asset) == (SIZE * best_ask * TAKER_RATE, "CHF"), "a buy pays in the quote"
    assert fill.liquidity == tf.LIQUIDITY_TAKER and fill.trade_id
    assert status == tf.ORDER_STATUS_FILLED

    sell = tf.PlaceOrderRequest(
        symbol=SYMBOL,
        side=common.SIDE_SELL,
        type=tf.ORDER_TYPE_MARKET,
        size=str(SIZE),
        client_order_id="tm-fill-2",
    )
    sold = await stubs.tf.PlaceOrder(sell, timeout=CALL_TIMEOUT_S)
    assert sold.order.status == tf.ORDER_STATUS_FILLED and D(sold.order.average_fill_price) == best_bid
    sale, status = await _the_fill(executions, sold.order.order_id)
    assert (D(sale.price), D(sale.size), sale.side) == (best_bid, SIZE, common.SIDE_SELL)
    assert (D(sale.fee), sale.fee_asset) == (SIZE * TAKER_RATE, "BTC"), "a sell pays in the base"
    assert status == tf.ORDER_STATUS_FILLED

    await asyncio.sleep(0.5)  # any late duplicate would have arrived by now
    for order_id in (placed.order.order_id, sold.order.order_id):
        fills = [e for e in executions.of(order_id) if e.HasField("fill")]
        assert len(fills) == 1, "each fill once"
        assert executions.of(order_id)[-1].order.status == tf.ORDER_STATUS_FILLED


async def _the_fill(executions: Executions, order_id: str) -> tuple[tf.Fill, int]:
    async def found() -> tf.Execution | None:
        return next((e for e in executions.of(order_id) if e.HasField("fill")), None)

    execution = await until(found, CALL_TIMEOUT_S, what="a fill on the private stream")
    return execution.fill, execution.order.status


@pytest.mark.replay(env=CREDENTIALS, faults=["slow@1"], config="request_timeout_s = 1\n")
async def test_an_order_whose_answer_times_out_is_found_not_placed_twice(replay_venue: Venue) -> None:
    stubs = replay_venue.stubs()
    order = limit_order(SYMBOL, common.SIDE_BUY, str(SIZE), RESTING, client_order_id="tm-slow-1")
    # Kraken takes the order but answers after 3 s, past the 1 s timeout: the connector asks for
    # the order by its cl_ord_id before retrying, and finds it.
    placed = await stubs.tf.PlaceOrder(order, timeout=CALL_TIMEOUT_S)
    assert placed.order.client_order_id == "tm-slow-1" and placed.order.status == tf.ORDER_STATUS_OPEN
    listed = await stubs.tf.ListOpenOrders(tf.ListOpenOrdersRequest(), timeout=CALL_TIMEOUT_S)
    assert [o.client_order_id for o in listed.orders] == ["tm-slow-1"], "exactly one order at the venue"
    assert "no clear answer" in replay_venue.log()
