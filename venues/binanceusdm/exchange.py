"""ccxt.pro binanceusdm, mended where it falls short of what the connector needs from Binance USD-M.

The mark price stream (`<symbol>@markPrice@1s`, ccxt's watch_mark_price) carries the perpetual's
funding rate (`r`) and its next funding time (`T`) besides the mark and index prices; ccxt 4.5
keeps each frame as a ticker in `tickers`, the cache its 24hrTicker stream (watch_ticker, the 24h
volume the connector's ticker reads) fills too, so the two would overwrite each other there, and
it leaves the rate and the time in `info` only. Here a mark price frame becomes a funding rate
structure (ccxt's unified shape: fundingRate, fundingTimestamp, markPrice, indexPrice) kept in
`fundingRates`, where the connector reads every venue's funding (venues/live/normalize.py,
FundingNormalizer), and the watch is resolved as ccxt resolves it. Prices and the rate stay the
venue's decimal strings.
"""

from __future__ import annotations

from typing import Any

import ccxt.pro

__all__ = ["BinanceUsdmExchange", "funding_of_mark_price"]

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
