"""GET /v5/market/kline for the Bybit stand-in (spot): the candle history ccxt's fetch_ohlcv reads.

As Bybit's v5 *Get Kline* documents it (https://bybit-exchange.github.io/docs/v5/market/kline):
- query: category (spot, linear, inverse; linear when absent), symbol, interval (1 3 5 15 30 60
  120 240 360 720 minutes, D, W), start and end (ms), limit (1 to 1000, 200 when absent);
- answer: {"retCode":0,"retMsg":"OK","result":{"category","symbol","list":[...]},
  "retExtInfo":{},"time":ms}, each candle [startTime, open, high, low, close, volume (base),
  turnover (quote)] as strings, newest first;
- range: a candle is in when it opens at or before `end` and holds or follows `start` (the
  candle containing a mid-interval `start` is in, which ccxt's alignment of `since` counts on).
  With `start` alone the `limit` oldest from it ("start=1&limit=1" finds a market's first
  candle); otherwise the `limit` newest up to `end` (or now);
- errors answer HTTP 200 with retCode 10001 (ccxt's BadRequest) and a message: an unknown
  interval, symbol or category, a limit outside 1..1000, a start or end that is not a number.
  The messages are the stand-in's, not checked against the live venue.

Candles come from the capture's publicTrade pushes (trademesh.venues.replay.candles: the session, a
made-up past before it); a quiet minute in the session is a flat candle with no volume, as
Bybit writes one. Monthly candles (M) are not served: a month is no fixed step (the stand-in
refuses M as an unknown interval). Weeks open on Monday 00:00 UTC. A listed symbol the capture
shows no price of has no candles (an empty list); the stand-in serves spot only (another
category: "Not supported symbols").
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from trademesh.venues.replay.adapter import ReplayAdapter, RestAnswer
from trademesh.venues.replay.candles import CandleHistory, Grid, ReplayCandle, TradeCollector

__all__ = ["BybitKlines"]

_MINUTE_MS = 60_000
_DAY_MS = 1440 * _MINUTE_MS
_MONDAY_MS = 4 * _DAY_MS  # the epoch was a Thursday
GRIDS = {
    **{str(m): Grid(m * _MINUTE_MS) for m in (1, 3, 5, 15, 30, 60, 120, 240, 360, 720)},
    "D": Grid(_DAY_MS),
    "W": Grid(7 * _DAY_MS, _MONDAY_MS),
}
MAX_LIMIT = 1000
DEFAULT_LIMIT = 200
_CATEGORIES = ("spot", "linear", "inverse")
_INSTRUMENTS = "/v5/market/instruments-info"
_BAD_REQUEST = 10001
_TURNOVER = Decimal("0.00000001")


def _answer(code: int, message: str, result: dict[str, Any], now_ms: int) -> RestAnswer:
    return RestAnswer.json(
        {"retCode": code, "retMsg": message, "result": result, "retExtInfo": {}, "time": now_ms}
    )


def _text(value: Decimal) -> str:
    return format(value, "f")


def _row(candle: ReplayCandle) -> list[str]:
    return [
        str(candle.open_ms),
        _text(candle.open),
        _text(candle.high),
        _text(candle.low),
        _text(candle.close),
        _text(candle.volume),
        _text(candle.notional.quantize(_TURNOVER)),
    ]


class BybitKlines:
    """Bybit's kline answers for the spot markets a capture streams."""

    def __init__(self, adapter: ReplayAdapter) -> None:
        self._adapter = adapter

    @functools.cached_property
    def markets(self) -> dict[str, CandleHistory]:
        trades = TradeCollector(self._adapter)
        for market in self._adapter.market_frames():
            if market.topic.startswith("publicTrade."):
                for trade in json.loads(market.frame.text)["data"]:
                    price, size, once = Decimal(trade["p"]), Decimal(trade["v"]), str(trade.get("i"))
                    trades.add(str(trade["s"]), int(trade["T"]), price, size, once)
        return trades.histories()

    @functools.cached_property
    def listed(self) -> set[str]:
        """The spot symbols the capture's instruments-info answers list, and those it streams."""
        found = set(self.markets)
        for record in self._adapter.recorded(_INSTRUMENTS):
            found.update(str(item.get("symbol")) for item in json.loads(record.body)["result"]["list"])
        return found

    def answer(self, params: Mapping[str, str]) -> RestAnswer:
        """GET /v5/market/kline."""
        now = max((h.end_ms for h in self.markets.values()), default=0)
        problem = _problem(params)
        if problem is not None:
            return _answer(_BAD_REQUEST, problem, {}, now)
        category, symbol = params.get("category", "linear"), params.get("symbol", "")
        if category != "spot" or symbol not in self.listed:
            return _answer(_BAD_REQUEST, "Not supported symbols", {}, now)
        history = self.markets.get(symbol)
        if history is None:  # listed, but the capture shows no price of it
            return _answer(0, "OK", {"category": category, "symbol": symbol, "list": []}, now)
        grid, limit = GRIDS[params["interval"]], int(params.get("limit", str(DEFAULT_LIMIT)))
        end = int(params.get("end", str(history.end_ms)))
        if "start" in params and "end" not in params:
            candles = history.oldest(grid, grid.floor(int(params["start"])), end, limit)
        else:
            candles = history.newest(grid, grid.floor(int(params.get("start", "0"))), end, limit)
        rows = [_row(candle) for candle in reversed(candles)]
        return _answer(0, "OK", {"category": category, "symbol": symbol, "list": rows}, now)


def _problem(params: Mapping[str, str]) -> str | None:
    """What Bybit refuses in a kline query (None: nothing)."""
    if params.get("category", "linear") not in _CATEGORIES:
        return "Illegal category"
    if not params.get("symbol"):
        return "params error: symbol is required"
    if params.get("interval") not in GRIDS:
        return "Invalid period!"
    for name in ("start", "end", "limit"):
        if name in params and not params[name].lstrip("-").isdigit():
            return f"params error: {name} must be an integer"
    if not 1 <= int(params.get("limit", str(DEFAULT_LIMIT))) <= MAX_LIMIT:
        return f"params error: limit must be between 1 and {MAX_LIMIT}"
    return None
