"""Binance REST answers for a capture that holds none: exchangeInfo, and depth snapshots.

- exchangeInfo (/api/v3 spot, /fapi/v1 USD-M): the symbols the frames stream, written as
  Binance's *Exchange information* documents them; base and quote split before a known
  quote currency (trademesh.venues.replay.synthesis, which also says how tick and lot are read off
  the frames); USD-M symbols are USDT/USDC-margined perpetuals. Price and quantity
  precision follow the tick and lot.
- depth: a capture with diff-depth frames but no recorded snapshot gets, for each symbol,
  an empty book whose lastUpdateId is just before its first update (U - 1). ccxt applies
  every update after it, so the book holds the levels the session changed, exactly as the
  frames say, and nothing the session never mentioned.
"""

from __future__ import annotations

from typing import Any

from trademesh.venues.replay.synthesis import SeenMarket, split_joined

__all__ = ["exchange_info", "futures_symbol", "spot_symbol"]

_ORDER_TYPES = ["LIMIT", "LIMIT_MAKER", "MARKET"]
# Every USD-M perpetual's (the stop types are placed as algo orders since December 2025).
_FUTURES_ORDER_TYPES = [
    "LIMIT",
    "MARKET",
    "STOP",
    "STOP_MARKET",
    "TAKE_PROFIT",
    "TAKE_PROFIT_MARKET",
    "TRAILING_STOP_MARKET",
]


def _places(step: str) -> int:
    return len(step.split(".", 1)[1]) if "." in step else 0


def _filters(market: SeenMarket) -> list[dict[str, Any]]:
    return [
        {
            "filterType": "PRICE_FILTER",
            "minPrice": market.tick,
            "maxPrice": "10000000",
            "tickSize": market.tick,
        },
        {"filterType": "LOT_SIZE", "minQty": market.lot, "maxQty": "100000000", "stepSize": market.lot},
    ]


def spot_symbol(market: SeenMarket) -> dict[str, Any] | None:
    pair = split_joined(market.native)
    if pair is None:
        return None
    return {
        "symbol": market.native.upper(),
        "status": "TRADING",
        "baseAsset": pair[0],
        "baseAssetPrecision": 8,
        "quoteAsset": pair[1],
        "quotePrecision": 8,
        "quoteAssetPrecision": 8,
        "orderTypes": _ORDER_TYPES,
        "icebergAllowed": False,
        "ocoAllowed": False,
        "quoteOrderQtyMarketAllowed": True,
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": False,
        "filters": _filters(market),
        "permissions": ["SPOT"],
    }


def futures_symbol(market: SeenMarket) -> dict[str, Any] | None:
    pair = split_joined(market.native)
    if pair is None:
        return None
    return {
        "symbol": market.native.upper(),
        "pair": market.native.upper(),
        "contractType": "PERPETUAL",
        "deliveryDate": 4133404800000,
        "onboardDate": 0,
        "status": "TRADING",
        "baseAsset": pair[0],
        "quoteAsset": pair[1],
        "marginAsset": pair[1],
        "pricePrecision": _places(market.tick),
        "quantityPrecision": _places(market.lot),
        "baseAssetPrecision": 8,
        "quotePrecision": 8,
        "underlyingType": "COIN",
        "filters": _filters(market),
        "orderTypes": _FUTURES_ORDER_TYPES,
        "timeInForce": ["GTC", "IOC", "FOK", "GTX"],
    }


def exchange_info(symbols: list[dict[str, Any]]) -> dict[str, Any]:
    return {"timezone": "UTC", "serverTime": 0, "rateLimits": [], "exchangeFilters": [], "symbols": symbols}
