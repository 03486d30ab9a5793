"""GET /0/public/OHLC for the Kraken stand-in: the candle history ccxt's fetch_ohlcv reads.

As Kraken's *Get OHLC Data* documents it (https://docs.kraken.com/api-reference/market-data/get-ohlc-data):
- query: pair (the AssetPairs key, its altname or its wsname), interval (minutes: 1 5 15 30 60
  240 1440 10080 21600; 1 when absent), since (seconds: the candles opening after it);
- answer: {"error":[],"result":{<pair key>:[[time, open, high, low, close, vwap, volume,
  count]...],"last":<time>}}, oldest first; time in seconds, prices and vwap with the pair's
  pair_decimals, volume with 8 decimals, count a number. At most the 720 most recent candles:
  older ones cannot be had, whatever `since`. The last candle is the current one, not yet
  committed, and is always there, whatever `since`; `last` is the newest committed candle's
  time (the `since` of the next poll);
- a quiet interval is a flat candle at the last close with vwap and volume 0 and count 0;
- errors, HTTP 200 with {"error":[...]} and no result: "EQuery:Unknown asset pair" for a pair it
  does not list, "EGeneral:Invalid arguments" for an unknown interval or a since that is not a
  number.

Candles come from the capture's v1 trade frames (trademesh.venues.replay.candles: the session, a made-up
past before it); the stand-in's clock is the session's last frame. A listed pair the capture
shows no price of has no candles (its key with an empty list, where Kraken would have at least
the current one). Intervals are epoch-aligned, as Kraken's are (weeks open on Thursdays).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from trademesh.venues.replay.adapter import ReplayAdapter, RestAnswer
from trademesh.venues.replay.candles import CandleHistory, Grid, ReplayCandle, TradeCollector

__all__ = ["KrakenOhlc"]

INTERVALS = (1, 5, 15, 30, 60, 240, 1440, 10080, 21600)
MOST = 720
_MINUTE_MS = 60_000
_VOLUME = Decimal("0.00000001")


def _error(message: str) -> RestAnswer:
    return RestAnswer.json({"error": [message]})


class KrakenOhlc:
    """Kraken's OHLC answers for the pairs a capture streams."""

    def __init__(self, adapter: ReplayAdapter, asset_pair_bodies: Iterable[str]) -> None:
        self._adapter = adapter
        # wsname -> (AssetPairs key, pair_decimals); every name a request may use -> wsname.
        self._pairs: dict[str, tuple[str, int]] = {}
        self._names: dict[str, str] = {}
        for body in asset_pair_bodies:
            for key, info in json.loads(body).get("result", {}).items():
                if "wsname" in info:
                    self._pairs[info["wsname"]] = (key, int(info["pair_decimals"]))
                    for name in (key, info.get("altname"), info["wsname"]):
                        if name:
                            self._names[str(name)] = info["wsname"]

    def wsname(self, name: str) -> str | None:
        """The wsname of a pair named by its AssetPairs key, altname or wsname (None: not listed)."""
        return self._names.get(name)

    def pair(self, wsname: str) -> tuple[str, int]:
        """A listed pair's AssetPairs key and pair_decimals."""
        return self._pairs[wsname]

    def listed(self) -> list[str]:
        """Every listed pair's wsname, in AssetPairs' order."""
        return list(self._pairs)

    @functools.cached_property
    def markets(self) -> dict[str, CandleHistory]:
        """By wsname (the v1 frames' pair name)."""
        trades = TradeCollector(self._adapter)
        for market in self._adapter.market_frames():
            if market.topic.startswith("trade:"):
                pair = self._adapter.symbol_of(market.topic)
                for price, size, time, *_rest in json.loads(market.frame.text)[1]:
                    trades.add(pair, int(Decimal(time) * 1000), Decimal(price), Decimal(size))
        return trades.histories()

    def answer(self, params: Mapping[str, str]) -> RestAnswer:
        """GET /0/public/OHLC."""
        wsname = self._names.get(params.get("pair", ""))
        if wsname is None:
            return _error("EQuery:Unknown asset pair")
        interval, since = params.get("interval", "1"), params.get("since", "0")
        if not interval.isdigit() or int(interval) not in INTERVALS or not _number(since):
            return _error("EGeneral:Invalid arguments")
        key, places = self._pairs[wsname]
        history = self.markets.get(wsname)
        if history is None:
            return RestAnswer.json({"error": [], "result": {key: [], "last": 0}})
        grid = Grid(int(interval) * _MINUTE_MS)
        current = history.now_open(grid)
        after_ms = int(Decimal(since) * 1000) + 1  # since is excluded
        committed = history.newest(grid, after_ms, current - grid.step_ms, MOST - 1)
        rows = [_row(candle, places) for candle in [*committed, *history.newest(grid, current, current, 1)]]
        return RestAnswer.json({"error": [], "result": {key: rows, "last": (current - grid.step_ms) // 1000}})


def _number(text: str) -> bool:
    """A number, possibly negative (ccxt asks since=-60 for a `since` of 0: one interval before it)."""
    return text.removeprefix("-").replace(".", "", 1).isdigit()


def _row(candle: ReplayCandle, places: int) -> list[Any]:
    unit = Decimal(1).scaleb(-places)
    prices = (candle.open, candle.high, candle.low, candle.close, candle.vwap or Decimal(0))
    return [
        candle.open_ms // 1000,
        *(format(price.quantize(unit), "f") for price in prices),
        format(candle.volume.quantize(_VOLUME), "f"),
        candle.trades,
    ]
