"""ccxt.pro okx for swaps (OkxExchange, trademesh/venues/okx/exchange.py),
mended for the derivatives channels.

- The `mark-price` channel (ccxt's watch_mark_price): ccxt parses its pushes as tickers into
  `tickers`, the cache the tickers channel reads (trademesh/venues/live/normalize.py, TickerNormalizer), so a
  mark price would go out as a ticker with no best bid or ask. Here each push's data object is
  kept in `markPrices` by symbol instead (a new object each time), and the watch resolved as
  ccxt resolves it.
- The `open-interest` channel, which ccxt does not watch: `watch_open_interest(symbol)`
  subscribes it ({"channel": "open-interest", "instId": ...}) and each push's data object
  ({"instType", "instId", "oi", "oiCcy", "oiUsd", "ts"}) is kept in `openInterests` by symbol.
- The `liquidation-orders` channel (ccxt's watch_liquidations: one subscription by instType)
  is ccxt's own; the readers below take every `details` entry of a push's data object, where
  ccxt's liquidation structure keeps the first.

The readers turn those objects (OKX's strings) into the wire's messages
(https://www.okx.com/docs-v5/en/, Public Data, WebSocket: Mark price channel, Open interest
channel, Liquidation orders channel).
"""

from __future__ import annotations

from typing import Any

from trademesh.common.v1 import common_pb2 as common
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.venues.live.derivatives import CacheStream, DerivativeStreams, LiquidationStream
from trademesh.venues.live.wire import plain_decimal
from trademesh.venues.okx.exchange import OkxExchange

__all__ = ["DERIVATIVES", "OkxSwapExchange", "liquidations_of", "mark_of", "open_interest_of"]

_MARK, _INTEREST = "mark-price", "open-interest"


class OkxSwapExchange(OkxExchange):
    def handle_ticker(self, client: Any, message: Any) -> Any:
        arg = message.get("arg") or {}
        if arg.get("channel") != _MARK:
            return super().handle_ticker(client, message)
        self._keep(client, message, "markPrices", _MARK)
        return None

    def handle_message(self, client: Any, message: Any) -> Any:
        if (
            isinstance(message, dict)
            and (message.get("arg") or {}).get("channel") == _INTEREST
            and "data" in message
        ):
            self._keep(client, message, "openInterests", _INTEREST)
            return None
        return super().handle_message(client, message)

    async def watch_open_interest(self, symbol: str) -> Any:
        """OKX's open-interest channel of one instrument (pushed when it changes)."""
        found = await self.subscribe_multiple("public", _INTEREST, [symbol], {})
        return found.get(self.symbol(symbol)) if isinstance(found, dict) else found

    def _keep(self, client: Any, message: dict[str, Any], cache: str, channel: str) -> None:
        """Each data object of a push in the exchange's `cache` by symbol; the watch resolved."""
        kept = getattr(self, cache, None)
        if not isinstance(kept, dict):
            kept = {}
            setattr(self, cache, kept)
        market = self.safe_market((message.get("arg") or {}).get("instId"), None, "-")
        symbol = market["symbol"]
        for data in message.get("data") or []:
            kept[symbol] = dict(data)
            client.resolve({symbol: kept[symbol]}, f"{channel}::{symbol}")


def mark_of(data: dict[str, Any]) -> tuple[int | None, md.MarkPrice] | None:
    """A mark-price push's data object: `markPx` at `ts` (ms); OKX states the index apart
    (index-tickers), so no index price."""
    mark = plain_decimal(str(data.get("markPx") or ""))
    return (int(data["ts"]) if data.get("ts") else None, md.MarkPrice(mark_price=mark)) if mark else None


def open_interest_of(data: dict[str, Any]) -> tuple[int | None, md.OpenInterest] | None:
    """An open-interest push's (or GET /public/open-interest's) data object: `oi` in contracts
    (the swaps' size unit), and for a coin-margined swap (quoted in USD) its value `oiUsd`."""
    info = data.get("info", data)  # ccxt's fetch_open_interest keeps OKX's object in `info`
    size = plain_decimal(str(info.get("oi") or ""))
    if not size:
        return None
    inverse = str(info.get("instId", "")).endswith("-USD-SWAP")
    value = plain_decimal(str(info.get("oiUsd") or "")) if inverse else ""
    return (int(info["ts"]) if info.get("ts") else None, md.OpenInterest(size=size, value=value))


_SIDES = {"buy": common.SIDE_BUY, "sell": common.SIDE_SELL}


def liquidations_of(liquidation: dict[str, Any]) -> list[tuple[int | None, md.Liquidation]]:
    """A liquidation-orders push's data object (ccxt's liquidation structure's `info`): each of
    its `details`, side `side`, bankruptcy price `bkPx`, size `sz` (contracts), at `ts` (ms)."""
    out = []
    for detail in (liquidation.get("info") or {}).get("details") or []:
        side = _SIDES.get(str(detail.get("side")))
        price, size = plain_decimal(str(detail.get("bkPx") or "")), plain_decimal(str(detail.get("sz") or ""))
        if side is not None and price and size:
            ts = int(detail["ts"]) if detail.get("ts") else None
            out.append((ts, md.Liquidation(side=side, price=price, size=size)))
    return out


DERIVATIVES = DerivativeStreams(
    mark=CacheStream("watch_mark_price", "markPrices", mark_of),
    open_interest=CacheStream("watch_open_interest", "openInterests", open_interest_of),
    liquidations=LiquidationStream("watch_liquidations", liquidations_of),
)
