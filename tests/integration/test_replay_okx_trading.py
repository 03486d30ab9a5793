"""TradeFlow on OKX spot and swaps against the replay stand-in, through the real ccxt.pro client.

Orders go over OKX's v5 REST formats, their changes come back over the private `orders`
channel. Expected values come from the capture itself (the instruments' contract values
and tick sizes, the book as the replay leaves it, computed with Decimal by the Expected
of test_replay_okx) and from the stand-in's documented account: fixed balances and
OKX's regular taker rates (0.1 % spot, charged in what the order receives; 0.05 % swaps,
in the settlement currency).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import grpc
import pytest

from tests.integration.replay import capture_files, collect, running_replay_venue
from tests.integration.support import (
    CALL_TIMEOUT_S,
    Venue,
    far_bid,
    limit_order,
    listening_executions,
    open_order_ids,
    until,
)
from tests.integration.test_replay_okx import VENUES, Expected
from trademesh.admin.v1 import admin_pb2 as admin
from trademesh.common.v1 import common_pb2 as common
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

pytestmark = [pytest.mark.integration, pytest.mark.slow]

D = Decimal
# What one test order asks: 0.001 BTC on spot, 2 contracts (of 0.01 BTC) on swaps.
SIZES = {"okx": "0.001", "okx-swap": "2"}
TAKER_RATE = {"SPOT": D("0.001"), "SWAP": D("0.0005")}
BALANCES = {"USDT": D(100000), "BTC": D(2)}
CREDENTIALS = {
    f"TRADEMESH_{prefix}_{field}": f"replay-{field.lower()}"
    for prefix in ("OKX", "OKX_SWAP")
    for field in ("API_KEY", "API_SECRET", "PASSPHRASE")
}


@dataclass(frozen=True)
class Market:
    """What the capture says of a venue's instrument, and the book the replay ends with."""

    name: str
    symbol: str
    inst_type: str
    base: str
    quote: str
    ct_val: D
    tick: D
    size: str
    bids: dict[D, D]
    asks: dict[D, D]


def instrument_row(files: list[Path], native: str) -> dict[str, str]:
    for path in files:
        for line in path.read_text().splitlines():
            url, _, rest = line.partition(" -> ")
            if "/api/v5/public/instruments" in url:
                rows = json.loads(rest.split(": ", 1)[1])["data"]
                return next(row for row in rows if row["instId"] == native)
    raise LookupError(f"no instrument {native} in the capture")


def market_of(name: str) -> Market:
    prefix, native, symbol, column = VENUES[name]
    files = capture_files(prefix)
    row = instrument_row(files, native)
    spot = row["instType"] == "SPOT"
    bids, asks = Expected(files, column).book
    return Market(
        name=name,
        symbol=symbol,
        inst_type=row["instType"],
        base=row["baseCcy"] if spot else row["ctValCcy"],
        quote=row["quoteCcy"] if spot else row["settleCcy"],
        ct_val=D(1) if spot else D(row["ctVal"]),
        tick=D(row["tickSz"]),
        size=SIZES[name],
        bids=bids,
        asks=asks,
    )


