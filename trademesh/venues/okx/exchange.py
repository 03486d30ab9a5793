"""ccxt.pro okx, mended where it falls short of what the connector needs from OKX's API v5:
order answers read back, cancel-all, fill fee signs, market orders on swaps, stops as algo
orders, realised PnL, book checksums, swaps' 24h volume (docs/connector.md, "OKX: what its
exchange.py mends")."""

from __future__ import annotations

import zlib
from decimal import Decimal
from typing import Any

import ccxt.pro

from trademesh.venues.live.stop_guard import refuse_crossed_stop

__all__ = ["OkxExchange", "book_checksum"]

# Most orders one POST /trade/cancel-batch-orders takes.
_CANCEL_BATCH = 20
# Levels of each side the book checksum covers.
_CHECKSUM_DEPTH = 25
# The ccxt params that ask for OKX's algo orders (STOP_BOOK in trademesh/venues/okx/spec.py), and those
# whose presence makes ccxt's create_order place one.
_ALGO_BOOK = ("trigger", "stop")
_TRIGGERS = ("triggerPrice", "stopPrice", "triggerPx")
# Times in force ccxt would turn into an ordinary order's ordType (ioc, fok), which a trigger
# order's ordType replaces: asked of a stop, they are refused rather than dropped.
_NO_TIF = ("IOC", "FOK")


def _book(params: dict[str, Any] | None, placing: bool = False) -> dict[str, Any]:
    """The params that address the book these params reach: {"trigger": True} for the algo orders."""
    keys = _ALGO_BOOK + (_TRIGGERS if placing else ())
    return {"trigger": True} if any((params or {}).get(key) for key in keys) else {}


def book_checksum(bids: list[tuple[str, str]], asks: list[tuple[str, str]]) -> int:
    """OKX's book checksum of (price, size) strings, best first: bid, ask, bid, ask... over 25 levels."""
    fields: list[str] = []
    for i in range(_CHECKSUM_DEPTH):
        if i < len(bids):
            fields += bids[i]
        if i < len(asks):
            fields += asks[i]
    crc = zlib.crc32(":".join(fields).encode())
    return crc - (1 << 32) if crc >= (1 << 31) else crc


def _texts(bookside: Any) -> dict[float, tuple[str, str]]:
    """The (price, size) strings OKX sent for each level of one ccxt book side, by ccxt's float price."""
    texts: dict[float, tuple[str, str]] | None = getattr(bookside, "_okx_texts", None)
    if texts is None:
        texts = {}
        bookside._okx_texts = texts
    return texts


def _best_texts(bookside: Any) -> list[tuple[str, str]]:
    texts = _texts(bookside)
    if len(texts) > 2 * len(bookside) + _CHECKSUM_DEPTH:  # levels ccxt trimmed off its depth
        kept = {level[0] for level in bookside}
        for price in [price for price in texts if price not in kept]:
            del texts[price]
    return [texts.get(level[0]) or (repr(level[0]), repr(level[1])) for level in bookside[:_CHECKSUM_DEPTH]]


