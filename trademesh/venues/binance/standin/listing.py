"""Binance's exchangeInfo as the stand-in's listing file has it now (trademesh.venues.replay.listing): the
symbols it delists left out, changed rules written into Binance's filters (tick_size: PRICE_FILTER
tickSize; lot_size: LOT_SIZE stepSize; min_size: LOT_SIZE minQty; min_notional: MIN_NOTIONAL's or
NOTIONAL's minNotional, USD-M's MIN_NOTIONAL notional), `active` its status (TRADING, else BREAK)."""

from __future__ import annotations

import json
from typing import Any

from trademesh.venues.replay.adapter import RestAnswer
from trademesh.venues.replay.listing import ReplayListing

__all__ = ["listed_now"]

# rule -> (filterType, its field), the first filter the symbol has of each
_FILTERS: dict[str, tuple[tuple[str, str], ...]] = {
    "tick_size": (("PRICE_FILTER", "tickSize"),),
    "lot_size": (("LOT_SIZE", "stepSize"),),
    "min_size": (("LOT_SIZE", "minQty"),),
    "min_notional": (
        ("MIN_NOTIONAL", "minNotional"),
        ("NOTIONAL", "minNotional"),
        ("MIN_NOTIONAL", "notional"),
    ),
}


def listed_now(answer: RestAnswer, listing: ReplayListing) -> RestAnswer:
    if answer.status != 200 or not (listing.delisted or listing.rules):
        return answer
    body = json.loads(answer.body)
    symbols = []
    for market in body.get("symbols", []):
        native = str(market.get("symbol", ""))
        if native in listing.delisted:
            continue
        symbols.append(_ruled(market, listing.rules.get(native) or {}))
    body["symbols"] = symbols
    return RestAnswer(answer.status, json.dumps(body), answer.headers)


def _ruled(market: dict[str, Any], rules: dict[str, str | bool]) -> dict[str, Any]:
    for rule, value in rules.items():
        if rule == "active":
            market["status"] = "TRADING" if value else "BREAK"
            continue
        for kind, name in _FILTERS.get(rule, ()):
            found = next(
                (f for f in market.get("filters", []) if f.get("filterType") == kind and name in f), None
            )
            if found is not None:
                found[name] = value
                break
        else:  # the symbol states no such filter: one is added
            kind, name = _FILTERS[rule][0]
            market.setdefault("filters", []).append({"filterType": kind, name: value})
    return market
