"""ccxt.pro kraken, mended where it falls short of what the connector needs from Kraken's spot API.

- A duplicate client id: Kraken refuses a cl_ord_id held by an open order with
  "EOrder:Duplicate order", which ccxt 4.5.90 does not map (a bare ExchangeError); it is
  mapped to DuplicateOrderId so the connector hands back the first order.
- Placing and canceling: AddOrder answers with the txid and a description only (no status,
  no cl_ord_id), CancelOrder with a count: ccxt's order then carries no state. The order is
  read back (QueryOrders by txid); if that read fails, the ids are completed with what was
  asked (open, or canceled).
- Fetching by client id: ccxt's fetch_order sends the client id as `userref` (Kraken's
  integer tag, not cl_ord_id) with no txid, and then looks the None id up in the answer: it
  never finds an order. Kraken filters OpenOrders and ClosedOrders by cl_ord_id; the open
  order is asked first (cl_ord_id is unique among open orders), then the latest closed one.
  An unknown txid ("EOrder:Invalid order", an InvalidOrder in ccxt) is an OrderNotFound.
- The `executions` channel (WebSocket v2): ccxt routes a whole message by its first item's
  exec_type, so a message holding a trade and the order's new status is parsed entirely as
  trades; its items are split here (order updates first, so a fill is seen with the order
  as it stands after it). Kraken's status updates (new, filled, canceled) carry no symbol,
  which ccxt needs to merge them into the order it has: it is filled in from the order's
  first update. ccxt reads the client id from `order_userref` and the filled size from
  nowhere: cl_ord_id and cum_qty are read here.
- Listing: Kraken's OpenOrders and ClosedOrders list every pair at once, and cost a third of
  the private counter's decay a second; the connector asks once per symbol. One answer is
  shared by the calls of the next second (dropped at once by any order call or execution).
- Pair status: ccxt reads a pair as active only when AssetPairs gives it `status` "online". Kraken
  added that field in 2022; before, AssetPairs listed only pairs that traded, with no status
  (as in the recorded session of 2021), and ccxt read every one of them as inactive. A pair
  listed without a status is read as active here; a status given is read as ccxt reads it.
- Rate limit: ccxt's bucket holds one private call (cost 3 at 1 token a second), so ten reads
  take 30 s; Kraken's starter tier counter allows 15 calls before its 0.33/s decay, so the
  bucket holds 45 tokens here, full at start.
- Order-book checksums: ccxt can verify v2's CRC32 (option watchOrderBook.checksum) but its
  `format_number` is handed the book's floats and calls `.split` on them, so enabling the
  option fails on every book frame. Each float is formatted here to the pair's decimals
  (AssetPairs pair_decimals for prices, lot_decimals for sizes, as Kraken's checksum is
  defined) before ccxt's own formatting; a dropped book update is then caught as a
  ChecksumError and the book re-subscribed.
"""

from __future__ import annotations

import time
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import ccxt.pro

__all__ = ["KrakenExchange"]

DUPLICATE = "EOrder:Duplicate order"
# Seconds an OpenOrders / ClosedOrders answer serves the per-symbol calls that follow it.
_LISTING_TTL_S = 1.0
# Kraken's starter tier: 15 counter units (ccxt counts one as 3 tokens), taken as a burst.
_BUCKET = 45


