"""ccxt.pro's deribit client, mended where ccxt 4.5.90 falls short of what the connector needs.

Book snapshots: a `book.<instrument>.<interval>` notification of type "snapshot" is the whole
book, but ccxt applies it as changes, so levels that vanished while the connection was down
would survive a reconnect: DeribitExchange starts the book afresh on a snapshot (the
change_id sequence check is venues/deribit/sequence.py).

The client order id (Deribit's `label`): ccxt passes a unified `clientOrderId` param through
to private/buy and private/sell unchanged (Deribit knows no such field, so the order gets no
label), never reads `label` back (every parsed order has clientOrderId None), and its
fetch_order asks private/get_order_state for an order id only. DeribitExchange:
- sends `clientOrderId` as `label` when placing;
- reads `label` into `clientOrderId` of every order it parses (REST answers and the
  user.orders stream alike);
- answers fetch_order(None, symbol, {"clientOrderId": label}) from
  private/get_order_state_by_label (Deribit's lookup by label, per currency), keeping the
  orders of the symbol's instrument and returning the first placed (OrderNotFound when none).

ccxt.pro's handle_my_trades also keeps the user.trades it parses in a cache it never
stores on the client (`myTrades` stays None), so nothing reading `exchange.myTrades` (the
connector's private streams) would see a fill: the cache is created on the client first.
"""

from __future__ import annotations

from typing import Any

import ccxt.pro
from ccxt.async_support.base.ws.cache import ArrayCacheBySymbolById

from venues.deribit.sequence import book_data

__all__ = ["DeribitExchange"]


class DeribitExchange(ccxt.pro.deribit):  # type: ignore[misc]
    def handle_order_book(self, client: Any, message: dict[str, Any]) -> Any:
        data = book_data(message)
        if data is not None and data.get("type") == "snapshot":
            symbol = self.safe_symbol(data.get("instrument_name"))
            if self.orderbooks and symbol in self.orderbooks:
                del self.orderbooks[symbol]
        return super().handle_order_book(client, message)

    async def create_order(
        self,
        symbol: str,
        type: str,
        side: str,
        amount: float,
        price: float | None = None,
        params: dict[str, Any] | None = None,
    ) -> Any:
        sent = dict(params or {})
        label = sent.pop("clientOrderId", None)
        if label is not None and "label" not in sent:
            sent["label"] = label
        return await super().create_order(symbol, type, side, amount, price, sent)

    async def fetch_order(
        self, id: str | None, symbol: str | None = None, params: dict[str, Any] | None = None
    ) -> Any:
        asked = dict(params or {})
        label = asked.pop("clientOrderId", None)
        if id is not None or label is None:
            return await super().fetch_order(id, symbol, asked)
        return await self._order_by_label(str(label), symbol, asked)

    async def _order_by_label(self, label: str, symbol: str | None, params: dict[str, Any]) -> Any:
        if symbol is None:
            raise ccxt.ArgumentsRequired(f"{self.id} fetch_order by clientOrderId needs a symbol")
        await self.load_markets()
        market = self.market(symbol)
        request = {"currency": market["baseId"], "label": label, **params}
        response = await self.privateGetGetOrderStateByLabel(request)
        found = [
            order
            for order in self.safe_list(response, "result", []) or []
            if order.get("instrument_name") == market["id"]
        ]
        if not found:
            raise ccxt.OrderNotFound(f"{self.id} no order labelled {label} on {market['id']}")
        first = min(found, key=lambda order: int(order.get("creation_timestamp") or 0))
        return self.parse_order(first, market)

    def handle_my_trades(self, client: Any, message: dict[str, Any]) -> None:
        if getattr(self, "myTrades", None) is None:
            self.myTrades = ArrayCacheBySymbolById(self.safe_integer(self.options, "tradesLimit", 1000))
        super().handle_my_trades(client, message)

    def parse_order(self, order: dict[str, Any], market: Any = None) -> Any:
        parsed = super().parse_order(order, market)
        label = order.get("label") if isinstance(order, dict) else None
        if label:
            parsed["clientOrderId"] = label
        return parsed
