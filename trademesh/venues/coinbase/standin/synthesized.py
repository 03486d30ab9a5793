"""Coinbase REST answers for a capture that holds none: what ccxt's load_markets asks.

Written as Coinbase's docs describe them (Advanced Trade *List Public Products*; Coinbase
App *Currencies* and *Exchange Rates*), for the products the frames stream
(trademesh.venues.replay.synthesis says how tick and lot are read off the frames):
- /api/v3/brokerage/market/products: the spot products ("BTC-USD" -> base BTC, quote USD),
  online; with product_type=FUTURE, none;
- /v2/currencies: the products' currencies that are fiat (FIAT below); /v2/currencies/crypto:
  the others, 8 decimal places (the frames do not say);
- /v2/exchange-rates: USD with no rates (the frames do not say; ccxt needs none to trade).
"""

from __future__ import annotations

from typing import Any

from trademesh.venues.replay.synthesis import SeenMarket

__all__ = ["FIAT", "crypto_currency", "fiat_currency", "product"]

FIAT = ("USD", "EUR", "GBP", "CAD", "SGD")


def product(market: SeenMarket) -> dict[str, Any] | None:
    parts = market.native.split("-")
    if len(parts) != 2:
        return None
    base, quote = parts
    return {
        "product_id": market.native,
        "price": "",
        "base_increment": market.lot,
        "quote_increment": market.tick,
        "price_increment": market.tick,
        "quote_min_size": "0",
        "quote_max_size": "1000000000",
        "base_min_size": market.lot,
        "base_max_size": "1000000000",
        "base_name": base,
        "quote_name": quote,
        "status": "online",
        "is_disabled": False,
        "cancel_only": False,
        "limit_only": False,
        "post_only": False,
        "trading_disabled": False,
        "auction_mode": False,
        "product_type": "SPOT",
        "base_currency_id": base,
        "quote_currency_id": quote,
        "base_display_symbol": base,
        "quote_display_symbol": quote,
        "alias": "",
        "alias_to": [],
        "view_only": False,
        "display_name": market.native,
        "product_venue": "CBE",
    }


def fiat_currency(code: str) -> dict[str, Any]:
    return {"id": code, "name": code, "min_size": "0.01"}


def crypto_currency(code: str) -> dict[str, Any]:
    return {
        "asset_id": f"replay-{code.lower()}",
        "code": code,
        "name": code,
        "exponent": 8,
        "type": "crypto",
        "sort_index": 0,
    }
