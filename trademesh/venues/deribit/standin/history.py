"""public/get_tradingview_chart_data for the Deribit stand-in: the candle history ccxt's fetch_ohlcv reads.

As Deribit's API v2 documents it (https://docs.deribit.com/#public-get_tradingview_chart_data):
- params: instrument_name, start_timestamp and end_timestamp (ms, both required, both
  included), resolution (minutes 1 3 5 10 15 30 60 120 180 360 720, or 1D);
- answer: {"jsonrpc":"2.0","result":{"status":"ok","ticks":[...],"open":[...],"high":[...],
  "low":[...],"close":[...],"volume":[...],"cost":[...]},"usIn","usOut","usDiff","testnet"},
  parallel arrays, oldest first, numbers: ticks the candles' open times (ms), volume the
  amounts traded, cost their worth in the quote (amount x price); a range without candles
  answers status "no_data" and empty arrays. At most 5000 candles, the newest of the range (the
  stand-in's choice: Deribit's own was not checked);
- a quiet interval of the session is a flat candle with volume and cost 0, as Deribit's chart
  data has;
- errors, HTTP 400 with JSON-RPC's {"code":-32602,"message":"Invalid params","data":{"reason",
  "param"}}: a missing or non-numeric timestamp, an unknown resolution, an instrument it does not
  list (the reasons are the stand-in's, not checked against the live venue).

Candles come from the capture's trades notifications (trademesh.venues.replay.candles: the session, a
made-up past before it); the stand-in's clock is the session's last frame.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any

from trademesh.venues.replay.adapter import ReplayAdapter, RestAnswer
from trademesh.venues.replay.candles import CandleHistory, Grid, TradeCollector

__all__ = ["DeribitChartData"]

_MINUTE_MS = 60_000
GRIDS = {
    **{str(m): Grid(m * _MINUTE_MS) for m in (1, 3, 5, 10, 15, 30, 60, 120, 180, 360, 720)},
    "1D": Grid(1440 * _MINUTE_MS),
}
MOST = 5000
_SERIES = ("ticks", "open", "high", "low", "close", "volume", "cost")


def _invalid(param: str, reason: str) -> RestAnswer:
    error = {"code": -32602, "message": "Invalid params", "data": {"reason": reason, "param": param}}
    return RestAnswer.json({"jsonrpc": "2.0", "error": error, "testnet": False}, 400)


class DeribitChartData:
    """Deribit's chart data for the instruments a capture streams."""

    def __init__(self, adapter: ReplayAdapter, instruments: Callable[[], Iterable[str]]) -> None:
        self._adapter = adapter
        self._instruments = instruments

    @functools.cached_property
    def listed(self) -> frozenset[str]:
        return frozenset(self._instruments())

    @functools.cached_property
    def markets(self) -> dict[str, CandleHistory]:
        trades = TradeCollector(self._adapter)
        for market in self._adapter.market_frames():
            if not market.topic.startswith("trades."):
                continue
            for trade in json.loads(market.frame.text)["params"]["data"]:
                price, amount = Decimal(str(trade["price"])), Decimal(str(trade["amount"]))
                name, once = str(trade["instrument_name"]), str(trade["trade_id"])
                trades.add(name, int(trade["timestamp"]), price, amount, once)
        return trades.histories()

    def answer(self, params: Mapping[str, str]) -> RestAnswer:
        """public/get_tradingview_chart_data."""
        instrument = params.get("instrument_name", "")
        if instrument not in self.listed and instrument not in self.markets:
            return _invalid("instrument_name", "wrong format")
        for name in ("start_timestamp", "end_timestamp"):
            if not params.get(name, "").isdigit():
                return _invalid(name, "missing" if name not in params else "wrong format")
        if params.get("resolution") not in GRIDS:
            return _invalid("resolution", "must be one of " + ", ".join(GRIDS))
        history = self.markets.get(instrument)
        start, end = int(params["start_timestamp"]), int(params["end_timestamp"])
        candles = [] if history is None else history.newest(GRIDS[params["resolution"]], start, end, MOST)
        series: dict[str, list[Any]] = {
            "ticks": [c.open_ms for c in candles],
            "open": [float(c.open) for c in candles],
            "high": [float(c.high) for c in candles],
            "low": [float(c.low) for c in candles],
            "close": [float(c.close) for c in candles],
            "volume": [float(c.volume) for c in candles],
            "cost": [float(c.notional) for c in candles],
        }
        result = {"status": "ok" if candles else "no_data", **{key: series[key] for key in _SERIES}}
        return RestAnswer.json(
            {"jsonrpc": "2.0", "result": result, "usIn": 0, "usOut": 0, "usDiff": 0, "testnet": False}
        )
