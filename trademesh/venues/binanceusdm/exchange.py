"""ccxt.pro binanceusdm, mended where it falls short of what the connector needs from Binance USD-M.

The mark price stream (`<symbol>@markPrice@1s`, ccxt's watch_mark_price) carries the perpetual's
funding rate (`r`) and its next funding time (`T`) besides the mark and index prices; ccxt 4.5
keeps each frame as a ticker in `tickers`, the cache its 24hrTicker stream (watch_ticker, the 24h
volume the connector's ticker reads) fills too, so the two would overwrite each other there, and
it leaves the rate and the time in `info` only. Here a mark price frame becomes a funding rate
structure (ccxt's unified shape: fundingRate, fundingTimestamp, markPrice, indexPrice) kept in
`fundingRates`, where the connector reads every venue's funding (trademesh/venues/live/normalize.py,
FundingNormalizer), and the watch is resolved as ccxt resolves it. Prices and the rate stay the
venue's decimal strings.
"""

from __future__ import annotations

from typing import Any

import ccxt.pro

from trademesh.common.v1 import common_pb2 as common
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.venues.live.derivatives import CacheStream, DerivativeStreams, LiquidationStream
from trademesh.venues.live.wire import plain_decimal

__all__ = [
    "DERIVATIVES",
    "BinanceUsdmExchange",
    "funding_of_mark_price",
    "liquidations_of",
    "mark_of",
    "open_interest_of",
]

# ccxt's message hash of one symbol's mark price watch (pro/binance.py watch_multi_ticker_helper).
_HASH = "markPrice:markPrice@"


def funding_of_mark_price(symbol: str, event: dict[str, Any]) -> dict[str, Any]:
    """A markPriceUpdate event ({"e", "E", "s", "p", "i", "P", "r", "T"}) as ccxt's funding rate
    structure."""
    return {
        "info": event,
        "symbol": symbol,
        "timestamp": event.get("E"),
        "fundingRate": event.get("r"),
        "fundingTimestamp": event.get("T"),
        "markPrice": event.get("p"),
        "indexPrice": event.get("i"),
    }


class BinanceUsdmExchange(ccxt.pro.binanceusdm):  # type: ignore[misc]
    def handle_mark_prices(self, client: Any, message: Any) -> None:
        events = message if isinstance(message, list) else [message]
        for event in events:
            if not isinstance(event, dict) or event.get("e") != "markPriceUpdate":
                continue
            market = self.safe_market(event.get("s"), None, None, "contract")
            symbol = market["symbol"]
            if symbol is None:
                continue
            funding = funding_of_mark_price(symbol, event)
            self.fundingRates[symbol] = funding
            client.resolve(funding, _HASH + symbol)


def mark_of(funding: dict[str, Any]) -> tuple[int | None, md.MarkPrice] | None:
    """The mark price stream's frame (kept as a funding rate structure above) as our MarkPrice:
    its mark price `p` and index price `i`, at its event time `E`."""
    event = funding.get("info") or {}
    mark = plain_decimal(str(event.get("p") or ""))
    if not mark:
        return None
    return event.get("E"), md.MarkPrice(mark_price=mark, index_price=plain_decimal(str(event.get("i") or "")))


def open_interest_of(answer: dict[str, Any]) -> tuple[int | None, md.OpenInterest] | None:
    """GET /fapi/v1/openInterest's answer ({"openInterest", "symbol", "time"}, ccxt's
    fetch_open_interest `info`): the contracts open in the base asset, at `time`; Binance states
    no value."""
    info = answer.get("info") or {}
    size = plain_decimal(str(info.get("openInterest") or ""))
    return (info.get("time"), md.OpenInterest(size=size)) if size else None


_SIDES = {"BUY": common.SIDE_BUY, "SELL": common.SIDE_SELL}


def liquidations_of(liquidation: dict[str, Any]) -> list[tuple[int | None, md.Liquidation]]:
    """A `forceOrder` event's order (ccxt's liquidation structure's `info`): its side `S`, average
    price `ap` and filled quantity `z`, at its trade time `T` (Binance pushes a symbol's latest
    liquidation order a second, as a snapshot of the order)."""
    order = liquidation.get("info") or {}
    side = _SIDES.get(str(order.get("S")))
    price, size = plain_decimal(str(order.get("ap") or "")), plain_decimal(str(order.get("z") or ""))
    if side is None or not price or not size or price == "0" or size == "0":
        return []
    return [(order.get("T"), md.Liquidation(side=side, price=price, size=size))]


# <symbol>@markPrice@1s for the mark and index prices (the frames funding is read from),
# GET /fapi/v1/openInterest polled for open interest (Binance streams none), <symbol>@forceOrder
# for the market's liquidations.
DERIVATIVES = DerivativeStreams(
    mark=CacheStream("watch_mark_price", "fundingRates", mark_of),
    open_interest_poll=open_interest_of,
    liquidations=LiquidationStream("watch_liquidations", liquidations_of),
)
