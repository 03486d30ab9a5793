"""A live venue that keeps its stops apart (LiveSpec.stop_book: Binance USD-M's algo orders): the
connector lists, looks up and cancels in both books, and a venue without one asks one book only.

The exchange here is a stand-in for ccxt's client (a third-party library), answering as ccxt's
binanceusdm does: trigger=True in the params reaches the algo orders, anything else the
matching engine's; an algo cancel answers an acknowledgement without a status.
"""

from __future__ import annotations

from typing import Any

import ccxt.pro
import pytest

from trademesh.core.domain.model import OrderStatus, OrderType
from trademesh.core.platform.errors import NotFound
from trademesh.venues.binance.spec import SPEC as BINANCE_SPOT
from trademesh.venues.binanceusdm.spec import SPEC as BINANCE_USDM
from trademesh.venues.live.trading import LiveTrading
from trademesh.venues.runtime.venue import OrderRef

SYMBOL = "BTC/USDT:USDT"


def _raw(order_id: str, client_id: str, trigger: float | None = None) -> dict[str, Any]:
    return {
        "id": order_id,
        "clientOrderId": client_id,
        "symbol": SYMBOL,
        "side": "sell",
        "type": "market" if trigger else "limit",
        "price": None if trigger else 90000.0,
        "triggerPrice": trigger,
        "amount": 0.01,
        "filled": 0.0,
        "status": "open",
    }


class TwoBooks:
    """ccxt's binanceusdm over one account: ordinary orders, and algo (trigger) orders."""

    has = {"cancelAllOrders": True}

    def __init__(self) -> None:
        self.books: dict[bool, dict[str, dict[str, Any]]] = {
            False: {"1": _raw("1", "tm-limit")},
            True: {"7": _raw("7", "tm-stop", trigger=80000.0)},
        }
        self.calls: list[tuple[str, bool]] = []

    def _book(self, name: str, params: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
        trigger = bool((params or {}).get("trigger"))
        self.calls.append((name, trigger))
        return self.books[trigger]

    async def fetch_open_orders(
        self, symbol: str, since: Any = None, limit: Any = None, params: dict[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        return [o for o in self._book("fetch_open_orders", params).values() if o["status"] == "open"]

    async def fetch_order(
        self, order_id: str | None, symbol: str, params: dict[str, Any] | None = None
    ) -> Any:
        book = self._book("fetch_order", params)
        client_id = (params or {}).get("clientOrderId")
        found = [
            o for o in book.values() if o["id"] == order_id or (client_id and o["clientOrderId"] == client_id)
        ]
        if not found:
            raise ccxt.pro.OrderNotFound("Order does not exist.")
        return dict(found[0])

    async def cancel_order(self, order_id: str, symbol: str, params: dict[str, Any] | None = None) -> Any:
        book = self._book("cancel_order", params)
        if order_id not in book:
            raise ccxt.pro.OrderNotFound("Unknown order sent.")
        book[order_id]["status"] = "canceled"
        if (params or {}).get("trigger"):  # {"algoId", "clientAlgoId", "code": "200", "msg": "success"}
            return {"id": order_id, "clientOrderId": book[order_id]["clientOrderId"], "status": None}
        return dict(book[order_id])

    async def cancel_all_orders(self, symbol: str, params: dict[str, Any] | None = None) -> Any:
        for order in self._book("cancel_all_orders", params).values():
            order["status"] = "canceled"
        return []


@pytest.fixture(autouse=True)
def credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for venue in ("BINANCEUSDM", "BINANCE"):
        monkeypatch.setenv(f"TRADEMESH_{venue}_API_KEY", "key")


async def test_open_orders_come_from_both_books() -> None:
    trading = LiveTrading(BINANCE_USDM, TwoBooks(), lambda: [SYMBOL])
    listed = {o.order_id: (o.type, o.trigger_price) for o in await trading.open_orders(None)}
    assert set(listed) == {"1", "7"}
    assert listed["7"][0] is OrderType.STOP_MARKET and str(listed["7"][1]) == "80000"
    assert listed["1"] == (OrderType.LIMIT, None)


async def test_a_stop_is_found_and_canceled_in_its_own_book() -> None:
    exchange = TwoBooks()
    trading = LiveTrading(BINANCE_USDM, exchange, lambda: [SYMBOL])
    by_client = await trading.get_order(OrderRef(client_order_id="tm-stop"))
    assert by_client.order_id == "7" and by_client.type is OrderType.STOP_MARKET
    exchange.calls.clear()
    canceled = await trading.cancel_order(OrderRef(order_id="7"))
    assert (canceled.status, canceled.type, canceled.symbol) == (
        OrderStatus.CANCELED,
        OrderType.STOP_MARKET,
        SYMBOL,
    ), "the acknowledgement says no status: the order read before, canceled"
    assert exchange.calls == [("fetch_order", True), ("cancel_order", True)], "a known stop: its book only"
    assert (
        exchange.books[True]["7"]["status"] == "canceled" and exchange.books[False]["1"]["status"] == "open"
    )


async def test_cancel_all_empties_each_book_that_holds_orders() -> None:
    exchange = TwoBooks()
    trading = LiveTrading(BINANCE_USDM, exchange, lambda: [SYMBOL])
    canceled = await trading.cancel_all_orders(None)
    assert {o.order_id for o in canceled} == {"1", "7"}
    assert sorted(c for c in exchange.calls if c[0] == "cancel_all_orders") == [
        ("cancel_all_orders", False),
        ("cancel_all_orders", True),
    ]
    assert not await trading.open_orders(SYMBOL)


async def test_without_a_cancel_all_each_order_is_cancelled_in_its_book() -> None:
    exchange = TwoBooks()
    exchange.has = {"cancelAllOrders": False}
    trading = LiveTrading(BINANCE_USDM, exchange, lambda: [SYMBOL])
    await trading.cancel_all_orders(SYMBOL)
    assert sorted(c for c in exchange.calls if c[0] == "cancel_order") == [
        ("cancel_order", False),
        ("cancel_order", True),
    ]
    assert exchange.books[True]["7"]["status"] == exchange.books[False]["1"]["status"] == "canceled"


async def test_a_venue_whose_stops_are_ordinary_orders_asks_one_book() -> None:
    exchange = TwoBooks()
    trading = LiveTrading(BINANCE_SPOT, exchange, lambda: [SYMBOL])
    assert [o.order_id for o in await trading.open_orders(None)] == ["1"]
    with pytest.raises(NotFound, match="no order"):
        await trading.get_order(OrderRef(order_id="7"))
    assert {trigger for _, trigger in exchange.calls} == {False}
