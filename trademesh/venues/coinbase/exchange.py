"""ccxt.pro coinbase, mended where it falls short of what the connector needs from Advanced Trade.

- The client order id: ccxt 4.5.90's create_order always sends a client_order_id of its own
  ("ccxt-<uuid>") and drops the caller's `clientOrderId`; it is sent as Coinbase's
  `client_order_id` here, so a retried order can be found and is never placed twice.
- Market buys: ccxt 4.5.90 sends a spot market buy as market_market_ioc with `quote_size` (the
  quote to spend), so it asks for a price to work that out (createMarketBuyOrderRequiresPrice)
  and refuses the order without one. Advanced Trade takes `base_size` for a market buy too
  (Coinbase's own Python SDK's market_order_buy sends either): the size asked, in the base
  currency, is sent as base_size here, so the order buys what was asked whatever the price.
  A caller's `cost` param still goes out as ccxt sends it (quote_size).
- Order answers: POST /orders answers with the ids only (success_response) and
  batch_cancel with {success, order_id}; ccxt's orders then carry no size, price or state.
  Both are read back (GET /orders/historical/{order_id}).
- A repeated client_order_id: Coinbase creates nothing and answers success with the order
  that holds the id. An answer naming an order this client has already placed is raised as
  DuplicateOrderId (the connector then hands back the first order as a duplicate).
- Fetching by client id: Coinbase has no lookup by client_order_id (ccxt would ask for
  /orders/historical/None); the product's orders are listed (GET /orders/historical/batch)
  and the one with that client_order_id is taken.
- An unknown order: Coinbase answers 404 {"error":"NOT_FOUND", "message":"order with this
  orderID was not found"}; ccxt's broad match reads "order with self orderID" (a slip of its
  transpiler) against the `error` field, so it never becomes OrderNotFound. It does here.
- The `user` channel (watch_orders): ccxt reads `cumulative_quantity` as the order's amount
  and `total_fees` into `fee.amount` (not `cost`); the amount is cumulative plus leaves
  quantity here, the fee a cost. ccxt has no watch_my_trades for Coinbase (the channel
  carries orders, not fills): a fill is derived here from each rise of an order's
  cumulative quantity (size: the rise; fee: the rise of total_fees; price: from the change
  of avg_price times cumulative quantity; id: "<order id>:<cumulative quantity>"), taker by
  default (the channel does not say).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import ccxt.pro
from ccxt.async_support.base.ws.cache import ArrayCacheBySymbolById
from ccxt.base.types import Num

__all__ = ["CoinbaseExchange"]


def _decimal(value: Any) -> Decimal:
    return Decimal(str(value)) if value not in (None, "") else Decimal(0)


class CoinbaseExchange(ccxt.pro.coinbase):  # type: ignore[misc]
    """ccxt.pro coinbase: the caller's client order id, full order answers, fills from `user`."""

    def __init__(self, config: Any = None) -> None:
        super().__init__(config or {})
        self._placed: set[str] = set()  # order ids this client has created
        self._cumulative: dict[str, tuple[Decimal, Decimal, Decimal]] = {}  # id -> (qty, avg, fees)

    def describe(self) -> Any:
        return self.deep_extend(super().describe(), {"has": {"watchMyTrades": True}})

    # ---- REST

    async def create_order(
        self, symbol: str, type: str, side: str, amount: float, price: Num = None, params: Any = None
    ) -> Any:
        params = dict(params or {})
        client_id = params.pop("clientOrderId", None)
        if client_id is not None:
            params["client_order_id"] = client_id
        if type == "market" and side == "buy" and "cost" not in params:
            params.update(await self._sized_in_base(symbol, amount))
        placed = await super().create_order(symbol, type, side, amount, price, params)
        if placed["id"] in self._placed:
            raise ccxt.DuplicateOrderId(
                f"{self.id} client_order_id {client_id} is held by order {placed['id']}"
            )
        self._placed.add(placed["id"])
        return await self.fetch_order(placed["id"], symbol)

    async def _sized_in_base(self, symbol: str, amount: float) -> dict[str, Any]:
        """The params that send a spot market buy with base_size (ccxt's own quote_size replaced
        by the request's order_configuration, which ccxt merges over its own)."""
        await self.load_markets()
        if not self.market(symbol)["spot"]:
            return {}
        base_size = self.amount_to_precision(symbol, amount)
        return {
            "createMarketBuyOrderRequiresPrice": False,
            "order_configuration": {"market_market_ioc": {"base_size": base_size}},
        }

    async def cancel_order(self, id: str, symbol: str | None = None, params: Any = None) -> Any:
        await super().cancel_order(id, symbol, params or {})
        return await self.fetch_order(id, symbol)

    async def fetch_order(self, id: str | None, symbol: str | None = None, params: Any = None) -> Any:
        params = dict(params or {})
        client_id = params.pop("clientOrderId", None) or params.pop("client_order_id", None)
        if id is not None or client_id is None:
            return await super().fetch_order(id, symbol, params)
        for order in await self.fetch_orders(symbol, None, None, params):
            if order.get("clientOrderId") == client_id:
                return order
        raise ccxt.OrderNotFound(f"{self.id} no order with client_order_id {client_id}")

    def handle_errors(
        self,
        code: int,
        reason: str,
        url: str,
        method: str,
        headers: Any,
        body: str,
        response: Any,
        request_headers: Any,
        request_body: Any,
    ) -> Any:
        if code == 404 and isinstance(response, dict) and response.get("error") == "NOT_FOUND":
            raise ccxt.OrderNotFound(f"{self.id} {body}")
        return super().handle_errors(
            code, reason, url, method, headers, body, response, request_headers, request_body
        )

    # ---- the user channel

    async def watch_my_trades(
        self,
        symbol: str | None = None,
        since: int | None = None,
        limit: int | None = None,
        params: Any = None,
    ) -> Any:
        """Fills, derived from the `user` channel's order updates (see the module docstring)."""
        await self.watch_orders(symbol, since, limit, params or {})
        return self.myTrades

    def parse_ws_order(self, order: Any, market: Any = None) -> Any:
        parsed = super().parse_ws_order(order, market)
        filled = _decimal(order.get("cumulative_quantity"))
        parsed["amount"] = float(filled + _decimal(order.get("leaves_quantity")))
        fees = order.get("total_fees")
        parsed["fee"] = {"cost": float(fees) if fees else None, "currency": parsed["fee"].get("currency")}
        parsed["type"] = str(order.get("order_type") or "").lower() or None
        return parsed

    def handle_order(self, client: Any, message: Any) -> None:
        for event in message.get("events") or []:
            for order in event.get("orders") or []:
                self._fill_of(order)
        super().handle_order(client, message)

    def _fill_of(self, order: dict[str, Any]) -> None:
        """Add to myTrades the fill a rise of the order's cumulative quantity tells of."""
        order_id = str(order.get("order_id"))
        quantity, average = _decimal(order.get("cumulative_quantity")), _decimal(order.get("avg_price"))
        fees = _decimal(order.get("total_fees"))
        before = self._cumulative.get(order_id, (Decimal(0), Decimal(0), Decimal(0)))
        self._cumulative[order_id] = (quantity, average, fees)
        size = quantity - before[0]
        if size <= 0:
            return
        price = (quantity * average - before[0] * before[1]) / size
        market = self.safe_market(order.get("product_id"))
        trade = self.safe_trade(
            {
                "info": order,
                "id": f"{order_id}:{order.get('cumulative_quantity')}",
                "order": order_id,
                "symbol": market["symbol"],
                "side": str(order.get("order_side") or "").lower(),
                "price": format(price.normalize(), "f"),
                "amount": format(size.normalize(), "f"),
                "takerOrMaker": "taker",
                "fee": {"cost": format((fees - before[2]).normalize(), "f"), "currency": market["quote"]},
                "timestamp": self.milliseconds(),
            },
            market,
        )
        trades: Any = getattr(self, "myTrades", None)
        if trades is None:
            trades = ArrayCacheBySymbolById(self.safe_integer(self.options, "tradesLimit", 1000))
            self.myTrades = trades
        trades.append(trade)
