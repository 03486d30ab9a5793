"""GET /api/v5/market/candles and /market/history-candles for the OKX stand-in (spot and swaps).

As OKX's API v5 documents them (https://www.okx.com/docs-v5/en/, Market Data, *Get candlesticks*
and *Get candlesticks history*), the two ccxt's fetch_ohlcv reads (history-candles for a `since`
older than 1440 candles, which every replayed session is):
- query: instId, bar (1m 3m 5m 15m 30m 1H 2H 4H; 6H 12H 1D 1W opening at Hong Kong midnight, or
  at UTC midnight as 6Hutc 12Hutc 1Dutc 1Wutc; 1m when absent), after (candles opening before
  this ms), before (after this ms; both excluded), limit (1 to 300, 100 when absent);
- answer: {"code":"0","msg":"","data":[[ts, o, h, l, c, vol, volCcy, volCcyQuote, confirm]]},
  strings, newest first: the `limit` newest candles between before and after (before alone:
  the latest ones). vol is in the base currency for spot and in contracts for swaps; volCcy is
  the quote (spot) or the coin (swaps: contracts x ctVal, an inverse swap's contracts x ctVal
  / price); volCcyQuote the quote (an inverse swap's: contracts x ctVal USD). confirm is "0"
  for the current candle, "1" for a closed one;
- /market/candles holds the latest 1440 candles only; /market/history-candles all of them;
- errors as OKX answers them, code and message in the body: 50014 no instId, 51001 an
  instrument it does not list, 51000 "Parameter bar error" / "Parameter limit error" /
  "Parameter after error" (an unknown bar, a limit outside 1..300, a cursor not a number).

Candles come from the capture's `trades` pushes (trademesh.venues.replay.candles: the session, a made-up
past before it); a quiet minute of the session is a flat candle with no volume. Bars of months
(1M, 3M) and of several days (2D, 3D, 5D) are not served: the stand-in refuses them as an
unknown bar. An instrument listed but never streamed has no candles (an empty list).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from decimal import Decimal

from trademesh.venues.okx.standin.order_store import OkxInstrument
from trademesh.venues.replay.adapter import ReplayAdapter, RestAnswer
from trademesh.venues.replay.candles import CandleHistory, Grid, ReplayCandle, TradeCollector

__all__ = ["CANDLES", "HISTORY_CANDLES", "OkxCandles"]

CANDLES = "/api/v5/market/candles"
HISTORY_CANDLES = "/api/v5/market/history-candles"
_MINUTE_MS = 60_000
_HOUR_MS = 60 * _MINUTE_MS
_DAY_MS = 24 * _HOUR_MS
_MONDAY_MS = 4 * _DAY_MS  # the epoch was a Thursday
_HONG_KONG_MS = 8 * _HOUR_MS


def _grids() -> dict[str, Grid]:
    grids = {f"{m}m": Grid(m * _MINUTE_MS) for m in (1, 3, 5, 15, 30)}
    grids |= {f"{h}H": Grid(h * _HOUR_MS) for h in (1, 2, 4)}
    for name, step_ms, offset_ms in (
        ("6H", 6 * _HOUR_MS, 0),
        ("12H", 12 * _HOUR_MS, 0),
        ("1D", _DAY_MS, 0),
        ("1W", 7 * _DAY_MS, _MONDAY_MS),
    ):
        grids[name] = Grid(step_ms, (offset_ms - _HONG_KONG_MS) % step_ms)
        grids[f"{name}utc"] = Grid(step_ms, offset_ms)
    return grids


GRIDS = _grids()
MAX_LIMIT = 300
DEFAULT_LIMIT = 100
RECENT = 1440  # the candles /market/candles holds
_PLACES = Decimal("0.00000001")


def _text(value: Decimal) -> str:
    """A number as OKX writes it: plain, no exponent, no trailing zeros."""
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "") else text


def _answer(code: str, message: str, data: list[list[str]] | None = None) -> RestAnswer:
    return RestAnswer.json({"code": code, "msg": message, "data": data or []})


def _volumes(candle: ReplayCandle, instrument: OkxInstrument | None) -> tuple[Decimal, Decimal, Decimal]:
    """(vol, volCcy, volCcyQuote) of a candle whose volume is in base units (spot) or contracts."""
    if instrument is None or instrument.inst_type == "SPOT":
        return candle.volume, candle.notional, candle.notional
    worth = instrument.ct_val
    if instrument.inverse:  # contracts of ct_val USD: the coin is their USD worth over the price
        return candle.volume, candle.coin * worth, candle.volume * worth
    return candle.volume, candle.volume * worth, candle.notional * worth


class OkxCandles:
    """OKX's candle answers for the instruments a capture streams."""

    def __init__(self, adapter: ReplayAdapter, instruments: Mapping[str, OkxInstrument]) -> None:
        self._adapter = adapter
        self._instruments = instruments

    @functools.cached_property
    def markets(self) -> dict[str, CandleHistory]:
        trades = TradeCollector(self._adapter)
        for market in self._adapter.market_frames():
            if not market.topic.startswith("trades:"):
                continue
            for trade in json.loads(market.frame.text)["data"]:
                key = (str(trade["instId"]), str(trade["tradeId"]))
                trades.add(key[0], int(trade["ts"]), Decimal(trade["px"]), Decimal(trade["sz"]), key)
        return trades.histories()

    def answer(self, path: str, params: Mapping[str, str]) -> RestAnswer:
        """GET /market/candles or /market/history-candles."""
        inst_id = params.get("instId", "")
        if not inst_id:
            return _answer("50014", "Parameter instId can not be empty.")
        if inst_id not in self._instruments and inst_id not in self.markets:
            return _answer("51001", "Instrument ID does not exist")
        problem = _problem(params)
        if problem is not None:
            return _answer("51000", problem)
        history = self.markets.get(inst_id)
        if history is None:
            return _answer("0", "")
        grid, limit = GRIDS[params.get("bar", "1m")], int(params.get("limit", str(DEFAULT_LIMIT)))
        newer_than, older_than = int(params.get("before", "-1")), int(params.get("after", str(2**62)))
        first = newer_than + 1
        if path.endswith(CANDLES):
            first = max(first, history.now_open(grid) - (RECENT - 1) * grid.step_ms)
        candles = history.newest(grid, first, older_than - 1, limit)
        current = history.now_open(grid)
        rows = [self._row(candle, candle.open_ms == current, inst_id) for candle in reversed(candles)]
        return _answer("0", "", rows)

    def _row(self, candle: ReplayCandle, current: bool, inst_id: str) -> list[str]:
        vol, vol_ccy, vol_quote = _volumes(candle, self._instruments.get(inst_id))
        prices = (candle.open, candle.high, candle.low, candle.close)
        volumes = (vol, vol_ccy.quantize(_PLACES), vol_quote.quantize(_PLACES))
        return [str(candle.open_ms), *map(_text, prices), *map(_text, volumes), "0" if current else "1"]


def _problem(params: Mapping[str, str]) -> str | None:
    """What OKX refuses in a candles query (None: nothing)."""
    if params.get("bar", "1m") not in GRIDS:
        return "Parameter bar error"
    for name in ("after", "before", "limit"):
        if name in params and not params[name].isdigit():
            return f"Parameter {name} error"
    if not 1 <= int(params.get("limit", str(DEFAULT_LIMIT))) <= MAX_LIMIT:
        return "Parameter limit error"
    return None
