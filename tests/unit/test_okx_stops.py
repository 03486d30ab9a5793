"""OkxExchange (ccxt.pro okx, mended) on OKX's algo orders: what it sends and how it reads them.

The real ccxt client, offline: markets are set from an OKX instrument row, requests are
built by create_order_request, and OKX's answers and `orders-algo` pushes (as OKX writes
them) are parsed or handled as if they came over the wire.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import ccxt
import pytest

from trademesh.core.domain.model import OrderStatus, OrderType
from trademesh.venues.live.convert import order_from_ccxt
from trademesh.venues.okx.exchange import OkxExchange
from trademesh.venues.okx.spec import okx_options, stop_params
from trademesh.venues.okx.standin.synthesized import instrument_row
from trademesh.venues.replay.synthesis import SeenMarket

SYMBOL = "BTC/USDT:USDT"


@pytest.fixture
async def exchange() -> AsyncIterator[Any]:
    okx = OkxExchange({"options": okx_options("swap")})
    row = instrument_row(SeenMarket("BTC-USDT-SWAP", 1, 2))
    okx.set_markets(okx.parse_markets([row]))
    yield okx
    await okx.close()


def _algo(**fields: str) -> dict[str, Any]:
    """An algo order as GET /trade/order-algo and the `orders-algo` channel write it."""
    base = {
        "instType": "SWAP",
        "instId": "BTC-USDT-SWAP",
        "algoId": "2190000000000000001",
        "algoClOrdId": "tmokx1",
        "clOrdId": "",
        "ordId": "",
        "ordType": "trigger",
        "side": "sell",
        "sz": "2",
        "triggerPx": "50000.5",
        "triggerPxType": "last",
        "ordPx": "-1",
        "state": "live",
        "reduceOnly": "true",
        "tdMode": "cross",
        "cTime": "1763950000000",
        "uTime": "1763950000000",
    }
    return {**base, **fields}


def test_a_stop_goes_to_the_algo_endpoint_with_its_client_id_as_algo_cl_ord_id(exchange: Any) -> None:
    params = {"clientOrderId": "tmokx1", "reduceOnly": True, **stop_params("50000.5")}
    request = exchange.create_order_request(SYMBOL, "market", "sell", 2, None, params)
    assert {
        k: request.get(k) for k in ("ordType", "triggerPx", "orderPx", "triggerPxType", "algoClOrdId")
    } == {
        "ordType": "trigger",
        "triggerPx": "50000.5",
        "orderPx": "-1",
        "triggerPxType": "last",
        "algoClOrdId": "tmokx1",
    }
    assert "clOrdId" not in request and request["reduceOnly"] is True and request["tdMode"] == "cross"
    limit = exchange.create_order_request(SYMBOL, "limit", "buy", 2, 52000, {**params, "reduceOnly": False})
    assert (limit["ordType"], limit["orderPx"], "px" in limit) == ("trigger", "52000", False)


@pytest.mark.parametrize("tif", ["FOK", "IOC"])
def test_a_stop_with_a_time_in_force_is_refused_not_dropped(exchange: Any, tif: str) -> None:
    params = {"clientOrderId": "tmokx1", "timeInForce": tif, **stop_params("50000.5")}
    with pytest.raises(ccxt.InvalidOrder, match="takes no time in force"):
        exchange.create_order_request(SYMBOL, "limit", "sell", 2, 50000, params)


def test_an_ordinary_order_keeps_its_cl_ord_id(exchange: Any) -> None:
    request = exchange.create_order_request(SYMBOL, "limit", "buy", 2, 40000, {"clientOrderId": "tmokx2"})
    assert (request["ordType"], request["clOrdId"], "algoClOrdId" in request) == ("limit", "tmokx2", False)


@pytest.mark.parametrize(
    ("fields", "kind", "price"),
    [
        ({}, OrderType.STOP_MARKET, None),
        ({"ordPx": "52000", "side": "buy", "reduceOnly": "false"}, OrderType.STOP_LIMIT, Decimal(52000)),
    ],
)
def test_an_algo_order_reads_as_a_stop_with_its_client_id(
    exchange: Any, fields: dict[str, str], kind: OrderType, price: Decimal | None
) -> None:
    order = order_from_ccxt("okx-swap", exchange.parse_order(_algo(**fields)))
    assert (order.order_id, order.client_order_id, order.type, order.price) == (
        "2190000000000000001",
        "tmokx1",
        kind,
        price,
    )
    assert (order.trigger_price, order.status, order.size) == (
        Decimal("50000.5"),
        OrderStatus.OPEN,
        Decimal(2),
    )


async def test_an_orders_algo_push_joins_the_orders_the_connector_reads(exchange: Any) -> None:
    client = exchange.client("wss://ws.okx.com:8443/ws/v5/business")
    push = {
        "arg": {"channel": "orders-algo", "instType": "ANY", "uid": "447750382161920"},
        "data": [_algo(state="canceled")],
    }
    exchange.handle_message(client, push)
    found = [order_from_ccxt("okx-swap", raw) for raw in exchange.orders]
    assert [(o.order_id, o.client_order_id, o.type, o.status) for o in found] == [
        ("2190000000000000001", "tmokx1", OrderType.STOP_MARKET, OrderStatus.CANCELED)
    ]
    assert found[0].trigger_price == Decimal("50000.5") and found[0].reduce_only
