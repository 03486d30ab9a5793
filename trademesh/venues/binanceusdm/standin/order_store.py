"""Binance USD-M's own order store for the replay stand-in: its conditional (algo) orders.

Since December 2025 Binance keeps USD-M stop orders in its algo service, apart from the
matching engine's orders (/fapi/v1/order refuses the stop types with -4120):
- POST /fapi/v1/algoOrder with algoType=CONDITIONAL, type STOP_MARKET (quantity, triggerPrice)
  or STOP (also price; timeInForce default GTC), workingType (CONTRACT_PRICE, the last trade
  price, by default; or MARK_PRICE), reduceOnly "true"/"false", clientAlgoId. The answer is
  the algo order: {"algoId", "clientAlgoId", "algoType", "orderType", "symbol", "side",
  "positionSide", "timeInForce", "quantity", "algoStatus": "NEW", "triggerPrice", "price",
  "workingType", "reduceOnly", "createTime", "updateTime", "triggerTime": 0, ...}.
- GET /fapi/v1/openAlgoOrders (symbol optional) lists the waiting ones; GET /fapi/v1/algoOrder
  (algoId or clientAlgoId) reads one; DELETE /fapi/v1/algoOrder cancels one, answered
  {"algoId", "clientAlgoId", "code": "200", "msg": "success"}; DELETE /fapi/v1/algoOpenOrders
  cancels a symbol's, answered {"code": 200, "msg": "The operation of cancel all open order is done."}.
- Each change goes out on the user data stream as an `ALGO_UPDATE` event
  ({"e", "T", "E", "o": {"caid", "aid", "at", "o", "s", "S", "X", "tp", "p", "wt", "R", ...}}).
Refusals are Binance's: a missing triggerPrice or (STOP) price -1102, another order type -1116,
a clientAlgoId already open -4116, a stop the market has already crossed -2021 ("Order would
immediately trigger": a sell stop at or above the best bid, a buy stop at or below the best ask,
the book standing for the last price), an unknown algo order -2013 (read) or -2011 (cancel).

The stand-in holds stops NEW and never triggers them (a triggered algo order becomes a new
matching-engine order under another id, which the connector does not follow yet).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from trademesh.venues.binance.standin.order_store import BestPrices
from trademesh.venues.replay.adapter import RestAnswer, RestRequest

__all__ = ["STOP_TYPES", "BinanceAlgoOrders"]

STOP_TYPES = ("STOP_MARKET", "STOP")
_WORKING_TYPES = ("CONTRACT_PRICE", "MARK_PRICE")


def _error(code: int, message: str) -> RestAnswer:
    return RestAnswer.json({"code": code, "msg": message}, 400)


def _missing(name: str) -> RestAnswer:
    return _error(-1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")


class BinanceAlgoOrders:
    def __init__(self, best: BestPrices) -> None:
        self.best = best
        self.on_event: Callable[[dict[str, Any]], None] = lambda event: None
        self.orders: dict[int, dict[str, Any]] = {}
        self._ids = itertools.count(3_000_000_001)  # apart from the order store's order ids

    def answer(self, request: RestRequest, endpoint: str) -> RestAnswer | None:
        """The answer to /fapi/<endpoint> ("v1/algoOrder"...), None for another endpoint."""
        params = request.params()
        route = (request.method, endpoint)
        if route == ("POST", "v1/algoOrder"):
            return self._place(params)
        if route in (("GET", "v1/algoOrder"), ("DELETE", "v1/algoOrder")):
            return self._one(request.method, params)
        if route == ("GET", "v1/openAlgoOrders"):
            return RestAnswer.json(self._open(params.get("symbol")))
        if route == ("DELETE", "v1/algoOpenOrders"):
            for order in self._open(params.get("symbol")):
                self._cancel(order)
            return RestAnswer.json({"code": 200, "msg": "The operation of cancel all open order is done."})
        return None

    def _place(self, params: dict[str, str]) -> RestAnswer:
        refused = self._refused(params)
        if refused is not None:
            return refused
        now = int(time.time() * 1000)
        algo_id = next(self._ids)
        order = {
            "algoId": algo_id,
            "clientAlgoId": params.get("clientAlgoId") or f"mockAlgo{algo_id}",
            "algoType": "CONDITIONAL",
            "orderType": params["type"],
            "symbol": params["symbol"],
            "side": params["side"],
            "positionSide": params.get("positionSide", "BOTH"),
            "timeInForce": params.get("timeInForce", "GTC"),
            "quantity": params["quantity"],
            "algoStatus": "NEW",
            "triggerPrice": params["triggerPrice"],
            "price": params.get("price", "0"),
            "icebergQuantity": None,
            "selfTradePreventionMode": "EXPIRE_MAKER",
            "workingType": params.get("workingType", "CONTRACT_PRICE"),
            "priceMatch": "NONE",
            "closePosition": False,
            "priceProtect": False,
            "reduceOnly": params.get("reduceOnly", "false").lower() == "true",
            "createTime": now,
            "updateTime": now,
            "triggerTime": 0,
            "goodTillDate": 0,
        }
        self.orders[algo_id] = order
        self._report(order)
        return RestAnswer.json(order)

    def _refused(self, params: dict[str, str]) -> RestAnswer | None:
        kind = params.get("type", "")
        if params.get("algoType") != "CONDITIONAL":
            return _missing("algoType")
        if kind not in STOP_TYPES:
            return _error(-1116, "Invalid orderType.")
        if "quantity" not in params:
            return _missing("quantity")
        if "triggerPrice" not in params:
            return _missing("triggerPrice")
        if kind == "STOP" and "price" not in params:
            return _missing("price")
        if params.get("workingType", "CONTRACT_PRICE") not in _WORKING_TYPES:
            return _error(-1116, "Invalid workingType.")
        client_id = params.get("clientAlgoId", "")
        if client_id and any(o["clientAlgoId"] == client_id for o in self._open(None)):
            return _error(-4116, "ClientOrderId is duplicated.")
        best = self.best(params["symbol"])
        if best is not None:
            stop, bid, ask = Decimal(params["triggerPrice"]), Decimal(best[0]), Decimal(best[1])
            if (params["side"] == "SELL" and stop >= bid) or (params["side"] == "BUY" and stop <= ask):
                return _error(-2021, "Order would immediately trigger.")
        return None

    def _one(self, method: str, params: dict[str, str]) -> RestAnswer:
        order = self._find(params)
        if order is None:
            if method == "GET":
                return _error(-2013, "Order does not exist.")
            return _error(-2011, "Unknown order sent.")
        if method == "GET":
            return RestAnswer.json(order)
        if order["algoStatus"] != "NEW":
            return _error(-2011, "Unknown order sent.")
        self._cancel(order)
        return RestAnswer.json(
            {
                "algoId": order["algoId"],
                "clientAlgoId": order["clientAlgoId"],
                "code": "200",
                "msg": "success",
            }
        )

    def _cancel(self, order: dict[str, Any]) -> None:
        order.update(algoStatus="CANCELED", updateTime=int(time.time() * 1000))
        self._report(order)

    def _report(self, order: dict[str, Any]) -> None:
        """The ALGO_UPDATE event Binance's user data stream sends for this change."""
        now = int(time.time() * 1000)
        self.on_event(
            {
                "e": "ALGO_UPDATE",
                "T": now,
                "E": now,
                "o": {
                    "caid": order["clientAlgoId"],
                    "aid": order["algoId"],
                    "at": order["algoType"],
                    "o": order["orderType"],
                    "s": order["symbol"],
                    "S": order["side"],
                    "ps": order["positionSide"],
                    "f": order["timeInForce"],
                    "q": order["quantity"],
                    "X": order["algoStatus"],
                    "ai": "",
                    "ap": "0.00000",
                    "aq": "0.00000",
                    "act": "0",
                    "tp": order["triggerPrice"],
                    "p": order["price"],
                    "V": order["selfTradePreventionMode"],
                    "wt": order["workingType"],
                    "pm": order["priceMatch"],
                    "cp": order["closePosition"],
                    "pP": order["priceProtect"],
                    "R": order["reduceOnly"],
                    "tt": order["triggerTime"],
                    "gtd": order["goodTillDate"],
                },
            }
        )

    def _find(self, params: dict[str, str]) -> dict[str, Any] | None:
        if "algoId" in params:
            return self.orders.get(int(params["algoId"]))
        client_id = params.get("clientAlgoId")
        found = [o for o in self.orders.values() if o["clientAlgoId"] == client_id]
        return found[-1] if found else None

    def _open(self, symbol: str | None) -> list[dict[str, Any]]:
        return [o for o in self.orders.values() if o["algoStatus"] == "NEW" and symbol in (None, o["symbol"])]