class OkxExchange(ccxt.pro.okx):  # type: ignore[misc]
    """ccxt.pro okx: full order answers, a cancel_all_orders, fill fees as costs, pnl before fees."""

    def describe(self) -> Any:
        # OKX's bars of 6 hours and more (6H 12H 1D 1W 1M 3M, REST and candle channels) open at
        # Hong Kong midnight; their ...utc twins at UTC midnight, weeks on Mondays, as the mesh's
        # bars. ccxt's fetch_ohlcv appends "utc" itself under timezone "UTC", its watch_ohlcv
        # never: the twins are named here, for both, and the timezone keeps it from adding another.
        base = super().describe()
        utc = {
            name: f"{bar}utc"
            for name, bar in base["timeframes"].items()
            if self.parse_timeframe(name) >= 21600
        }
        mended = {
            "has": {"cancelAllOrders": True},
            "timeframes": utc,
            "options": {"fetchOHLCV": {"timezone": "named"}},
        }
        return self.deep_extend(base, mended)

    async def create_order(
        self,
        symbol: str,
        type: str,
        side: str,
        amount: float,
        price: float | None = None,
        params: dict[str, Any] | None = None,
    ) -> Any:
        trigger = self.safe_string_n(params or {}, list(_TRIGGERS))
        if trigger is not None:
            await self._refuse_crossed(symbol, side, Decimal(trigger))
        placed = await super().create_order(symbol, type, side, amount, price, params or {})
        book = _book(params, placing=True)
        try:
            return await self.fetch_order(placed["id"], symbol, book)
        except ccxt.BaseError:
            asked = {"amount": amount, "price": price if type != "market" else None, "status": "open"}
            if book:
                asked["triggerPrice"] = self.safe_number_n(params or {}, list(_TRIGGERS))
            return self.extend(placed, asked)

    async def _refuse_crossed(self, symbol: str, side: str, trigger: Decimal) -> None:
        """A stop the last trade price has crossed, refused (trademesh.venues.live.stop_guard)."""
        await refuse_crossed_stop(self, symbol, side, trigger, "OKX would hold it for the opposite move")

    def create_order_request(
        self,
        symbol: str,
        type: str,
        side: str,
        amount: float,
        price: float | None = None,
        params: dict[str, Any] | None = None,
    ) -> Any:
        request = super().create_order_request(symbol, type, side, amount, price, params or {})
        if request.get("ordType") == "trigger" and self.safe_string(params or {}, "timeInForce") in _NO_TIF:
            raise ccxt.InvalidOrder(
                f"{self.id} a stop (an OKX trigger order) takes no time in force: it places a "
                "market order, or a GTC limit order, once triggered"
            )
        algo = self.safe_dict(self.options, "algoOrderTypes", {})
        if request.get("ordType") in algo and "clOrdId" in request:
            request["algoClOrdId"] = request.pop("clOrdId")
        return request

    async def cancel_order(
        self, id: str, symbol: str | None = None, params: dict[str, Any] | None = None
    ) -> Any:
        canceled = await super().cancel_order(id, symbol, params or {})
        try:
            return await self.fetch_order(canceled.get("id") or id, symbol, _book(params))
        except ccxt.BaseError:
            return self.extend(canceled, {"status": "canceled"})

    async def cancel_all_orders(self, symbol: str | None = None, params: dict[str, Any] | None = None) -> Any:
        live = await self.fetch_open_orders(symbol, None, None, params or {})
        by_symbol: dict[str, list[str]] = {}
        for order in live:
            by_symbol.setdefault(order["symbol"], []).append(order["id"])
        canceled: list[Any] = []
        for name, ids in by_symbol.items():
            for start in range(0, len(ids), _CANCEL_BATCH):
                canceled += await self.cancel_orders(ids[start : start + _CANCEL_BATCH], name, _book(params))
        return canceled

    def handle_orders(self, client: Any, message: Any) -> None:
        super().handle_orders(client, message)
        if self.safe_string(self.safe_dict(message, "arg", {}), "channel") == "orders-algo":
            for order in self.parse_orders(self.safe_list(message, "data", [])):
                self.orders.append(order)

    def order_to_trade(self, order: Any, market: Any = None) -> Any:
        trade = super().order_to_trade(order, market)
        fees = [trade.get("fee"), *(trade.get("fees") or [])]
        flipped: set[int] = set()
        for fee in fees:
            if isinstance(fee, dict) and fee.get("cost") and id(fee) not in flipped:
                fee["cost"] = -fee["cost"]
                flipped.add(id(fee))
        return trade

    def parse_ticker(self, ticker: Any, market: Any = None) -> Any:
        """A swap's 24h volume in its base coin: ccxt 4.5 takes `vol24h` for it, which OKX counts in
        contracts on swaps; `volCcy24h` is the base amount there (the Tickers channel's docs). An
        inverse swap's quote volume is its contracts times their face value (ctVal, in USD); a
        linear swap's is not stated (left out)."""
        parsed = super().parse_ticker(ticker, market)
        found = self.safe_market(self.safe_string(ticker, "instId"), market)
        if not found.get("contract"):
            return parsed
        parsed["baseVolume"] = self.safe_string(ticker, "volCcy24h")
        contracts, face = self.safe_string(ticker, "vol24h"), self.safe_string(found, "contractSize")
        inverse = found.get("inverse") and contracts is not None and face is not None
        parsed["quoteVolume"] = str(Decimal(contracts) * Decimal(face)) if inverse else None
        return parsed

    def parse_position(self, position: Any, market: Any = None) -> Any:
        parsed = super().parse_position(position, market)
        parsed["realizedPnl"] = self.safe_number(position, "pnl", parsed.get("realizedPnl"))
        return parsed

    # ---- book checksums

    def handle_delta(self, bookside: Any, delta: Any) -> None:
        super().handle_delta(bookside, delta)
        price, texts = self.safe_float(delta, 0), _texts(bookside)
        if self.safe_float(delta, 1):
            texts[price] = (str(delta[0]), str(delta[1]))
        else:
            texts.pop(price, None)

    def handle_order_book_message(
        self, client: Any, message: Any, orderbook: Any, messageHash: str, market: Any = None
    ) -> Any:
        result = super().handle_order_book_message(client, message, orderbook, messageHash, market)
        expected = self.safe_integer(message, "checksum")
        if expected is None or messageHash not in client.subscriptions or not self._checksums_on():
            return result  # no checksum, or ccxt already rejected the frame (a sequence gap)
        actual = book_checksum(_best_texts(orderbook["bids"]), _best_texts(orderbook["asks"]))
        if actual != expected:
            symbol = self.safe_symbol(self.safe_string(message, "instId"), market)
            del client.subscriptions[messageHash]
            if symbol in self.orderbooks:
                del self.orderbooks[symbol]
            client.reject(
                ccxt.ChecksumError(f"{self.id} {symbol} book checksum {actual}, OKX sent {expected}"),
                messageHash,
            )
        return result

    def _checksums_on(self) -> bool:
        return bool(self.safe_bool(self.safe_dict(self.options, "watchOrderBook", {}), "checksum", True))

    def parse_order(self, order: Any, market: Any = None) -> Any:
        parsed = super().parse_order(order, market)
        if parsed.get("type") == "optimal_limit_ioc":
            parsed.update(type="market", timeInForce="IOC")
        if self.safe_string(order, "ordType") == "trigger":
            market_order = self.safe_string(order, "ordPx") == "-1"
            parsed.update(
                type="market" if market_order else "limit",
                price=None if market_order else parsed.get("price"),
                clientOrderId=self.safe_string(order, "algoClOrdId") or None,
            )
        return parsed
