"""Kraken's AssetPairs for a capture that holds none, from the pairs its frames stream.

Each pair a v1 subscriptionStatus names ("XBT/USD") is written as Kraken's *Get Tradable
Asset Pairs* documents it: key and altname "XBTUSD", wsname "XBT/USD", base "XBT" and quote
"USD" (ccxt reads XBT as BTC), pair_decimals and lot_decimals as many as the frames'
prices and volumes are written with (Kraken v1 writes them to the pair's decimals, so the
v2 book checksums come out as the exchange's would), tick_size and ordermin one unit of
those places, taker/maker fees of Kraken's first tier (0.26% / 0.16%).
"""

from __future__ import annotations

from typing import Any

from trademesh.venues.replay.synthesis import SeenMarket

__all__ = ["asset_pair"]


def asset_pair(wsname: str, seen: SeenMarket | None) -> tuple[str, dict[str, Any]] | None:
    names = wsname.split("/")
    if len(names) != 2:
        return None
    market = seen if seen is not None else SeenMarket(wsname)
    price_decimals = market.price_decimals if market.price_decimals >= 0 else 2
    lot_decimals = market.size_decimals if market.size_decimals >= 0 else 8
    altname = "".join(names)
    info = {
        "altname": altname,
        "wsname": wsname,
        "aclass_base": "currency",
        "base": names[0],
        "aclass_quote": "currency",
        "quote": names[1],
        "lot": "unit",
        "cost_decimals": price_decimals,
        "pair_decimals": price_decimals,
        "lot_decimals": lot_decimals,
        "lot_multiplier": 1,
        "leverage_buy": [],
        "leverage_sell": [],
        "fees": [[0, 0.26]],
        "fees_maker": [[0, 0.16]],
        "fee_volume_currency": "ZUSD",
        "margin_call": 80,
        "margin_stop": 40,
        "ordermin": market.lot,
        "costmin": "0",
        "tick_size": market.tick,
        "status": "online",
    }
    return altname, info