@pytest.fixture(params=list(VENUES))
async def replay_venue(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[tuple[Market, Venue]]:
    name = request.param
    async with running_replay_venue(tmp_path, request, name, capture_files(VENUES[name][0])) as venue:
        yield market_of(name), venue


@pytest.mark.replay(env=CREDENTIALS)
async def test_orders_through_ccxt(replay_venue: tuple[Market, Venue]) -> None:
    market, venue = replay_venue
    stubs = venue.stubs()
    executions = await listening_executions(stubs)
    price = far_bid(max(market.bids), market.tick)
    order = limit_order(market.symbol, common.SIDE_BUY, market.size, price, client_order_id="tm-okx-dup-1")
    first = await stubs.tf.PlaceOrder(order, timeout=CALL_TIMEOUT_S)
    assert first.order.status == tf.ORDER_STATUS_OPEN and not first.duplicate
    assert (first.order.client_order_id, first.order.symbol) == ("tm-okx-dup-1", market.symbol)
    assert (D(first.order.size), D(first.order.price)) == (D(market.size), D(price))
    again = await stubs.tf.PlaceOrder(order, timeout=CALL_TIMEOUT_S)
    assert again.duplicate and again.order.order_id == first.order.order_id
    assert await open_order_ids(stubs) == [first.order.order_id]

    balances = await stubs.tf.GetBalances(tf.GetBalancesRequest(), timeout=CALL_TIMEOUT_S)
    assert {b.asset: (D(b.free), D(b.locked)) for b in balances.balances} == {
        asset: (amount, D(0)) for asset, amount in BALANCES.items()
    }
    positions = await stubs.tf.GetPositions(tf.GetPositionsRequest(), timeout=CALL_TIMEOUT_S)
    assert list(positions.positions) == [], "nothing has filled"

    lower = str(D(price) - market.tick)
    second = await stubs.tf.PlaceOrder(
        limit_order(market.symbol, common.SIDE_BUY, market.size, lower), timeout=CALL_TIMEOUT_S
    )
    canceled = await stubs.tf.CancelOrder(
        tf.CancelOrderRequest(client_order_id="tm-okx-dup-1"), timeout=CALL_TIMEOUT_S
    )
    assert canceled.order.order_id == first.order.order_id
    assert canceled.order.status == tf.ORDER_STATUS_CANCELED
    assert await open_order_ids(stubs) == [second.order.order_id]
    all_canceled = await stubs.tf.CancelAllOrders(tf.CancelAllOrdersRequest(), timeout=CALL_TIMEOUT_S)
    assert [o.order_id for o in all_canceled.orders] == [second.order.order_id]
    assert await open_order_ids(stubs) == []
    fetched = await stubs.tf.GetOrder(
        tf.GetOrderRequest(order_id=second.order.order_id), timeout=CALL_TIMEOUT_S
    )
    assert fetched.order.status == tf.ORDER_STATUS_CANCELED and D(fetched.order.price) == D(lower)

    for placed in (first, second):
        await executions.wait_for(placed.order.order_id, tf.ORDER_STATUS_OPEN)
        await executions.wait_for(placed.order.order_id, tf.ORDER_STATUS_CANCELED)
    log = venue.log()
    assert "replay-api_secret" not in log and "private watch_" not in log


@pytest.mark.replay(env=CREDENTIALS)
async def test_the_dead_man_keeps_a_reduce_only_order_and_okxs_own_switch_stays_off_over_it(
    replay_venue: tuple[Market, Venue],
) -> None:
    """OKX's cancel-all-after cancels every order-book order, a take-profit too: it is switched
    off before a reduce-only order goes out and stays off while one rests; the runtime's own
    trip cancels the entry and keeps the reduce-only order, as OKX reads it back."""
    market, venue = replay_venue
    stubs = venue.stubs()
    executions = await listening_executions(stubs)
    await stubs.admin.Heartbeat(admin.HeartbeatRequest(ttl_ms=2_000), timeout=CALL_TIMEOUT_S)
    assert venue.log().count("cancel-all-after timeOut=10") == 1
    far_ask = str((max(market.asks) * 2).quantize(market.tick))
    take = limit_order(market.symbol, common.SIDE_SELL, market.size, far_ask, reduce_only=True)
    kept = (await stubs.tf.PlaceOrder(take, timeout=CALL_TIMEOUT_S)).order
    assert kept.reduce_only and kept.status == tf.ORDER_STATUS_OPEN
    assert "cancel-all-after timeOut=0" in venue.log(), "OKX's switch left armed over the protection"
    entry = limit_order(market.symbol, common.SIDE_BUY, market.size, far_bid(max(market.bids), market.tick))
    placed = (await stubs.tf.PlaceOrder(entry, timeout=CALL_TIMEOUT_S)).order

    armed = await stubs.admin.Heartbeat(admin.HeartbeatRequest(ttl_ms=1_000), timeout=CALL_TIMEOUT_S)
    assert armed.dead_man.armed and not armed.dead_man.native.armed, armed
    seen = await executions.wait_for(placed.order_id, tf.ORDER_STATUS_CANCELED, timeout_s=10.0)
    assert await open_order_ids(stubs) == [kept.order_id], "the trip took the reduce-only order"
    assert seen[-1].order.status_reason.startswith("dead-man: no heartbeat within 1000 ms")
    assert venue.log().count("cancel-all-after timeOut=10") == 1, "re-armed over the protection"


@pytest.mark.replay(env=CREDENTIALS)
async def test_a_fill_comes_over_the_private_stream_once(replay_venue: tuple[Market, Venue]) -> None:
    market, venue = replay_venue
    stubs = venue.stubs()
    # Play the whole session first: the stand-in's book is then the capture's last book.
    await collect(stubs, [market.symbol], channels=[md.CHANNEL_BOOK], played=venue.log_path)
    executions = await listening_executions(stubs)
    best_ask = min(market.asks)
    order = limit_order(
        market.symbol, common.SIDE_BUY, market.size, str(best_ask * 2), client_order_id="tm-okx-fill-1"
    )
    placed = await stubs.tf.PlaceOrder(order, timeout=CALL_TIMEOUT_S)
    assert placed.order.status == tf.ORDER_STATUS_FILLED
    assert (D(placed.order.filled_size), D(placed.order.average_fill_price)) == (D(market.size), best_ask)

    async def the_fill() -> tf.Execution | None:
        return next((e for e in executions.of(placed.order.order_id) if e.HasField("fill")), None)

    execution = await until(the_fill, CALL_TIMEOUT_S, what="a fill on the private stream")
    fill = execution.fill
    assert (fill.client_order_id, fill.symbol, fill.side) == ("tm-okx-fill-1", market.symbol, common.SIDE_BUY)
    assert (D(fill.price), D(fill.size)) == (best_ask, D(market.size))
    # Spot buys pay in the base currency they receive; swaps in USDT on the contracts' value.
    if market.inst_type == "SPOT":
        fee, fee_asset = D(market.size) * TAKER_RATE["SPOT"], market.base
    else:
        fee, fee_asset = D(market.size) * market.ct_val * best_ask * TAKER_RATE["SWAP"], market.quote
    assert (D(fill.fee), fill.fee_asset) == (fee, fee_asset)
    assert fill.liquidity == tf.LIQUIDITY_TAKER and fill.trade_id
    assert execution.order.status == tf.ORDER_STATUS_FILLED
    await asyncio.sleep(0.5)  # any late duplicate would have arrived by now
    fills = [e for e in executions.of(placed.order.order_id) if e.HasField("fill")]
    assert len(fills) == 1, "each fill once, though REST and the private stream both tell of it"
    assert executions.of(placed.order.order_id)[-1].order.status == tf.ORDER_STATUS_FILLED

    positions = await stubs.tf.GetPositions(tf.GetPositionsRequest(), timeout=CALL_TIMEOUT_S)
    found = [(p.symbol, D(p.size), D(p.entry_price), D(p.realized_pnl)) for p in positions.positions]
    if market.inst_type == "SPOT":
        assert found == []
    else:  # long the contracts' value in BTC, entered at the fill, nothing reduced yet
        assert found == [(market.symbol, D(market.size) * market.ct_val, best_ask, D(0))]

    # A market sell of the same size takes the best bid; fees are then in the quote currency.
    sell = tf.PlaceOrderRequest(
        symbol=market.symbol, side=common.SIDE_SELL, type=tf.ORDER_TYPE_MARKET, size=market.size
    )
    sold = await stubs.tf.PlaceOrder(sell, timeout=CALL_TIMEOUT_S)
    assert sold.order.status == tf.ORDER_STATUS_FILLED and D(sold.order.average_fill_price) == max(
        market.bids
    )

    async def the_sale() -> tf.Execution | None:
        return next((e for e in executions.of(sold.order.order_id) if e.HasField("fill")), None)

    sale = (await until(the_sale, CALL_TIMEOUT_S, what="the sale's fill")).fill
    rate = TAKER_RATE[market.inst_type]
    assert (D(sale.price), D(sale.size), sale.side) == (max(market.bids), D(market.size), common.SIDE_SELL)
    assert (D(sale.fee), sale.fee_asset) == (
        D(market.size) * market.ct_val * max(market.bids) * rate,
        market.quote,
    )
    positions = await stubs.tf.GetPositions(tf.GetPositionsRequest(), timeout=CALL_TIMEOUT_S)
    assert list(positions.positions) == [], "the sale closed the swap position"


@pytest.mark.replay(env=CREDENTIALS, faults=["slow@1"], config="request_timeout_s = 1\n")
async def test_an_order_whose_answer_times_out_is_found_not_placed_twice(
    replay_venue: tuple[Market, Venue],
) -> None:
    market, venue = replay_venue
    stubs = venue.stubs()
    price = far_bid(max(market.bids), market.tick)
    order = limit_order(market.symbol, common.SIDE_BUY, market.size, price, client_order_id="tm-okx-slow-1")
    # The stand-in takes the order but answers after 3 s, past the 1 s timeout: the connector
    # asks OKX for the order by its clOrdId before retrying, and finds it.
    placed = await stubs.tf.PlaceOrder(order, timeout=CALL_TIMEOUT_S)
    assert placed.order.client_order_id == "tm-okx-slow-1" and placed.order.status == tf.ORDER_STATUS_OPEN
    listed = await stubs.tf.ListOpenOrders(tf.ListOpenOrdersRequest(), timeout=CALL_TIMEOUT_S)
    assert [o.client_order_id for o in listed.orders] == ["tm-okx-slow-1"], "exactly one order at the venue"
    assert "no clear answer" in venue.log()


@pytest.mark.replay(env=CREDENTIALS)
async def test_a_live_order_is_amended_in_place_through_ccxt(replay_venue: tuple[Market, Venue]) -> None:
    """TradeFlow.AmendOrder through ccxt edit_order (POST /api/v5/trade/amend-order): the same
    order (ordId and clOrdId) at its new price and size, read back after OKX's acknowledgement,
    and heard on the private stream; a filled or cancelled order is refused."""
    market, venue = replay_venue
    stubs = venue.stubs()
    status = await stubs.admin.GetStatus(admin.GetStatusRequest(), timeout=CALL_TIMEOUT_S)
    assert status.capabilities.amend == admin.AMEND_MODE_NATIVE
    executions = await listening_executions(stubs)
    price = D(far_bid(max(market.bids), market.tick))
    order = limit_order(
        market.symbol, common.SIDE_BUY, market.size, str(price), client_order_id="tm-okx-amend-1"
    )
    placed = (await stubs.tf.PlaceOrder(order, timeout=CALL_TIMEOUT_S)).order
    bigger = str(D(market.size) * 2)
    request = tf.AmendOrderRequest(
        client_order_id="tm-okx-amend-1", price=str(price - market.tick), size=bigger
    )
    amended = await stubs.tf.AmendOrder(request, timeout=CALL_TIMEOUT_S)
    assert not amended.replaced
    assert (amended.order.order_id, amended.order.client_order_id) == (placed.order_id, "tm-okx-amend-1")
    assert (D(amended.order.price), D(amended.order.size)) == (price - market.tick, D(bigger))
    assert amended.order.status == tf.ORDER_STATUS_OPEN

    async def amendment_heard() -> tf.Execution | None:
        return next((e for e in executions.of(placed.order_id) if D(e.order.size) == D(bigger)), None)

    await until(amendment_heard, CALL_TIMEOUT_S, what="the amendment on the private stream")
    await stubs.tf.CancelOrder(tf.CancelOrderRequest(order_id=placed.order_id), timeout=CALL_TIMEOUT_S)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stubs.tf.AmendOrder(
            tf.AmendOrderRequest(order_id=placed.order_id, size=bigger), timeout=CALL_TIMEOUT_S
        )
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION


@pytest.mark.replay(env=CREDENTIALS)
async def test_the_account_is_pushed_and_streamed_after_a_fill(replay_venue: tuple[Market, Venue]) -> None:
    """With credentials OKX's account is ACCOUNT_FEED_PUSH: ccxt watch_balance and
    watch_positions hold the private `account` and `positions` channels open (the stand-in
    pushes both after each fill), and StreamAccount starts with a snapshot, then a swap's fill
    moves its position on the stream."""
    market, venue = replay_venue
    stubs = venue.stubs()
    status = await stubs.admin.GetStatus(admin.GetStatusRequest(), timeout=CALL_TIMEOUT_S)
    assert status.capabilities.account_feed == admin.ACCOUNT_FEED_PUSH
    await collect(stubs, [market.symbol], channels=[md.CHANNEL_BOOK], played=venue.log_path)
    call = stubs.tf.StreamAccount(tf.StreamAccountRequest())
    try:
        first = await _next_account(call)
        assert first.snapshot
        assert {b.asset: D(b.total) for b in first.balances} == dict(BALANCES)
        order = limit_order(market.symbol, common.SIDE_BUY, market.size, str(min(market.asks) * 2))
        placed = await stubs.tf.PlaceOrder(order, timeout=CALL_TIMEOUT_S)
        assert placed.order.status == tf.ORDER_STATUS_FILLED
        if market.inst_type == "SWAP":
            change = await _next_account(call)
            assert not change.snapshot
            held = D(market.size) * market.ct_val  # contracts of ct_val each
            assert [(p.symbol, D(p.size)) for p in change.positions] == [(market.symbol, held)]
    finally:
        call.cancel()

    async def subscribed() -> bool | None:
        log = venue.log()
        return True if "subscribe account:ANY" in log and "subscribe positions:ANY" in log else None

    await until(subscribed, CALL_TIMEOUT_S, what="the account and positions channels subscribed")


async def _next_account(call: Any) -> tf.StreamAccountResponse:
    response = await asyncio.wait_for(call.read(), CALL_TIMEOUT_S)
    assert isinstance(response, tf.StreamAccountResponse), response
    return response
