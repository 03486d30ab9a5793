"""Product candles for the Coinbase stand-in: the candle history ccxt's fetch_ohlcv reads.

As Coinbase Advanced Trade documents *Get Public Product Candles* (GET
/api/v3/brokerage/market/products/{product_id}/candles, what ccxt calls) and *Get Product
Candles* (/api/v3/brokerage/products/{product_id}/candles, signed; the same answer):
- query: start and end (UNIX seconds, both required), granularity (ONE_MINUTE FIVE_MINUTE
  FIFTEEN_MINUTE THIRTY_MINUTE ONE_HOUR TWO_HOUR SIX_HOUR ONE_DAY; FOUR_HOUR on the signed
  path only), limit (1 to 350, 350 when absent);
- answer: {"candles":[{"start","low","high","open","close","volume"}]}, strings, newest first:
  the candles opening from `start` (included) to `end` (excluded: a range of n granularities
  holds n candles), the newest `limit` of them;
- a range of more than 350 candles is refused, as is a missing start or end, an unknown
  granularity or a limit out of range: HTTP 400 {"error":"INVALID_ARGUMENT","error_details":..,
  "message":..}; a product it does not list, HTTP 404 "NOT_FOUND". The messages are the
  stand-in's, not checked against the live venue;
- no candle is published for an interval without trades (Coinbase's "No data is published for
  intervals where there are no ticks").

Candles come from the capture's market_trades events, the snapshot's trades included
(trademesh.venues.replay.candles: the session, a made-up past before it).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal

from trademesh.venues.replay.adapter import ReplayAdapter, RestAnswer, RestRequest
from trademesh.venues.replay.candles import CandleHistory, Grid, ReplayCandle, TradeCollector

__all__ = ["CoinbaseCandles"]

_PATH = re.compile(r"/api/v3/brokerage/(market/)?products/([^/]+)/candles$")
_SECONDS = {
    "ONE_MINUTE": 60,
    "FIVE_MINUTE": 300,
    "FIFTEEN_MINUTE": 900,
    "THIRTY_MINUTE": 1800,
    "ONE_HOUR": 3600,
    "TWO_HOUR": 7200,
    "FOUR_HOUR": 14400,
    "SIX_HOUR": 21600,
    "ONE_DAY": 86400,
}
_SIGNED_ONLY = ("FOUR_HOUR",)
MAX_CANDLES = 350
_PRODUCTS = "/api/v3/brokerage/market/products"


def _error(status: int, error: str, message: str) -> RestAnswer:
    return RestAnswer.json({"error": error, "error_details": message, "message": message}, status)


def _seconds(iso: str) -> Decimal:
    """An RFC 3339 time with up to nanoseconds ("2025-11-21T08:04:49.999500Z") in seconds."""
    whole, _, fraction = iso.rstrip("Z").partition(".")
    stamp = datetime.fromisoformat(whole + "+00:00").timestamp()
    return Decimal(int(stamp)) + (Decimal("0." + fraction) if fraction else Decimal(0))


def _candle(candle: ReplayCandle) -> dict[str, str]:
    return {
        "start": str(candle.open_ms // 1000),
        "low": format(candle.low, "f"),
        "high": format(candle.high, "f"),
        "open": format(candle.open, "f"),
        "close": format(candle.close, "f"),
        "volume": format(candle.volume, "f"),
    }


class CoinbaseCandles:
    """Coinbase's candle answers for the products a capture streams."""

    def __init__(self, adapter: ReplayAdapter) -> None:
        self._adapter = adapter

    @staticmethod
    def handles(request: RestRequest) -> bool:
        return request.method == "GET" and _PATH.search(request.path) is not None

    @functools.cached_property
    def markets(self) -> dict[str, CandleHistory]:
        trades = TradeCollector(self._adapter)  # a trade once: the snapshot and the updates may repeat it
        for market in self._adapter.market_frames():
            if not market.topic.startswith("market_trades:"):
                continue
            for event in json.loads(market.frame.text).get("events") or []:
                for trade in event.get("trades") or []:
                    key = (str(trade["product_id"]), str(trade["trade_id"]))
                    ms = int(_seconds(trade["time"]) * 1000)
                    trades.add(key[0], ms, Decimal(trade["price"]), Decimal(trade["size"]), key)
        return trades.histories(fill=False)

    @functools.cached_property
    def listed(self) -> set[str]:
        """The products the capture's product lists name, and those it streams."""
        found = set(self.markets)
        for record in self._adapter.recorded(_PRODUCTS):
            found.update(str(p.get("product_id")) for p in json.loads(record.body).get("products") or [])
        return found

    def answer(self, request: RestRequest) -> RestAnswer:
        """GET .../products/{product_id}/candles."""
        match = _PATH.search(request.path)
        assert match is not None  # handles() said so
        product, params = match[2], request.params()
        if product not in self.listed:
            return _error(404, "NOT_FOUND", "ProductID is invalid")
        problem = _problem(params, signed=match[1] is None)
        if problem is not None:
            return _error(400, "INVALID_ARGUMENT", problem)
        history = self.markets.get(product)
        if history is None:
            return RestAnswer.json({"candles": []})
        step_s = _SECONDS[params["granularity"]]
        start, end = int(params["start"]), int(params["end"])
        limit = int(params.get("limit", str(MAX_CANDLES)))
        found = history.newest(Grid(step_s * 1000), start * 1000, end * 1000 - 1, limit)
        return RestAnswer.json({"candles": [_candle(candle) for candle in reversed(found)]})


def _problem(params: Mapping[str, str], signed: bool) -> str | None:
    """What Coinbase refuses in a candles query (None: nothing)."""
    granularity = params.get("granularity", "UNKNOWN_GRANULARITY")
    if granularity not in _SECONDS or (granularity in _SIGNED_ONLY and not signed):
        return "granularity argument is invalid"
    if not params.get("start", "").isdigit() or not params.get("end", "").isdigit():
        return "start and end must be UNIX timestamps in seconds"
    limit = params.get("limit", str(MAX_CANDLES))
    if not limit.isdigit() or not 1 <= int(limit) <= MAX_CANDLES:
        return f"limit must be between 1 and {MAX_CANDLES}"
    if int(params["end"]) - int(params["start"]) > MAX_CANDLES * _SECONDS[granularity]:
        return f"number of candles requested should be less than {MAX_CANDLES}"
    return None
