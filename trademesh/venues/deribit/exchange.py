"""ccxt.pro's deribit client, mended where ccxt 4.5.90 falls short of what the connector needs.

Book snapshots: a `book.<instrument>.<interval>` notification of type "snapshot" is the whole
book, but ccxt applies it as changes, so levels that vanished while the connection was down
would survive a reconnect: DeribitExchange starts the book afresh on a snapshot (the
change_id sequence check is trademesh/venues/deribit/sequence.py).

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

from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.venues.deribit.sequence import book_data
from trademesh.venues.live.derivatives import CacheStream, DerivativeStreams
from trademesh.venues.live.normalize import decimal_text

__all__ = ["DERIVATIVES", "DeribitExchange", "mark_of", "open_interest_of"]


def mark_of(ticker: dict[str, Any]) -> tuple[int | None, md.MarkPrice] | None:
    """A `ticker.<instrument>.100ms` notification's data (ccxt's ticker `info`): its mark price
    and index price, at its `timestamp` (ms)."""
    data = ticker.get("info") or {}
    mark = decimal_text(data.get("mark_price"))
    if not mark:
        return None
    return data.get("timestamp"), md.MarkPrice(
        mark_price=mark, index_price=decimal_text(data.get("index_price"))
    )


def _inverse(instrument: str) -> bool:
    """BTC-PERPETUAL, BTC-27DEC24: an inverse perpetual or future, whose amounts are USD (not a
    linear one, BTC_USDC-PERPETUAL, nor an option, BTC-27DEC24-60000-C)."""
    return "_" not in instrument and instrument.count("-") == 1


def open_interest_of(ticker: dict[str, Any]) -> tuple[int | None, md.OpenInterest] | None:
    """The same data's `open_interest`: in the instrument's amount unit (USD for an inverse
    perpetual or future, as trademesh sizes them; the base coin for options and linear ones), its
    value in USD where the amount is USD."""
    data = ticker.get("info") or {}
    size = decimal_text(data.get("open_interest"))
    if not size:
        return None
    value = size if _inverse(str(data.get("instrument_name", ""))) else ""
    return data.get("timestamp"), md.OpenInterest(size=size, value=value)


# The ticker stream (watch_ticker: what the tickers channel reads too) states the mark price, the
# index price and the open interest; Deribit publishes no liquidation stream (its trades carry a
# `liquidation` flag instead), so the venue has no liquidations channel.
DERIVATIVES = DerivativeStreams(
    mark=CacheStream("watch_ticker", "tickers", mark_of),
    open_interest=CacheStream("watch_ticker", "tickers", open_interest_of),
)


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
