"""OKX's algo orders for the replay stand-in: the stops (ordType "trigger"), in OKX's API v5 formats.

OKX keeps algo orders apart from the other orders, with calls and ids of their own
(https://www.okx.com/docs-v5/en/, "Algo Trading"):
- POST /trade/order-algo (one JSON object): instId, tdMode, side, ordType "trigger", sz,
  triggerPx, orderPx ("-1": a market order once triggered, else the limit price),
  triggerPxType ("last" by default, "mark", "index"), reduceOnly, algoClOrdId, tag. Answered
  per order {"algoId", "clOrdId", "algoClOrdId", "sCode", "sMsg", "tag"}, overall code "0",
  or "1" with the error in sCode/sMsg.
- GET /trade/order-algo (algoId or algoClOrdId) reads one; GET /trade/orders-algo-pending
  (ordType required; instType, instId optional) lists the waiting ones, newest first; POST
  /trade/cancel-algos (a JSON array of {algoId or algoClOrdId, instId}) cancels, answered per
  order {"algoId", "algoClOrdId", "sCode", "sMsg"}.
- An algo order: strings throughout, `state` "live" (waiting), "effective" (triggered),
  "canceled", "order_failed"; its client id is algoClOrdId (its clOrdId and ordId name the
  order it places once triggered, empty before); cTime, uTime, triggerTime.
- Each change goes out on the `orders-algo` channel of the business WebSocket as the order
  (with instType), to `on_push` here.
Each placement's body is logged as received ("replay: OKX order-algo {...}"), for tests to
read what reached the venue.
Codes used: 51000 "Parameter {0} error", 51001 unknown instrument, 51016 a client id already
held by a waiting algo order, 50014 ordType missing from the pending list, 51603 an unknown
algo order, 51400 a cancel of an algo order that is not waiting (all as for ordinary orders;
OKX's own codes for algo orders were not checked against the live venue).

OKX gives a `trigger` order no direction, as understood here: it triggers when the last price
reaches triggerPx from where it was when placed. So a stop whose trigger the market has already
crossed is not refused (unlike Binance: no refusal code for it is found in OKX's documented
codes or ccxt's error map); it waits for the price to come back to it. Not checked on the
live venue. The stand-in holds
stops live and never triggers them.
"""

from __future__ import annotations

import itertools
import json
import logging
import time
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from venues.replay.adapter import RestAnswer, RestRequest

__all__ = ["AlgoOrders"]

log = logging.getLogger(__name__)

Json = dict[str, Any]
_TRIGGER_PX_TYPES = ("last", "mark", "index")


def _now() -> str:
    return str(int(time.time() * 1000))


def _positive(text: Any) -> bool:
    try:
        return Decimal(str(text)) > 0
    except (InvalidOperation, ValueError):
        return False


def _envelope(data: list[Json], code: str = "0", msg: str = "") -> RestAnswer:
    return RestAnswer.json({"code": code, "msg": msg, "data": data})


def _acks(data: list[Json]) -> RestAnswer:
    """OKX's answer to an order call: overall "1" when every order failed, "2" when some did."""
    failed = sum(1 for ack in data if ack["sCode"] != "0")
    if data and failed == len(data):
        return _envelope(data, "1", "All operations failed")
    return _envelope(data, "2", "Bulk operation partially succeeded") if failed else _envelope(data)


def _bad_parameter(params: Mapping[str, Any]) -> str | None:
    """The first field of a trigger order that OKX would refuse (51000 "Parameter {0} error")."""
    if params.get("side") not in ("buy", "sell"):
        return "side"
    if not _positive(params.get("sz")):
        return "sz"
    if not _positive(params.get("triggerPx")):
        return "triggerPx"
    if str(params.get("orderPx")) != "-1" and not _positive(params.get("orderPx")):
        return "orderPx"
    if params.get("triggerPxType", "last") not in _TRIGGER_PX_TYPES:
        return "triggerPxType"
    return None


