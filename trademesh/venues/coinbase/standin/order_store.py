"""A small Coinbase Advanced Trade order store for the replay stand-in, in Coinbase's formats.

Endpoints (under api.coinbase.com/api/v3/brokerage/): POST orders (create; a repeated
client_order_id creates nothing and answers success with the order that already has it,
as Coinbase's Create Order documents), POST orders/batch_cancel, GET orders/historical/batch
(by order_status and product_id), GET orders/historical/{order_id}, GET accounts and
GET transaction_summary (the fee tier).

An order that does not cross the tracked book rests (OPEN) until canceled; a marketable one
(a limit buy at or above the best offer, a sell at or below the best bid, or a market
order) fills at once, entirely, at the best opposite price of the book at the replay
position (no walk through the depth: a simplification), with a flat 0.6 % fee in the quote
currency. Balances do not move. Every change is handed to `on_update` as the order object of
the WebSocket `user` channel.

A market order (market_market_ioc) is sized by one of quote_size and base_size, on either side:
Advanced Trade takes base_size for a buy too (Coinbase's own Python SDK's market_order_buy sends
either); one with both or neither is refused (INVALID_ARGUMENT, the message the stand-in's).
Each order's configuration is logged as received ("replay: Coinbase create order BUY {...}").
"""

from __future__ import annotations

import itertools
import json
import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from trademesh.venues.replay.adapter import RestAnswer, RestRequest

__all__ = ["CoinbaseOrders"]

log = logging.getLogger(__name__)

_FEE_RATE = Decimal("0.006")
_ACCOUNTS = {"USD": "100000", "BTC": "2"}
_PREFIX = "/api/v3/brokerage/"
_SUMMARY = {
    "total_volume": 0,
    "total_fees": 0,
    "fee_tier": {
        "pricing_tier": "Advanced 1",
        "usd_from": "0",
        "usd_to": "10000",
        "taker_fee_rate": str(_FEE_RATE),
        "maker_fee_rate": "0.004",
    },
    "margin_rate": None,
    "goods_and_services_tax": None,
    "advanced_trade_only_volume": 0,
    "advanced_trade_only_fees": 0,
    "coinbase_pro_volume": 0,
    "coinbase_pro_fees": 0,
}
# The best bid and offer of a product at the replay position, as the venue wrote them.
BestPrices = Callable[[str], tuple[str, str] | None]


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _text(value: Decimal) -> str:
    return format(value.normalize(), "f") if value else "0"


def _error(status: int, error: str, message: str) -> RestAnswer:
    return RestAnswer.json({"error": error, "error_details": message, "message": message}, status)


def _refusal(side: object, configuration: dict[str, Any]) -> str | None:
    """Why Create Order refuses an order's side and configuration (None: it does not). A market IOC
    order is sized by one of quote_size (the quote to spend) and base_size (the base to buy or
    sell), either on either side."""
    if not configuration or side not in ("BUY", "SELL"):
        return "order_configuration and side are required"
    market = configuration.get("market_market_ioc")
    if isinstance(market, dict) and len({"quote_size", "base_size"} & market.keys()) != 1:
        return "market_market_ioc takes one of quote_size and base_size"
    return None


def endpoint(path: str) -> str:
    """The part of a stand-in path after /api/v3/brokerage/ ("" for other paths)."""
    return path.split(_PREFIX, 1)[1] if _PREFIX in path else ""


