"""A small Bybit order store for the replay stand-in, in Bybit's v5 REST and private-stream formats.

Enough of a unified (UTA 2.0) spot account to trade through the real ccxt client:
- POST /v5/order/create (an `orderLinkId` already used answers retCode 110072),
  /v5/order/cancel, /v5/order/cancel-all, /v5/order/disconnected-cancel-all (the
  dead-man switch: `timeWindow` 3 to 300 s, as Bybit's docs give it; it is recorded and logged);
- GET /v5/order/realtime (open orders; by orderId or orderLinkId any recent order, as on a
  unified account), /v5/order/history, /v5/account/wallet-balance (fixed balances),
  /v5/account/info and /v5/user/query-api (what ccxt asks to learn the account is unified).

An order that does not cross the replayed book rests (New) until canceled; a marketable one
(a limit buy at or above the best ask, a sell at or below the best bid, or a market order)
fills at once, entirely, at the best opposite price of the book at the replay position (no
walk through the depth: a simplification), as a taker at Bybit's 0.1 % spot fee, charged in
the asset received (base on a buy, quote on a sell). A market order before the replay has
a book rests. Every change goes out through `on_event` as the private stream's "order"
push, and each fill as an "execution" push.

Conditional (stop) orders, as Bybit spot keeps them on a unified account:
- POST /v5/order/create with orderFilter=StopOrder and a triggerPrice (Market: qty in the base
  coin; Limit: with its price) is held "Untriggered" (stopOrderType "Stop"), apart from the
  book: it never fills here (the stand-in does not trigger stops). Bybit spot takes no
  triggerDirection or triggerBy (linear and inverse only: they are ignored) and refuses no
  trigger: it sets the direction from the last price (a trigger above it waits for a rise,
  1; at or below it, for a fall, 2), shown as triggerDirection. orderFilter=StopOrder without
  a triggerPrice is refused (10001).
- GET /v5/order/realtime lists every kind of order when no orderFilter is sent (a unified
  account's default), the ordinary ones with orderFilter=Order, the conditional ones with
  StopOrder; by orderId or orderLinkId too, within the filter sent.
- /v5/order/cancel and /v5/order/cancel-all reach conditional orders only with
  orderFilter=StopOrder (spot's default is Order): a canceled one becomes "Deactivated".
- Each change goes out as an "order" push, like any order's.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from trademesh.venues.replay.adapter import RestAnswer, RestRequest

__all__ = ["TAKER_FEE_RATE", "WALLET", "BybitOrderStore"]

log = logging.getLogger(__name__)

# The unified account's coins: (walletBalance, locked); fixed (fills do not move them).
WALLET = {"USDT": ("100000", "0"), "BTC": ("2", "0")}
TAKER_FEE_RATE = Decimal("0.001")
_DCP_RANGE_S = (3, 300)
_OPEN = ("New", "PartiallyFilled", "Untriggered")
_STOP_FILTER = "StopOrder"  # a conditional order's orderFilter (spot)
# The best bid and ask of a symbol at the replay position, as the venue wrote them.
BestPrices = Callable[[str], tuple[str, str] | None]
# The last trade price of a symbol at the replay position (None before its first trade).
LastPrice = Callable[[str], str | None]
# A private-stream push: (topic, message).
Event = Callable[[str, dict[str, Any]], None]


def _now_ms() -> int:
    return int(time.time() * 1000)


def _ok(result: object) -> RestAnswer:
    return RestAnswer.json(
        {"retCode": 0, "retMsg": "OK", "result": result, "retExtInfo": {}, "time": _now_ms()}
    )


def _error(code: int, message: str) -> RestAnswer:
    """Bybit answers errors with HTTP 200 and a non-zero retCode."""
    return RestAnswer.json(
        {"retCode": code, "retMsg": message, "result": {}, "retExtInfo": {}, "time": _now_ms()}
    )


def _text(value: Decimal) -> str:
    """A plain decimal string (no exponent, no trailing zeros)."""
    return format(value.normalize(), "f")


class BybitOrderStore:
    def __init__(self, best: BestPrices = lambda symbol: None, last: LastPrice = lambda symbol: None) -> None:
        self.best = best
        self.last = last
        self.on_event: Event = lambda topic, message: None
        self.orders: dict[str, dict[str, Any]] = {}
        self.dcp_window_s: int | None = None  # the last timeWindow armed
        self._order_ids = itertools.count(2_040_000_000_000_000_001)
        self._exec_ids = itertools.count(2_290_000_000_900_000_001)
        self._push_ids = itertools.count(1)

    def answer(self, request: RestRequest, endpoint: str) -> RestAnswer | None:
        """The answer to a v5 endpoint ("order/create", ...), or None when it is not ours."""
        params = request.params()
        routes: dict[tuple[str, str], Callable[[dict[str, str]], RestAnswer]] = {
            ("POST", "order/create"): self._create,
            ("POST", "order/cancel"): self._cancel_one,
            ("POST", "order/cancel-all"): self._cancel_all,
            ("POST", "order/disconnected-cancel-all"): self._dcp,
            ("GET", "order/realtime"): self._realtime,
            ("GET", "order/history"): self._history,
            ("GET", "account/wallet-balance"): self._wallet,
            ("GET", "account/info"): self._account_info,
            ("GET", "user/query-api"): self._api_key_info,
        }
        route = routes.get((request.method, endpoint))
        return route(params) if route is not None else None

    # ---- orders

    def _create(self, params: dict[str, str]) -> RestAnswer:
        link_id = params.get("orderLinkId", "")
        if link_id and any(o["orderLinkId"] == link_id for o in self.orders.values()):
            return _error(110072, "OrderLinkedID is duplicate")
        if params.get("orderType") == "Limit" and not params.get("price"):
            return _error(10001, "params error: price is required for a limit order")
        stop = params.get("orderFilter") == _STOP_FILTER
        if stop and not params.get("triggerPrice"):
            return _error(10001, "params error: triggerPrice is required for a conditional order")
        order = self._new_order(params, link_id)
        if stop:
            self._hold(order, params["triggerPrice"])
            log.info(
                "replay: Bybit conditional order %s %s orderFilter=%s triggerPrice=%s triggerDirection=%s "
                "triggerBy=%s (held with triggerDirection %s)",
                params["side"],
                params["orderType"],
                params["orderFilter"],
                params["triggerPrice"],
                params.get("triggerDirection", "-"),
                params.get("triggerBy", "-"),
                order["triggerDirection"],
            )
        self.orders[order["orderId"]] = order
        self._push_order(order)
        price = None if stop else self._crossing_price(order)
        if price is not None:
            self._fill(order, price)
        return _ok({"orderId": order["orderId"], "orderLinkId": order["orderLinkId"]})

    def _new_order(self, params: dict[str, str], link_id: str) -> dict[str, Any]:
        now = str(_now_ms())
        order_id = str(next(self._order_ids))
        market = params.get("orderType") == "Market"
        qty = params["qty"]
        return {
            "orderId": order_id,
            "orderLinkId": link_id,
            "blockTradeId": "",
            "symbol": params["symbol"],
            "price": "0" if market else params["price"],
            "qty": qty,
            "side": params["side"],
            "isLeverage": "0",
            "positionIdx": 0,
            "orderStatus": "New",
            "cancelType": "UNKNOWN",
            "rejectReason": "EC_NoError",
            "avgPrice": "",
            "leavesQty": qty,
            "leavesValue": "0" if market else _text(Decimal(qty) * Decimal(params["price"])),
            "cumExecQty": "0",
            "cumExecValue": "0",
            "cumExecFee": "0",
            "timeInForce": "IOC" if market else params.get("timeInForce", "GTC"),
            "orderType": params["orderType"],
            "stopOrderType": "",
            "orderIv": "",
            "marketUnit": params.get("marketUnit", ""),
            "triggerPrice": "0",
            "takeProfit": "0",
            "stopLoss": "0",
            "tpTriggerBy": "",
            "slTriggerBy": "",
            "triggerDirection": 0,
            "triggerBy": "",
            "lastPriceOnCreated": "",
            "reduceOnly": False,
            "closeOnTrigger": False,
            "smpType": "None",
            "smpGroup": 0,
            "smpOrderId": "",
            "placeType": "",
            "createdTime": now,
            "updatedTime": now,
        }

    def _hold(self, order: dict[str, Any], trigger: str) -> None:
        """Make the new order a conditional one, waiting untriggered; its direction is Bybit
        spot's: from the last price when it is placed (a rise to a trigger above it)."""
        last = self.last(order["symbol"])
        rising = last is not None and Decimal(trigger) > Decimal(last)
        order.update(
            orderStatus="Untriggered",
            stopOrderType="Stop",
            triggerPrice=trigger,
            triggerDirection=1 if rising else 2,
            lastPriceOnCreated=last or "",
        )

    def _crossing_price(self, order: dict[str, Any]) -> str | None:
        best = self.best(order["symbol"])
        if best is None:
            return None
        bid, ask = best
        market = order["orderType"] == "Market"
        if order["side"] == "Buy":
            return ask if market or Decimal(order["price"]) >= Decimal(ask) else None
        return bid if market or Decimal(order["price"]) <= Decimal(bid) else None

    def _fill(self, order: dict[str, Any], price: str) -> None:
        qty = Decimal(order["qty"])
        value = qty * Decimal(price)
        buy = order["side"] == "Buy"
        fee = (qty if buy else value) * TAKER_FEE_RATE
        base, quote = _split(order["symbol"])
        order.update(
            orderStatus="Filled",
            avgPrice=price,
            leavesQty="0",
            leavesValue="0",
            cumExecQty=_text(qty),
            cumExecValue=_text(value),
            cumExecFee=_text(fee),
            updatedTime=str(_now_ms()),
        )
        self._push_order(order)
        self._push(
            "execution",
            {
                "category": "spot",
                "symbol": order["symbol"],
                "isLeverage": "0",
                "orderId": order["orderId"],
                "orderLinkId": order["orderLinkId"],
                "side": order["side"],
                "orderPrice": order["price"],
                "orderQty": order["qty"],
                "leavesQty": "0",
                "orderType": order["orderType"],
                "stopOrderType": "",
                "execFee": _text(fee),
                "feeCurrency": base if buy else quote,
                "execId": str(next(self._exec_ids)),
                "execPrice": price,
                "execQty": _text(qty),
                "execType": "Trade",
                "execValue": _text(value),
                "execTime": order["updatedTime"],
                "isMaker": False,
                "feeRate": _text(TAKER_FEE_RATE),
                "tradeIv": "",
                "markIv": "",
                "markPrice": "",
                "indexPrice": "",
                "underlyingPrice": "",
                "blockTradeId": "",
                "closedSize": "",
                "seq": next(self._push_ids),
            },
        )

    def _cancel_one(self, params: dict[str, str]) -> RestAnswer:
        """Spot cancels in the book orderFilter names: Order (the default) or StopOrder."""
        order = self._find(params)
        if order is None or not _is_open(order) or not _in_filter(order, params.get("orderFilter", "Order")):
            return _error(110001, "Order does not exist.")
        self._cancel(order)
        return _ok({"orderId": order["orderId"], "orderLinkId": order["orderLinkId"]})

    def _cancel_all(self, params: dict[str, str]) -> RestAnswer:
        book = params.get("orderFilter", "Order")
        held = [o for o in self._open(params.get("symbol")) if _in_filter(o, book)]
        canceled = [self._cancel(order) for order in held]
        listed = [{"orderId": o["orderId"], "orderLinkId": o["orderLinkId"]} for o in canceled]
        return _ok({"list": listed, "success": "1"})

    def _cancel(self, order: dict[str, Any]) -> dict[str, Any]:
        """Cancelled; a conditional order canceled before it triggered is Deactivated."""
        status = "Deactivated" if order["orderStatus"] == "Untriggered" else "Cancelled"
        order.update(orderStatus=status, cancelType="CancelByUser", updatedTime=str(_now_ms()))
        self._push_order(order)
        return order

    def _dcp(self, params: dict[str, str]) -> RestAnswer:
        """Disconnection protection: Bybit takes a timeWindow of 3 to 300 s (no 0 to switch it off)."""
        window, product = params.get("timeWindow", ""), params.get("product", "OPTIONS")
        low, high = _DCP_RANGE_S
        if not window.isdigit() or not low <= int(window) <= high:
            log.warning(
                "replay: Bybit disconnected-cancel-all refused timeWindow=%s product=%s", window, product
            )
            return _error(10001, f"params error: timeWindow must be in [{low}, {high}]")
        self.dcp_window_s = int(window)
        log.info("replay: Bybit disconnected-cancel-all timeWindow=%s product=%s", window, product)
        return RestAnswer.json({"retCode": 0, "retMsg": "success"})

    # ---- queries

    def _realtime(self, params: dict[str, str]) -> RestAnswer:
        """Open orders; asked by orderId or orderLinkId, any recent order (openOnly=1: closed ones).
        Every kind unless orderFilter names one (Order, StopOrder)."""
        if "orderId" in params or "orderLinkId" in params:
            found = self._find(params)
            orders = [found] if found is not None and _matches(found, params) else []
        elif params.get("openOnly", "0") == "1":
            orders = [o for o in self.orders.values() if not _is_open(o) and _matches(o, params)]
        else:
            orders = [o for o in self._open(params.get("symbol")) if _matches(o, params)]
        book = params.get("orderFilter")
        return self._list([o for o in orders if book is None or _in_filter(o, book)], params)

    def _history(self, params: dict[str, str]) -> RestAnswer:
        if "orderId" in params or "orderLinkId" in params:
            found = self._find(params)
            orders = [found] if found is not None and _matches(found, params) else []
        else:
            orders = [o for o in self.orders.values() if _matches(o, params)]
        return self._list(orders, params)

    def _list(self, orders: list[dict[str, Any]], params: dict[str, str]) -> RestAnswer:
        newest_first = sorted(orders, key=lambda o: int(o["orderId"]), reverse=True)
        limit = int(params.get("limit", "20"))
        return _ok(
            {"category": params.get("category", "spot"), "list": newest_first[:limit], "nextPageCursor": ""}
        )

    def _wallet(self, params: dict[str, str]) -> RestAnswer:
        coins = [
            {
                "coin": coin,
                "equity": total,
                "usdValue": "",
                "walletBalance": total,
                "free": "",
                "locked": locked,
                "spotHedgingQty": "0",
                "borrowAmount": "0",
                "availableToWithdraw": "",
                "accruedInterest": "0",
                "totalOrderIM": "0",
                "totalPositionIM": "0",
                "totalPositionMM": "0",
                "unrealisedPnl": "0",
                "cumRealisedPnl": "0",
                "bonus": "0",
                "marginCollateral": True,
                "collateralSwitch": True,
            }
            for coin, (total, locked) in WALLET.items()
        ]
        account = {"accountType": params.get("accountType", "UNIFIED"), "accountIMRate": "0", "coin": coins}
        return _ok({"list": [account]})

    def _account_info(self, params: dict[str, str]) -> RestAnswer:
        return _ok(
            {
                "marginMode": "REGULAR_MARGIN",
                "updatedTime": str(_now_ms()),
                "unifiedMarginStatus": 5,  # UTA 2.0
                "dcpStatus": "ON" if self.dcp_window_s else "OFF",
                "timeWindow": self.dcp_window_s or 10,
                "smpGroup": 0,
                "isMasterTrader": False,
                "spotHedgingStatus": "OFF",
            }
        )

    def _api_key_info(self, params: dict[str, str]) -> RestAnswer:
        return _ok(
            {
                "id": "1",
                "note": "replay",
                "apiKey": "",
                "readOnly": 0,
                "secret": "",
                "permissions": {"Spot": ["SpotTrade"], "Wallet": ["AccountTransfer"], "ContractTrade": []},
                "ips": ["*"],
                "type": 1,
                "deadlineDay": 90,
                "unified": 0,
                "uta": 1,
                "userID": 1,
                "inviterID": 0,
                "vipLevel": "No VIP",
                "mktMakerLevel": "0",
                "affiliateID": 0,
                "isMaster": True,
            }
        )

    # ---- helpers

    def _find(self, params: dict[str, str]) -> dict[str, Any] | None:
        if params.get("orderId"):
            return self.orders.get(params["orderId"])
        link_id = params.get("orderLinkId")
        return next((o for o in self.orders.values() if link_id and o["orderLinkId"] == link_id), None)

    def _open(self, symbol: str | None) -> list[dict[str, Any]]:
        return [o for o in self.orders.values() if _is_open(o) and symbol in (None, o["symbol"])]

    def _push_order(self, order: dict[str, Any]) -> None:
        self._push("order", {"category": "spot", **order})

    def _push(self, topic: str, data: dict[str, Any]) -> None:
        """A private-stream message as Bybit sends it: {"id","topic","creationTime","data":[...]}."""
        message = {
            "id": f"replay-{next(self._push_ids)}",
            "topic": topic,
            "creationTime": _now_ms(),
            "data": [data],
        }
        self.on_event(topic, message)


def _is_open(order: dict[str, Any]) -> bool:
    return str(order["orderStatus"]) in _OPEN


def _in_filter(order: dict[str, Any], order_filter: str) -> bool:
    """Whether the orderFilter (Order, StopOrder) reaches the order."""
    stop: bool = order["stopOrderType"] == "Stop"
    return stop == (order_filter == _STOP_FILTER)


def _matches(order: dict[str, Any], params: dict[str, str]) -> bool:
    return params.get("symbol") in (None, "", order["symbol"])


def _split(symbol: str) -> tuple[str, str]:
    """(base, quote) of a spot symbol such as BTCUSDT (the quote coins Bybit spot lists)."""
    for quote in ("USDT", "USDC", "USDE", "EUR", "BTC", "ETH"):
        if symbol.endswith(quote) and len(symbol) > len(quote):
            return symbol[: -len(quote)], quote
    return symbol, ""
