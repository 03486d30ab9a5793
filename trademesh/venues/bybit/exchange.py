"""ccxt.pro's bybit client, mended where its order calls fall short of what the connector needs.

- `create_order` and `cancel_order`: Bybit's v5 answers carry only orderId and orderLinkId,
  so ccxt hands back an order with no status, size, side or price. The order is asked for
  by id right after the answer (GET /v5/order/realtime), so the caller gets it as it stands.
- `fetch_order`: on a unified account ccxt refuses unless `acknowledged` is set (the
  endpoint only knows the last 500 orders, which is what we want), and it does not map a
  `clientOrderId` to Bybit's `orderLinkId`: asked by client id (no order id), the order is
  looked up by orderLinkId.
- `cancel_all_orders_after`: ccxt arms Bybit's disconnection protection for product
  DERIVATIVES unless told a market type (its default beats `defaultType`); our market type
  goes along, so a spot venue arms it for SPOT.
- `create_order` of a stop: Bybit spot takes no triggerDirection (ccxt refuses one) and reads
  the direction from the last price when the order is placed, so a sell stop above the last
  price would wait for a rise. A stop the last price has already crossed (a sell at or above
  it, a buy at or below it: it would trigger at once) is refused before it is sent, as
  InvalidOrder, from the last price of GET /v5/market/tickers. The price may still move
  between that read and the order's arrival: a race the venue's API leaves open.
- `fetch_open_orders`: a unified account lists every kind of order when no orderFilter is
  sent; the ordinary book is asked with orderFilter=Order, the stops' (trigger=True) with
  StopOrder, so that a stop is listed once.
- `fetch_currencies`: ccxt ignores the `fetchCurrencies: False` option and, with credentials,
  asks /v5/asset/coin/query-info while loading markets (a key without wallet permission would
  fail to load them); the option is honoured: markets carry what the connector uses.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import ccxt.pro

from trademesh.venues.live.stop_guard import refuse_crossed_stop

__all__ = ["BybitExchange"]


class BybitExchange(ccxt.pro.bybit):  # type: ignore[misc]
    async def fetch_currencies(self, params: Any = None) -> Any:
        if self.options.get("fetchCurrencies") is False:
            return {}
        return await super().fetch_currencies(params or {})

    async def create_order(
        self, symbol: str, type: str, side: str, amount: float, price: Any = None, params: Any = None
    ) -> Any:
        trigger = (params or {}).get("triggerPrice")
        if trigger is not None:
            await self._refuse_crossed(symbol, side, Decimal(str(trigger)))
        ack = await super().create_order(symbol, type, side, amount, price, params or {})
        return await self._as_it_stands(ack, symbol)

    async def fetch_open_orders(
        self, symbol: str | None = None, since: Any = None, limit: Any = None, params: Any = None
    ) -> Any:
        rest = dict(params or {})
        if not (rest.get("trigger") or rest.get("stop")) and self._is_spot(symbol):
            rest.setdefault("orderFilter", "Order")
        return await super().fetch_open_orders(symbol, since, limit, rest)

    async def cancel_order(self, id: str, symbol: str | None = None, params: Any = None) -> Any:
        ack = await super().cancel_order(id, symbol, params or {})
        return await self._as_it_stands(ack, symbol)

    async def cancel_all_orders_after(self, window_ms: int, params: Any = None) -> Any:
        typed = {"type": self.options.get("defaultType", "spot"), **(params or {})}
        return await super().cancel_all_orders_after(window_ms, typed)

    async def fetch_order(self, id: str | None, symbol: str | None = None, params: Any = None) -> Any:
        rest = dict(params or {})
        client_id = rest.pop("clientOrderId", None)
        if id is None and client_id is not None:
            return await self._by_link_id(str(client_id), symbol, rest)
        return await super().fetch_order(id, symbol, {"acknowledged": True, **rest})

    async def _as_it_stands(self, ack: Any, symbol: str | None) -> Any:
        """The full order behind an acknowledgement (the acknowledgement if it cannot be found)."""
        if ack.get("status") is not None or not ack.get("id"):
            return ack
        try:
            return await self.fetch_order(ack["id"], symbol)
        except ccxt.OrderNotFound:
            return ack

    async def _refuse_crossed(self, symbol: str, side: str, trigger: Decimal) -> None:
        """InvalidOrder for a spot stop the last trade price has crossed (Bybit would hold it
        waiting for the other direction); nothing when the last price is unknown."""
        if self._is_spot(symbol):
            why = "Bybit spot would hold it for the opposite move"
            await refuse_crossed_stop(self, symbol, side, trigger, why)

    def _is_spot(self, symbol: str | None) -> bool:
        if symbol is not None and self.markets and symbol in self.markets:
            return bool(self.market(symbol).get("spot"))
        return bool(self.options.get("defaultType", "spot") == "spot")

    async def _by_link_id(self, client_id: str, symbol: str | None, params: dict[str, Any]) -> Any:
        await self.load_markets()
        market = self.market(symbol) if symbol is not None else None
        category, rest = self.get_bybit_type("fetchOrder", market, params)
        request: dict[str, Any] = {"category": category, "orderLinkId": client_id}
        if any([rest.pop("trigger", None), rest.pop("stop", None)]):
            request["orderFilter"] = "StopOrder"  # as ccxt's fetch_order asks the stops' book
        if market is not None:
            request["symbol"] = market["id"]
        response = await self.privateGetV5OrderRealtime(self.extend(request, rest))
        found = self.safe_list(self.safe_dict(response, "result", {}), "list", [])
        if not found:
            raise ccxt.OrderNotFound(f"{self.id} has no order with orderLinkId {client_id}")
        return self.parse_order(found[0], market)
