"""A tiny Binance order store for the replay stand-in, in Binance's REST formats.

Orders rest and never fill (a replay has no matching engine); enough to test
placing, duplicate client ids, cancels, cancel-all and the dead-man switch
against the real ccxt client. Error codes are Binance's own (-2010 duplicate,
-2011 unknown order on cancel, -2013 order does not exist).
"""

from __future__ import annotations

import itertools
import time
from typing import Any

from venues.replay.adapter import RestAnswer, RestRequest

__all__ = ["OrderStore"]

_BALANCES = [
    {"asset": "USDT", "free": "100000.00000000", "locked": "0.00000000"},
    {"asset": "BTC", "free": "2.00000000", "locked": "0.00000000"},
]


def _error(code: int, message: str) -> RestAnswer:
    return RestAnswer.json({"code": code, "msg": message}, 400)


class OrderStore:
    def __init__(self, api_prefix: str) -> None:
        self.api_prefix = api_prefix
        self.orders: dict[int, dict[str, Any]] = {}
        self._ids = itertools.count(1000)
        self.requests: list[tuple[str, str]] = []  # (method, endpoint) in arrival order, for tests

    def answer(self, request: RestRequest, endpoint: str) -> RestAnswer | None:
        self.requests.append((request.method, endpoint))
        params = request.params()
        route = (request.method, endpoint)
        if route == ("POST", "order"):
            return self._place(params)
        if route in (("GET", "order"), ("DELETE", "order")):
            order = self._find(params)
            if order is None:
                return _error(
                    -2013 if request.method == "GET" else -2011,
                    "Order does not exist." if request.method == "GET" else "Unknown order sent.",
                )
            if request.method == "DELETE":
                order["status"] = "CANCELED"
            return RestAnswer.json(order)
        if route == ("GET", "openOrders"):
            return RestAnswer.json(self._open(params.get("symbol")))
        if route == ("DELETE", "openOrders"):
            canceled = self._open(params.get("symbol"))
            for order in canceled:
                order["status"] = "CANCELED"
            return RestAnswer.json(canceled)
        if route == ("GET", "account"):
            return RestAnswer.json(
                {
                    "makerCommission": 10,
                    "takerCommission": 10,
                    "canTrade": True,
                    "accountType": "SPOT",
                    "balances": _BALANCES,
                    "permissions": ["SPOT"],
                }
            )
        return None

    def _place(self, params: dict[str, str]) -> RestAnswer:
        client_id = params.get("newClientOrderId", "")
        if client_id and any(
            o["clientOrderId"] == client_id and o["status"] == "NEW" for o in self.orders.values()
        ):
            return _error(-2010, "Duplicate order sent.")
        now = int(time.time() * 1000)
        order_id = next(self._ids)
        order = {
            "symbol": params["symbol"],
            "orderId": order_id,
            "orderListId": -1,
            "clientOrderId": client_id or f"mock{order_id}",
            "transactTime": now,
            "time": now,
            "updateTime": now,
            "price": params.get("price", "0.00000000"),
            "origQty": params["quantity"],
            "executedQty": "0.00000000",
            "cummulativeQuoteQty": "0.00000000",
            "status": "NEW",
            "timeInForce": params.get("timeInForce", "GTC"),
            "type": params["type"],
            "side": params["side"],
            "workingTime": now,
            "isWorking": True,
            "fills": [],
            "selfTradePreventionMode": "NONE",
        }
        self.orders[order_id] = order
        return RestAnswer.json(order)

    def _find(self, params: dict[str, str]) -> dict[str, Any] | None:
        if "orderId" in params:
            return self.orders.get(int(params["orderId"]))
        client_id = params.get("origClientOrderId")
        return next((o for o in self.orders.values() if o["clientOrderId"] == client_id), None)

    def _open(self, symbol: str | None) -> list[dict[str, Any]]:
        return [o for o in self.orders.values() if o["status"] == "NEW" and symbol in (None, o["symbol"])]
