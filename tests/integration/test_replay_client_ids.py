"""One order per client_order_id on every live venue, whatever symbol a second placement names.

(Issue 12, item 17: the connector looked a client order id up only within the request's
symbol, so the same id placed orders on two symbols of one venue, both duplicate = false;
the stand-ins, like the exchanges they stand in for, accept a client id again on another
symbol.) Each case runs the venue against its recorded session through the real ccxt client,
with credentials, and places the same id on two of its symbols: the second placement must
hand back the first order with duplicate = true, and the venue must hold one order.

The orders rest: no market subscriber starts the replay, so the stand-ins' books are empty.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest

from tests.integration.replay import capture_files, start_replay_venue
from tests.integration.replay_keys import coinbase_keys, replay_keys
from tests.integration.support import CALL_TIMEOUT_S, Stubs, Venue, limit_order, stop_venue
from trademesh.common.v1 import common_pb2 as common
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # not in the fast tier (./dev test --fast)

BUY, SELL = common.SIDE_BUY, common.SIDE_SELL


@dataclass(frozen=True)
class Case:
    venue: str
    capture: str
    env: dict[str, str]
    # (symbol, side, size, price) of the first and of the second placement
    first: tuple[str, common.Side.ValueType, str, str]
    second: tuple[str, common.Side.ValueType, str, str]
    config: str | None = None  # the symbols to run, when the capture streams only one


CASES = [
    Case("binance", "BINANCE", replay_keys("BINANCE"),
         ("NKN/USDT", BUY, "100", "0.3"), ("LRC/BTC", SELL, "10", "0.001")),
    Case("binanceusdm", "BINANCE_FUTURES", replay_keys("BINANCEUSDM"),
         ("SUSHI/USDT:USDT", BUY, "10", "7.5"), ("CTK/USDT:USDT", SELL, "10", "2")),
    Case("bybit", "BYBIT", replay_keys("BYBIT"),
         ("BTC/USDT", BUY, "0.001", "50000"), ("ETH/USDT", BUY, "0.01", "1000"),
         'symbols = ["BTC/USDT", "ETH/USDT"]\n'),
    Case("kraken", "KRAKEN", replay_keys("KRAKEN", "cmVwbGF5LWtyYWtlbi1zZWNyZXQtOWYzYQ=="),
         ("BTC/CHF", BUY, "0.001", "20000"), ("ETH/CHF", BUY, "0.01", "1000")),
    Case("okx", "OKX", replay_keys("OKX", passphrase=True),
         ("BTC/USDT", BUY, "0.001", "30000"), ("ETH/USDT", BUY, "0.01", "1000"),
         'symbols = ["BTC/USDT", "ETH/USDT"]\n'),
    Case("okx-swap", "OKX_SWAP", replay_keys("OKX_SWAP", passphrase=True),
         ("BTC/USDT:USDT", BUY, "2", "30000"), ("ETH/USDT:USDT", BUY, "2", "1000"),
         'symbols = ["BTC/USDT:USDT", "ETH/USDT:USDT"]\n'),
    Case("coinbase", "COINBASE", coinbase_keys(),
         ("BTC/USD", BUY, "0.01", "50000"), ("ETH/USD", BUY, "0.01", "1000"),
         'symbols = ["BTC/USD", "ETH/USD"]\n'),
    Case("deribit", "DERIBIT", replay_keys("DERIBIT"),
         ("BTC/USD:BTC-210924-8000-P", BUY, "3", "0.0005"),
         ("ETH/USD:ETH-210730-2800-C", BUY, "2", "0.0005")),
]  # fmt: skip


@pytest.fixture(params=CASES, ids=[c.venue for c in CASES])
async def case_venue(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[tuple[Case, Venue]]:
    case: Case = request.param
    venue, log = start_replay_venue(
        tmp_path, case.venue, capture_files(case.capture), env=case.env, config=case.config
    )
    try:
        yield case, venue
    finally:
        await stop_venue(venue, log)


async def place(
    stubs: Stubs, order: tuple[str, common.Side.ValueType, str, str], client_order_id: str
) -> tf.PlaceOrderResponse:
    symbol, side, size, price = order
    request = limit_order(symbol, side, size, price, client_order_id=client_order_id)
    answer: tf.PlaceOrderResponse = await stubs.tf.PlaceOrder(request, timeout=CALL_TIMEOUT_S)
    return answer


async def open_orders(stubs: Stubs) -> list[tuple[str, str]]:
    listed = await stubs.tf.ListOpenOrders(tf.ListOpenOrdersRequest(), timeout=CALL_TIMEOUT_S)
    return sorted((o.order_id, o.symbol) for o in listed.orders)


async def test_one_client_order_id_is_one_order_across_symbols(case_venue: tuple[Case, Venue]) -> None:
    case, venue = case_venue
    stubs = venue.stubs()
    cid = f"tm-one-{case.venue.replace('-', '')}-1"
    first = await place(stubs, case.first, cid)
    assert not first.duplicate and first.order.status == tf.ORDER_STATUS_OPEN
    assert (first.order.symbol, first.order.client_order_id) == (case.first[0], cid)

    second = await place(stubs, case.second, cid)
    assert second.duplicate, f"a second order {second.order.order_id} on {second.order.symbol}"
    assert (second.order.order_id, second.order.symbol) == (first.order.order_id, case.first[0])
    assert await open_orders(stubs) == [(first.order.order_id, case.first[0])]
    found = await stubs.tf.GetOrder(tf.GetOrderRequest(client_order_id=cid), timeout=CALL_TIMEOUT_S)
    assert found.order.order_id == first.order.order_id

    # Once canceled, the id still names that order: placing it again on the other symbol
    # hands the canceled order back instead of a new one.
    await stubs.tf.CancelOrder(tf.CancelOrderRequest(order_id=first.order.order_id), timeout=CALL_TIMEOUT_S)
    third = await place(stubs, case.second, cid)
    assert third.duplicate and third.order.order_id == first.order.order_id
    assert third.order.status == tf.ORDER_STATUS_CANCELED
    assert await open_orders(stubs) == []
    # A fresh id on the second symbol is a new order as usual.
    fresh = await place(stubs, case.second, cid.replace("-1", "-2"))
    assert not fresh.duplicate and Decimal(fresh.order.size) == Decimal(case.second[2])