class CoinbaseOrders:
    def __init__(self, best: BestPrices = lambda product: None) -> None:
        self.best = best
        self.on_update: Callable[[dict[str, Any]], None] = lambda order: None
        self.orders: dict[str, dict[str, Any]] = {}
        self._numbers = itertools.count(1)

    def answer(self, request: RestRequest) -> RestAnswer | None:
        """Coinbase's answer to an order or account call; None for other paths."""
        route = (request.method, endpoint(request.path))
        if route == ("POST", "orders"):
            return self._create(request.body)
        if route == ("POST", "orders/batch_cancel"):
            return self._batch_cancel(request.body)
        if route == ("GET", "orders/historical/batch"):
            return RestAnswer.json({"orders": self._listed(request.query), "has_next": False, "cursor": ""})
        if request.method == "GET" and route[1].startswith("orders/historical/"):
            order = self.orders.get(route[1].rsplit("/", 1)[1])
            if order is None:
                return _error(404, "NOT_FOUND", "order with this orderID was not found")
            return RestAnswer.json({"order": order})
        if route == ("GET", "accounts"):
            return RestAnswer.json(self._accounts())
        if route == ("GET", "transaction_summary"):  # ccxt reads the fee tier with the markets
            return RestAnswer.json(_SUMMARY)
        return None

    # ---- placing

    def _create(self, body: str) -> RestAnswer:
        request = json.loads(body or "{}")
        client_id = str(request.get("client_order_id") or "")
        existing = self.by_client_id(client_id)
        if existing is not None:  # Coinbase creates nothing and hands back the order with that id
            return RestAnswer.json(self._success(existing))
        configuration = request.get("order_configuration") or {}
        log.info("replay: Coinbase create order %s %s", request.get("side"), json.dumps(configuration))
        problem = _refusal(request.get("side"), configuration)
        if problem is not None:
            return RestAnswer.json(
                {
                    "success": False,
                    "error_response": {"error": "INVALID_ARGUMENT", "message": problem, "error_details": ""},
                    "order_configuration": configuration,
                }
            )
        order = self._new(request, client_id or str(uuid.uuid4()), configuration)
        self.orders[order["order_id"]] = order
        self.on_update(order)
        price = self._crossing_price(order)
        if price is not None:
            self._fill(order, price)
        return RestAnswer.json(self._success(order))

    def _new(self, request: dict[str, Any], client_id: str, configuration: dict[str, Any]) -> dict[str, Any]:
        kind, terms = next(iter(configuration.items()))
        market = kind.startswith("market")
        number = next(self._numbers)
        return {
            "order_id": f"11111111-0000-4000-8000-{number:012d}",
            "product_id": request["product_id"],
            "user_id": "replay-user",
            "order_configuration": configuration,
            "side": request["side"],
            "client_order_id": client_id,
            "status": "OPEN",
            "time_in_force": "IMMEDIATE_OR_CANCEL" if market else "GOOD_UNTIL_CANCELLED",
            "created_time": _now(),
            "completion_percentage": "0",
            "filled_size": "0",
            "average_filled_price": "0",
            "number_of_fills": "0",
            "filled_value": "0",
            "pending_cancel": False,
            "size_in_quote": "quote_size" in terms,
            "total_fees": "0",
            "size_inclusive_of_fees": False,
            "total_value_after_fees": "0",
            "trigger_status": "INVALID_ORDER_TYPE",
            "order_type": "MARKET" if market else "LIMIT",
            "reject_reason": "REJECT_REASON_UNSPECIFIED",
            "settled": False,
            "product_type": "SPOT",
            "reject_message": "",
            "cancel_message": "",
            "order_placement_source": "RETAIL_ADVANCED",
            "outstanding_hold_amount": "0",
            "is_liquidation": False,
            "last_fill_time": None,
            "edit_history": [],
            "leverage": "",
            "margin_type": "UNKNOWN_MARGIN_TYPE",
            "retail_portfolio_id": "replay-portfolio",
        }

    @staticmethod
    def _success(order: dict[str, Any]) -> dict[str, Any]:
        ids = {key: order[key] for key in ("order_id", "product_id", "side", "client_order_id")}
        return {"success": True, "success_response": ids, "order_configuration": order["order_configuration"]}

    @staticmethod
    def _terms(order: dict[str, Any]) -> dict[str, Any]:
        return dict(next(iter(order["order_configuration"].values())))

    def _crossing_price(self, order: dict[str, Any]) -> str | None:
        best = self.best(order["product_id"])
        if best is None:
            return None
        bid, offer = best
        limit = self._terms(order).get("limit_price")
        if order["side"] == "BUY":
            return offer if limit is None or Decimal(limit) >= Decimal(offer) else None
        return bid if limit is None or Decimal(limit) <= Decimal(bid) else None

    def _fill(self, order: dict[str, Any], price: str) -> None:
        terms = self._terms(order)
        if "base_size" in terms:
            size = Decimal(terms["base_size"])
        else:  # a market buy sized in the quote currency
            size = Decimal(terms["quote_size"]) / Decimal(price)
        value = size * Decimal(price)
        fee = value * _FEE_RATE
        order.update(
            status="FILLED",
            completion_percentage="100",
            filled_size=_text(size),
            average_filled_price=price,
            number_of_fills="1",
            filled_value=_text(value),
            total_fees=_text(fee),
            total_value_after_fees=_text(value + fee if order["side"] == "BUY" else value - fee),
            last_fill_time=_now(),
            settled=True,
        )
        self.on_update(order)

    # ---- canceling and listing

    def _batch_cancel(self, body: str) -> RestAnswer:
        results = [self._cancel(str(order_id)) for order_id in json.loads(body or "{}").get("order_ids", [])]
        return RestAnswer.json({"results": results})

    def _cancel(self, order_id: str) -> dict[str, Any]:
        order = self.orders.get(order_id)
        if order is None or order["status"] != "OPEN":
            reason = "UNKNOWN_CANCEL_ORDER" if order is None else "ORDER_IS_FULLY_FILLED"
            if order is not None and order["status"] == "CANCELLED":
                reason = "DUPLICATE_CANCEL_REQUEST"
            return {"success": False, "failure_reason": reason, "order_id": order_id}
        order.update(status="CANCELLED", cancel_message="User requested cancel")
        self.on_update(order)
        return {"success": True, "failure_reason": "UNKNOWN_CANCEL_FAILURE_REASON", "order_id": order_id}

    def _listed(self, query: Any) -> list[dict[str, Any]]:
        status = query.get("order_status")
        product = query.get("product_id") or query.get("product_ids")
        return [
            order
            for order in reversed(self.orders.values())  # newest first, as Coinbase lists them
            if status in (None, order["status"]) and product in (None, order["product_id"])
        ]

    def by_client_id(self, client_id: str) -> dict[str, Any] | None:
        if not client_id:
            return None
        return next((o for o in self.orders.values() if o["client_order_id"] == client_id), None)

    def open_orders(self) -> list[dict[str, Any]]:
        return [order for order in self.orders.values() if order["status"] == "OPEN"]

    @staticmethod
    def _accounts() -> dict[str, Any]:
        accounts = [
            {
                "uuid": f"00000000-0000-4000-8000-00000000000{i}",
                "name": f"{currency} Wallet",
                "currency": currency,
                "available_balance": {"value": amount, "currency": currency},
                "default": True,
                "active": True,
                "created_at": "2024-01-01T00:00:00.000Z",
                "updated_at": "2024-01-01T00:00:00.000Z",
                "deleted_at": None,
                "type": "ACCOUNT_TYPE_FIAT" if currency == "USD" else "ACCOUNT_TYPE_CRYPTO",
                "ready": True,
                "hold": {"value": "0", "currency": currency},
                "retail_portfolio_id": "replay-portfolio",
            }
            for i, (currency, amount) in enumerate(_ACCOUNTS.items())
        ]
        return {"accounts": accounts, "has_next": False, "cursor": "", "size": len(accounts)}