class AlgoOrders:
    """The account's algo orders, by algoId; `inst_types` maps a known instId to SPOT or SWAP."""

    def __init__(self, inst_types: Mapping[str, str]) -> None:
        self.inst_types = inst_types
        # An algo order change: (instType, instId, the `orders-algo` channel's data object).
        self.on_push: Callable[[str, str, Json], None] = lambda inst_type, inst_id, data: None
        self.orders: dict[str, Json] = {}
        self._ids = itertools.count(2_190_000_000_000_000_001)  # apart from ordinary ordIds
        self._routes: dict[tuple[str, str], Callable[[RestRequest], RestAnswer]] = {
            ("POST", "trade/order-algo"): self._place,
            ("GET", "trade/order-algo"): self._get,
            ("GET", "trade/orders-algo-pending"): self._pending,
            ("POST", "trade/cancel-algos"): self._cancel,
        }

    def answer(self, request: RestRequest, endpoint: str) -> RestAnswer | None:
        """OKX's answer to /api/v5/<endpoint> when it is an algo call, else None."""
        route = self._routes.get((request.method, endpoint))
        return route(request) if route is not None else None

    # ---- placing

    def _place(self, request: RestRequest) -> RestAnswer:
        log.info("replay: OKX order-algo %s", request.body)
        params = json.loads(request.body or "{}")
        refused = self._refused(params)
        if refused is not None:
            return _acks([self._ack(params, *refused)])
        order = self._new_order(params)
        self.orders[order["algoId"]] = order
        self._push(order)
        return _acks([self._ack(order, "0", "Order placed")])

    def _refused(self, params: Mapping[str, Any]) -> tuple[str, str] | None:
        if str(params.get("instId")) not in self.inst_types:
            return "51001", "Instrument ID does not exist"
        if params.get("ordType") != "trigger":  # the other algo types are not played
            return "51000", "Parameter ordType error"
        problem = _bad_parameter(params)
        if problem:
            return "51000", f"Parameter {problem} error"
        client_id = str(params.get("algoClOrdId") or "")
        if client_id and any(o["algoClOrdId"] == client_id for o in self._live()):
            return "51016", "Duplicated clOrdId"
        return None

    def _new_order(self, params: Mapping[str, Any]) -> Json:
        now, inst_id = _now(), str(params["instId"])
        swap = self.inst_types[inst_id] == "SWAP"
        return {
            "instType": self.inst_types[inst_id],
            "instId": inst_id,
            "ccy": "",
            "ordId": "",
            "ordIdList": [],
            "algoId": str(next(self._ids)),
            "clOrdId": "",
            "algoClOrdId": str(params.get("algoClOrdId") or ""),
            "sz": str(params["sz"]),
            "closeFraction": "",
            "ordType": "trigger",
            "side": str(params["side"]),
            "posSide": str(params.get("posSide", "net" if swap else "")),
            "tdMode": str(params.get("tdMode", "cash")),
            "tgtCcy": "" if swap else str(params.get("tgtCcy", "")),
            "state": "live",
            "lever": "10" if swap else "",
            "tpTriggerPx": "",
            "tpTriggerPxType": "",
            "tpOrdPx": "",
            "slTriggerPx": "",
            "slTriggerPxType": "",
            "slOrdPx": "",
            "triggerPx": str(params["triggerPx"]),
            "triggerPxType": str(params.get("triggerPxType", "last")),
            "ordPx": str(params["orderPx"]),
            "actualSz": "",
            "actualPx": "",
            "actualSide": "",
            "triggerTime": "",
            "tag": str(params.get("tag", "")),
            "reduceOnly": "true" if params.get("reduceOnly") in (True, "true") else "false",
            "failCode": "",
            "last": "",
            "notionalUsd": "",
            "cTime": now,
            "uTime": now,
        }

    @staticmethod
    def _ack(order: Mapping[str, Any], code: str, message: str) -> Json:
        return {
            "algoId": order.get("algoId", "") if code == "0" else "",
            "clOrdId": "",
            "algoClOrdId": order.get("algoClOrdId", ""),
            "tag": order.get("tag", ""),
            "sCode": code,
            "sMsg": message,
        }

    # ---- reading

    def _find(self, params: Mapping[str, Any]) -> Json | None:
        if params.get("algoId"):
            return self.orders.get(str(params["algoId"]))
        client_id = params.get("algoClOrdId")
        return next(
            (o for o in reversed(self.orders.values()) if client_id and o["algoClOrdId"] == client_id), None
        )

    def _get(self, request: RestRequest) -> RestAnswer:
        order = self._find(request.query)
        if order is None:
            return _envelope([], "51603", "Order does not exist")
        return _envelope([order])

    def _pending(self, request: RestRequest) -> RestAnswer:
        query = request.query
        if not query.get("ordType"):
            return _envelope([], "50014", "Parameter ordType can not be empty.")
        kinds = str(query["ordType"]).split(",")
        return _envelope(
            [
                o
                for o in reversed(self._live())
                if o["ordType"] in kinds
                and query.get("instId") in (None, o["instId"])
                and query.get("instType") in (None, o["instType"])
            ]
        )

    def _live(self) -> list[Json]:
        return [o for o in self.orders.values() if o["state"] == "live"]

    # ---- canceling

    def _cancel(self, request: RestRequest) -> RestAnswer:
        body = json.loads(request.body or "[]")
        return _acks([self._cancel_one(item) for item in (body if isinstance(body, list) else [body])])

    def _cancel_one(self, params: Mapping[str, Any]) -> Json:
        order = self._find(params)
        if order is None or order["instId"] != params.get("instId") or order["state"] != "live":
            return {
                "algoId": str(params.get("algoId", "")),
                "algoClOrdId": str(params.get("algoClOrdId", "")),
                "sCode": "51400",
                "sMsg": "Cancellation failed as the order has been filled, canceled or does not exist",
            }
        order.update(state="canceled", uTime=_now())
        self._push(order)
        return {"algoId": order["algoId"], "algoClOrdId": order["algoClOrdId"], "sCode": "0", "sMsg": ""}

    def _push(self, order: Json) -> None:
        self.on_push(order["instType"], order["instId"], dict(order))