class KrakenExchange(ccxt.pro.kraken):  # type: ignore[misc]
    """ccxt.pro kraken: duplicate ids mapped, full order answers, orders by cl_ord_id, executions,
    book checksums that work."""

    _symbol_by_order: dict[str, str]
    _listings: dict[str, tuple[float, list[Any]]]
    # The decimals (price, size) of the pair whose book frame is being handled; the count of
    # format_number calls since, which alternate price and size.
    _checksum_decimals: tuple[int, int] | None = None
    _checksum_calls = 0

    def describe(self) -> Any:
        return self.deep_extend(
            super().describe(),
            {
                "exceptions": {"exact": {DUPLICATE: ccxt.DuplicateOrderId}},
                "tokenBucket": {"capacity": _BUCKET, "tokens": _BUCKET - 3},
            },
        )

    async def fetch_markets(self, params: dict[str, Any] | None = None) -> list[Any]:
        markets = list(await super().fetch_markets(params or {}))
        for market in markets:
            if "status" not in (market.get("info") or {}):
                market["active"] = True
        return markets

    def _forget_listings(self) -> None:
        self._listings = {}

    async def _listing(self, kind: str) -> list[Any]:
        """Every open (or closed) order of the account, shared for a second."""
        if not hasattr(self, "_listings"):
            self._listings = {}
        cached = self._listings.get(kind)
        if cached is not None and time.monotonic() - cached[0] < _LISTING_TTL_S:
            return cached[1]
        fetch = super().fetch_open_orders if kind == "open" else super().fetch_closed_orders
        orders = list(await fetch(None, None, None, {}))
        self._listings[kind] = (time.monotonic(), orders)
        return orders

    async def _listed(
        self, kind: str, symbol: str | None, since: Any, limit: Any, params: dict[str, Any] | None
    ) -> list[Any]:
        query = dict(params or {})
        client_id = query.pop("clientOrderId", None)
        if query or since is not None or limit is not None:  # anything else: Kraken's own filters
            fetch = super().fetch_open_orders if kind == "open" else super().fetch_closed_orders
            return list(await fetch(symbol, since, limit, params or {}))
        return [
            order
            for order in await self._listing(kind)
            if (symbol is None or order.get("symbol") == symbol)
            and (client_id is None or order.get("clientOrderId") == client_id)
        ]

    async def fetch_open_orders(
        self,
        symbol: str | None = None,
        since: Any = None,
        limit: Any = None,
        params: dict[str, Any] | None = None,
    ) -> list[Any]:
        return await self._listed("open", symbol, since, limit, params)

    async def fetch_closed_orders(
        self,
        symbol: str | None = None,
        since: Any = None,
        limit: Any = None,
        params: dict[str, Any] | None = None,
    ) -> list[Any]:
        return await self._listed("closed", symbol, since, limit, params)

    async def cancel_all_orders(self, symbol: str | None = None, params: dict[str, Any] | None = None) -> Any:
        self._forget_listings()
        try:
            return await super().cancel_all_orders(symbol, params or {})
        finally:
            self._forget_listings()

    async def create_order(
        self,
        symbol: str,
        type: str,
        side: str,
        amount: float,
        price: float | None = None,
        params: dict[str, Any] | None = None,
    ) -> Any:
        asked = dict(params or {})
        self._forget_listings()
        placed = await super().create_order(symbol, type, side, amount, price, dict(asked))
        self._forget_listings()
        try:
            return await self.fetch_order(placed["id"], symbol)
        except ccxt.BaseError:
            return self.extend(placed, {"status": "open", "clientOrderId": asked.get("clientOrderId")})

    async def cancel_order(
        self, id: str, symbol: str | None = None, params: dict[str, Any] | None = None
    ) -> Any:
        self._forget_listings()
        canceled = await super().cancel_order(id, symbol, params or {})
        self._forget_listings()
        try:
            return await self.fetch_order(id, symbol)
        except ccxt.BaseError:
            return self.extend(canceled, {"id": id, "symbol": symbol, "status": "canceled"})

    async def fetch_order(
        self, id: str | None, symbol: str | None = None, params: dict[str, Any] | None = None
    ) -> Any:
        query = dict(params or {})
        client_id = query.pop("clientOrderId", None) or query.pop("cl_ord_id", None)
        if id is None and client_id is not None:
            return await self._by_client_id(str(client_id), symbol, query)
        try:
            return await super().fetch_order(id, symbol, query)
        except ccxt.OrderNotFound:
            raise
        except ccxt.InvalidOrder as exc:
            raise ccxt.OrderNotFound(f"{self.id} fetchOrder() could not find order id {id}: {exc}") from exc

    async def _by_client_id(self, client_id: str, symbol: str | None, query: dict[str, Any]) -> Any:
        asked = self.extend(query, {"clientOrderId": client_id})
        found = await self.fetch_open_orders(symbol, None, None, dict(asked))
        if not found:
            found = await self.fetch_closed_orders(symbol, None, None, dict(asked))
        if not found:
            raise ccxt.OrderNotFound(
                f"{self.id} fetchOrder() could not find an order with cl_ord_id {client_id}"
            )
        return max(found, key=lambda order: order.get("timestamp") or 0)

    # ---- the executions channel

    def handle_message(self, client: Any, message: Any) -> Any:
        if not isinstance(message, dict) or message.get("channel") != "executions":
            return super().handle_message(client, message)
        items = [item for item in message.get("data") or [] if isinstance(item, dict)]
        self._forget_listings()
        for item in items:
            self._remember_symbol(item)
        updates = [item for item in items if item.get("exec_type") != "trade"]
        trades = [item for item in items if item.get("exec_type") == "trade"]
        if updates:
            self.handle_orders(client, {**message, "data": updates})
        if trades:
            self.handle_my_trades(client, {**message, "data": trades})
        return None

    def _remember_symbol(self, item: dict[str, Any]) -> None:
        if not hasattr(self, "_symbol_by_order"):
            self._symbol_by_order = {}
        order_id = str(item.get("order_id") or "")
        if item.get("symbol"):
            self._symbol_by_order[order_id] = str(item["symbol"])
        elif order_id in self._symbol_by_order:
            item["symbol"] = self._symbol_by_order[order_id]

    def parse_ws_order(self, order: Any, market: Any = None) -> Any:
        parsed = super().parse_ws_order(order, market)
        client_id = self.safe_string(order, "cl_ord_id")
        if client_id is not None:
            parsed["clientOrderId"] = client_id
        filled = self.safe_number(order, "cum_qty")
        if filled is not None:
            parsed["filled"] = filled
            amount = self.safe_number(order, "order_qty")
            if amount is not None:
                parsed["amount"], parsed["remaining"] = amount, amount - filled
        if not parsed.get("average"):
            parsed["average"] = None
        return parsed

    # ---- book checksums

    def handle_order_book(self, client: Any, message: Any) -> Any:
        """ccxt formats, for each of the 10 best asks then bids, the price and then the qty:
        the decimals of the frame's pair are set first."""
        data = message.get("data") or [{}] if isinstance(message, dict) else [{}]
        market = (self.markets or {}).get((data[0] or {}).get("symbol"))
        info = market.get("info", {}) if market else {}
        self._checksum_decimals = (
            (int(info["pair_decimals"]), int(info["lot_decimals"]))
            if "pair_decimals" in info and "lot_decimals" in info
            else None
        )
        self._checksum_calls = 0
        return super().handle_order_book(client, message)

    def format_number(self, data: Any) -> str:
        if not isinstance(data, str):
            index = self._checksum_calls % 2  # price, qty, price, qty...
            self._checksum_calls += 1
            text = Decimal(repr(float(data)))
            if self._checksum_decimals is not None:
                text = text.quantize(Decimal(1).scaleb(-self._checksum_decimals[index]), ROUND_HALF_EVEN)
            data = format(text, "f")
        return str(super().format_number(data))