def ws_order(order: dict[str, Any]) -> dict[str, Any]:
    """An order as the WebSocket `user` channel writes it."""
    terms = CoinbaseOrders._terms(order)
    filled = Decimal(order["filled_size"])
    size = Decimal(terms.get("base_size") or order["filled_size"])
    return {
        "order_id": order["order_id"],
        "client_order_id": order["client_order_id"],
        "cumulative_quantity": order["filled_size"],
        "leaves_quantity": "0" if order["status"] != "OPEN" else _text(size - filled),
        "avg_price": order["average_filled_price"],
        "total_fees": order["total_fees"],
        "status": order["status"],
        "product_id": order["product_id"],
        "creation_time": order["created_time"],
        "order_side": order["side"],
        "order_type": order["order_type"].capitalize(),
        "cancel_reason": order["cancel_message"],
        "reject_reason": "",
        "limit_price": terms.get("limit_price", "0"),
        "stop_price": "0",
        "post_only": bool(terms.get("post_only", False)),
        "filled_value": order["filled_value"],
        "number_of_fills": order["number_of_fills"],
        "completion_percentage": order["completion_percentage"],
        "total_value_after_fees": order["total_value_after_fees"],
        "time_in_force": order["time_in_force"],
        "product_type": "SPOT",
        "outstanding_hold_amount": order["outstanding_hold_amount"],
        "trigger_status": order["trigger_status"],
        "contract_expiry_type": "UNKNOWN_CONTRACT_EXPIRY_TYPE",
        "risk_managed_by": "UNKNOWN_RISK_MANAGEMENT_TYPE",
    }
