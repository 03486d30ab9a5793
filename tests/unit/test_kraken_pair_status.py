"""Kraken's pair status (trademesh/venues/kraken/exchange.py): a pair AssetPairs lists without `status` is
active.

The AssetPairs answer is the recorded one of 2021 (fixtures/exchange-captures/KRAKEN.0), from
before Kraken added the field; ccxt alone reads every pair of it as inactive. A status that is
given still decides, as ccxt reads it ("online" only).
"""

from __future__ import annotations

import copy
import json
from typing import Any

from tests.integration.replay import capture_files
from trademesh.venues.kraken.exchange import KrakenExchange

_STATUSES = {"online": True, "cancel_only": False, "post_only": False, "limit_only": False}


def _recorded_asset_pairs() -> dict[str, Any]:
    for path in capture_files("KRAKEN"):
        for line in path.read_text(encoding="utf-8").splitlines():
            url, _, rest = line.partition(" -> ")
            if url.endswith("/0/public/AssetPairs"):
                body: dict[str, Any] = json.loads(rest.split(": ", 1)[1])
                return body
    raise AssertionError("the Kraken capture holds no AssetPairs answer")


async def _markets(answer: dict[str, Any]) -> dict[str, dict[str, Any]]:
    exchange = KrakenExchange()

    async def asset_pairs(params: Any = None) -> dict[str, Any]:
        return answer

    exchange.publicGetAssetPairs = asset_pairs
    try:
        return {market["symbol"]: market for market in await exchange.fetch_markets()}
    finally:
        await exchange.close()


async def test_every_pair_of_the_recorded_asset_pairs_is_active() -> None:
    answer = _recorded_asset_pairs()
    assert not any("status" in info for info in answer["result"].values()), "a 2021 answer"
    markets = await _markets(answer)
    assert len(markets) > 100  # a dark pool pair (".d") shares its pair's symbol
    assert markets["BTC/CHF"]["active"] is True
    assert [symbol for symbol, market in markets.items() if market["active"] is not True] == []


async def test_a_given_status_still_decides() -> None:
    answer = _recorded_asset_pairs()
    template = answer["result"]["XBTCHF"]
    answer["result"] = {
        f"PAIR{n}": {**copy.deepcopy(template), "altname": f"PAIR{n}", "wsname": f"P{n}/CHF",
                     "base": f"P{n}", "status": status}
        for n, status in enumerate(_STATUSES)
    }  # fmt: skip
    markets = await _markets(answer)
    actives = {market["info"]["status"]: market["active"] for market in markets.values()}
    assert actives == _STATUSES
