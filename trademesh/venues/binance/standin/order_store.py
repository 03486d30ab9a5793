"""A small Binance order store for the replay stand-in, in Binance's REST and user-data formats.

Enough of an exchange to test trading through the real ccxt client: an order that does
not cross the replayed book rests (NEW) until canceled; a marketable one (a limit buy at
or above the best ask, a sell at or below the best bid, or a market order) fills at once,
entirely, at the best opposite price of the book as it stands at the replay position
(no walk through the depth: a simplification), with a 0.1 % commission in the quote
asset. Every state change is also sent as an `executionReport` on the user data stream
(through `on_event`). Error codes are Binance's own (-2010 duplicate, -2011 unknown
order on cancel, -2013 order does not exist).

An open LIMIT order is modified in place as Binance USD-M's PUT /fapi/v1/order does it
(`modify`: new price and total quantity, the same ids, an AMENDMENT report).

Stop orders (STOP_LOSS: quantity and stopPrice, no timeInForce; STOP_LOSS_LIMIT: also price
and timeInForce) rest NEW and untriggered (the stand-in never triggers them); one whose
stopPrice the book has already crossed (a sell at or above the best bid, a buy at or under the
best ask) is refused as Binance refuses it (-2010 "Stop price would trigger immediately.").
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from trademesh.venues.replay.adapter import RestAnswer, RestRequest

__all__ = ["ACCOUNT_BALANCES", "OrderStore"]

_BALANCES = [
    {"asset": "USDT", "free": "100000.00000000", "locked": "0.00000000"},
    {"asset": "BTC", "free": "2.00000000", "locked": "0.00000000"},
]
# Accounts of their own, by API key (docs/accounts.md): a request signed with one of these keys
# sees that account's balances, any other key the account above. Two accounts at one exchange
# are told apart by their keys alone, as on Binance: the tests give each venue account its key
# and see which balances come back.
ACCOUNT_BALANCES = {
    "standin-desk-a": [
        {"asset": "USDT", "free": "25000.00000000", "locked": "0.00000000"},
        {"asset": "BTC", "free": "0.50000000", "locked": "0.00000000"},
    ],
    "standin-desk-b": [
        {"asset": "USDT", "free": "7000.00000000", "locked": "0.00000000"},
        {"asset": "ETH", "free": "3.00000000", "locked": "0.00000000"},
    ],
}
_API_KEY_HEADER = "x-mbx-apikey"
_COMMISSION = Decimal("0.001")
_STOPS = ("STOP_LOSS", "STOP_LOSS_LIMIT")
# The best bid and ask of a symbol at the replay position, as the venue wrote them.
BestPrices = Callable[[str], tuple[str, str] | None]


def _error(code: int, message: str) -> RestAnswer:
    return RestAnswer.json({"code": code, "msg": message}, 400)


def _balances_of(request: RestRequest) -> list[dict[str, str]]:
    """The balances of the account whose API key signed `request` (Binance's X-MBX-APIKEY)."""
    key = next((v for k, v in request.headers.items() if k.lower() == _API_KEY_HEADER), "")
    return ACCOUNT_BALANCES.get(key, _BALANCES)


def _text(value: Decimal) -> str:
    return f"{value:.8f}"


class OrderStore:
    def __init__(self, api_prefix: str, best: BestPrices = lambda symbol: None) -> None:
        self.api_prefix = api_prefix
        self.best = best
        self.on_event: Callable[[dict[str, Any]], None] = lambda event: None
        self.orders: dict[int, dict[str, Any]] = {}
        self._ids = itertools.count(1000)
        self._trade_ids = itertools.count(50_000)

    def answer(self, request: RestRequest, endpoint: str) -> RestAnswer | None:
        params = request.params()
        route = (request.method, endpoint)
        if route == ("POST", "order"):
            return self._place(params)
        if route in (("GET", "order"), ("DELETE", "order")):
            return self._one(request.method, params)
        if route == ("GET", "openOrders"):
            return RestAnswer.json(self._open(params.get("symbol")))
        if route in (("DELETE", "openOrders"), ("DELETE", "allOpenOrders")):
            return RestAnswer.json([self._cancel(order) for order in self._open(params.get("symbol"))])
        if route == ("GET", "account"):
            return RestAnswer.json(
                {
                    "makerCommission": 10,
                    "takerCommission": 10,
                    "canTrade": True,
                    "accountType": "SPOT",
                    "balances": _balances_of(request),
                    "permissions": ["SPOT"],
                }
            )
        return None

    def _one(self, method: str, params: dict[str, str]) -> RestAnswer:
        order = self._find(params)
        if order is None:
            if method == "GET":
                return _error(-2013, "Order does not exist.")
            return _error(-2011, "Unknown order sent.")
        return RestAnswer.json(self._cancel(order) if method == "DELETE" else order)

    def _place(self, params: dict[str, str]) -> RestAnswer:
        refused = self._refused_stop(params)
        if refused is not None:
            return refused
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
            "stopPrice": params.get("stopPrice", "0.00000000"),
            "workingTime": now,
            "isWorking": True,
            "fills": [],
            "selfTradePreventionMode": "NONE",
        }
        self.orders[order_id] = order
        self._report(order, "NEW")
        if order["type"] in _STOPS:
            order["isWorking"] = False  # waiting for its trigger
            return RestAnswer.json(order)
        fill_price = self._crossing_price(order)
        if fill_price is not None:
            self._fill(order, fill_price)
        return RestAnswer.json(order)

    def modify(self, params: dict[str, str]) -> RestAnswer:
        """Binance USD-M's order modify (PUT /fapi/v1/order: symbol, side, orderId or
        origClientOrderId, quantity, price): an open LIMIT order takes the new price and total
        quantity in place (its ids stay), reported as an AMENDMENT, and fills at once when the
        new price crosses the book. Refused: -2013 no such open order, -4028 not a limit order,
        -1102 a missing side, quantity or price."""
        order = self._find(params)
        if order is None or order["symbol"] != params.get("symbol"):
            return _error(-2013, "Order does not exist.")
        if order["status"] != "NEW":
            return _error(-2013, "Order does not exist.")  # Binance: a closed order cannot be found to modify
        if order["type"] != "LIMIT":
            return _error(-4028, "Order type is not supported for modify.")
        if params.get("side") != order["side"] or "quantity" not in params or "price" not in params:
            return _error(-1102, "Mandatory parameter 'side', 'quantity' or 'price' was not sent.")
        order.update(price=params["price"], origQty=params["quantity"], updateTime=int(time.time() * 1000))
        self._report(order, "AMENDMENT")
        fill_price = self._crossing_price(order)
        if fill_price is not None:
            self._fill(order, fill_price)
        return RestAnswer.json(order)

    def _refused_stop(self, params: dict[str, str]) -> RestAnswer | None:
        kind = params.get("type", "")
        if kind not in _STOPS:
            return None
        if "stopPrice" not in params:
            return _error(
                -1102, "Mandatory parameter 'stopPrice' was not sent, was empty/null, or malformed."
            )
        if kind == "STOP_LOSS" and "timeInForce" in params:
            return _error(-1106, "Parameter 'timeInForce' sent when not required.")
        if kind == "STOP_LOSS_LIMIT" and ("price" not in params or "timeInForce" not in params):
            return _error(-1102, "Mandatory parameter 'price' was not sent, was empty/null, or malformed.")
        best = self.best(params["symbol"])
        if best is not None:
            stop, (bid, ask) = Decimal(params["stopPrice"]), (Decimal(best[0]), Decimal(best[1]))
            if (params["side"] == "SELL" and stop >= bid) or (params["side"] == "BUY" and stop <= ask):
                return _error(-2010, "Stop price would trigger immediately.")
        return None

    def _crossing_price(self, order: dict[str, Any]) -> str | None:
        best = self.best(order["symbol"])
        if best is None:
            return None
        bid, ask = best
        if order["side"] == "BUY":
            crosses = order["type"] == "MARKET" or Decimal(order["price"]) >= Decimal(ask)
            return ask if crosses else None
        crosses = order["type"] == "MARKET" or Decimal(order["price"]) <= Decimal(bid)
        return bid if crosses else None

    def _fill(self, order: dict[str, Any], price: str) -> None:
        size = Decimal(order["origQty"])
        quote = size * Decimal(price)
        commission = quote * _COMMISSION
        quote_asset = "USDT" if order["symbol"].endswith("USDT") else order["symbol"][-3:]
        trade_id = next(self._trade_ids)
        order.update(
            status="FILLED", executedQty=_text(size), cummulativeQuoteQty=_text(quote), isWorking=False
        )
        order["fills"] = [
            {
                "price": price,
                "qty": _text(size),
                "commission": _text(commission),
                "commissionAsset": quote_asset,
                "tradeId": trade_id,
            }
        ]
        self._report(order, "TRADE", last=(size, Decimal(price), commission, quote_asset, trade_id))

    def _cancel(self, order: dict[str, Any]) -> dict[str, Any]:
        if order["status"] == "NEW":
            order.update(status="CANCELED", isWorking=False, updateTime=int(time.time() * 1000))
            self._report(order, "CANCELED")
        return order

    def _report(
        self,
        order: dict[str, Any],
        execution: str,
        last: tuple[Decimal, Decimal, Decimal, str, int] | None = None,
    ) -> None:
        """The executionReport Binance's user data stream sends for this change."""
        now = int(time.time() * 1000)
        size, price, commission, asset, trade_id = last or (Decimal(0), Decimal(0), Decimal(0), None, -1)
        self.on_event(
            {
                "e": "executionReport",
                "E": now,
                "s": order["symbol"],
                "c": order["clientOrderId"],
                "S": order["side"],
                "o": order["type"],
                "f": order["timeInForce"],
                "q": order["origQty"],
                "p": order["price"],
                "P": order["stopPrice"],
                "F": "0.00000000",
                "g": -1,
                "C": order["clientOrderId"] if execution == "CANCELED" else "",
                "x": execution,
                "X": order["status"],
                "r": "NONE",
                "i": order["orderId"],
                "l": _text(size),
                "z": order["executedQty"],
                "L": _text(price),
                "n": _text(commission),
                "N": asset,
                "T": now,
                "t": trade_id,
                "I": 0,
                "w": order["isWorking"],
                "m": False,
                "M": execution == "TRADE",
                "O": order["time"],
                "Z": order["cummulativeQuoteQty"],
                "Y": _text(size * price),
                "Q": "0.00000000",
                "W": order["workingTime"],
                "V": "NONE",
            }
        )

    def _find(self, params: dict[str, str]) -> dict[str, Any] | None:
        if "orderId" in params:
            return self.orders.get(int(params["orderId"]))
        client_id = params.get("origClientOrderId")
        return next((o for o in self.orders.values() if o["clientOrderId"] == client_id), None)

    def _open(self, symbol: str | None) -> list[dict[str, Any]]:
        return [o for o in self.orders.values() if o["status"] == "NEW" and symbol in (None, o["symbol"])]
