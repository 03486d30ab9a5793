"""OKX's public trades and all-tickers for the replay stand-in (spot; okx_swap's swaps too).

As OKX's API v5 documents them (https://www.okx.com/docs-v5/en/, Market Data):
- GET /api/v5/market/trades (ccxt 4.5.90's fetch_trades by default): instId, limit (1 to 500,
  100 when absent); the `limit` most recent trades, newest first;
- GET /api/v5/market/history-trades (fetch_trades with {"method":
  "publicGetMarketHistoryTrades"}): instId, type (1: the cursors are trade ids, the default; 2:
  timestamps in ms), after (older than it), before (newer than it; both excluded), limit (1 to
  100, 100 when absent); the `limit` newest trades between the cursors, newest first (before
  alone: the latest ones, as OKX's candles answer);
- a trade: {"instId", "side" (the taker's: buy or sell), "sz", "px", "source": "0", "tradeId",
  "ts"}, strings; sz in the base currency for spot, contracts for swaps;
- GET /api/v5/market/tickers: instType (SPOT, SWAP...; required); every listed instrument of that
  type: {"instType", "instId", "last", "lastSz", "askPx", "askSz", "bidPx", "bidSz", "open24h",
  "high24h", "low24h", "volCcy24h", "vol24h", "ts", "sodUtc0", "sodUtc8"}, the rolling 24 h up
  to the stand-in's clock from the trade tape (vol24h in base units for spot and contracts for
  swaps; volCcy24h the quote for spot, the coin for swaps), the best bid and ask of the
  instrument's last `tickers` push replayed (before the first one plays, the capture's first);
  an instrument the capture shows no price of answers empty prices and zero volumes;
- errors as OKX answers them (HTTP 200, code and message in the body): 50014 a required
  parameter missing, 51001 an instrument it does not list, 51000 "Parameter {name} error".

Trades are the capture's `trades` pushes (each tradeId once) and the made-up past before them
(trademesh.venues.replay.trades), whose prices follow the candles of trademesh.venues.okx.standin.history.
"""

from __future__ import annotations

import functools
import itertools
import json
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from trademesh.venues.okx.standin.order_store import OkxInstrument
from trademesh.venues.replay.adapter import ReplayAdapter, RestAnswer
from trademesh.venues.replay.candles import CandleHistory
from trademesh.venues.replay.trades import NS_PER_MS, Print, TradeTape

__all__ = ["HISTORY_TRADES", "TICKERS", "TRADES", "OkxTrades"]

TRADES = "/api/v5/market/trades"
HISTORY_TRADES = "/api/v5/market/history-trades"
TICKERS = "/api/v5/market/tickers"
_MAX_RECENT = 500
_MAX_HISTORY = 100
_DEFAULT_LIMIT = 100
_FAR = 2**62
_PLACES = Decimal("0.00000001")


def _answer(code: str, message: str, data: list[dict[str, Any]] | None = None) -> RestAnswer:
    return RestAnswer.json({"code": code, "msg": message, "data": data or []})


def _text(value: Decimal | None) -> str:
    """A number as OKX writes it: plain, no exponent, no trailing zeros ("" for none)."""
    if value is None:
        return ""
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "") else text


class OkxTrades:
    def __init__(
        self,
        adapter: ReplayAdapter,
        instruments: Mapping[str, OkxInstrument],
        candles: Callable[[], Mapping[str, CandleHistory]],
        tickers: Mapping[str, Mapping[str, Any]],
    ) -> None:
        self._adapter = adapter
        self._instruments = instruments
        self._candles = candles  # the candle histories by instId (their wave prices the past)
        self._tickers = tickers  # the last `tickers` push replayed, by instId

    @functools.cached_property
    def tapes(self) -> dict[str, TradeTape]:
        prints: dict[str, list[Print]] = {}
        for market in self._adapter.market_frames():
            if market.topic.startswith("trades:"):
                for trade in json.loads(market.frame.text)["data"]:
                    found = Print(
                        int(trade["tradeId"]),
                        int(trade["ts"]) * NS_PER_MS,
                        Decimal(trade["px"]),
                        Decimal(trade["sz"]),
                        buy=trade["side"] == "buy",
                    )
                    prints.setdefault(str(trade["instId"]), []).append(found)
        return {inst: TradeTape(prints.get(inst, ()), history) for inst, history in self._candles().items()}

    @functools.cached_property
    def _first_tickers(self) -> dict[str, dict[str, Any]]:
        """Each instrument's first `tickers` push in the capture (the book before playback)."""
        found: dict[str, dict[str, Any]] = {}
        for market in self._adapter.market_frames():
            if market.topic.startswith("tickers:"):
                for data in json.loads(market.frame.text).get("data") or []:
                    found.setdefault(str(data.get("instId")), data)
        return found

    # ---- trades

    def trades(self, path: str, params: Mapping[str, str]) -> RestAnswer:
        """GET /market/trades or /market/history-trades."""
        inst_id = params.get("instId", "")
        if not inst_id:
            return _answer("50014", "Parameter instId can not be empty.")
        if inst_id not in self._instruments and inst_id not in self.tapes:
            return _answer("51001", "Instrument ID does not exist")
        history = path.endswith(HISTORY_TRADES)
        for name in ("after", "before", "limit", "type"):
            if name in params and not params[name].isdigit():
                return _answer("51000", f"Parameter {name} error")
        limit = int(params.get("limit", str(_DEFAULT_LIMIT)))
        if not 1 <= limit <= (_MAX_HISTORY if history else _MAX_RECENT):
            return _answer("51000", "Parameter limit error")
        if params.get("type", "1") not in ("1", "2"):
            return _answer("51000", "Parameter type error")
        tape = self.tapes.get(inst_id)
        if tape is None:
            return _answer("0", "")
        if not history:
            found = tape.newest(0, None, limit)
        elif params.get("type", "1") == "2":  # timestamps (ms), both excluded
            newer_than, older_than = int(params.get("before", "-1")), int(params.get("after", str(_FAR)))
            found = tape.newest((newer_than + 1) * NS_PER_MS, older_than * NS_PER_MS - 1, limit)
        else:  # trade ids, both excluded
            newer = int(params["before"]) + 1 if "before" in params else 0
            older = int(params["after"]) - 1 if "after" in params else None
            within = itertools.takewhile(lambda p: p.id >= newer, tape.backward(to_id=older))
            found = list(itertools.islice(within, limit))
            found.reverse()
        return _answer("0", "", [self._trade_row(inst_id, p) for p in reversed(found)])

    @staticmethod
    def _trade_row(inst_id: str, trade: Print) -> dict[str, Any]:
        return {
            "instId": inst_id,
            "side": "buy" if trade.buy else "sell",
            "sz": _text(trade.size),
            "px": _text(trade.price),
            "source": "0",
            "tradeId": str(trade.id),
            "ts": str(trade.ts_ms),
        }

    # ---- tickers

    def tickers(self, params: Mapping[str, str]) -> RestAnswer:
        """GET /market/tickers: every listed instrument of the type."""
        inst_type = params.get("instType", "")
        if not inst_type:
            return _answer("50014", "Parameter instType can not be empty.")
        listed = [i for i in self._instruments.values() if i.inst_type == inst_type]
        return _answer("0", "", [self._ticker_row(instrument) for instrument in listed])

    def _ticker_row(self, instrument: OkxInstrument) -> dict[str, Any]:
        inst_id = instrument.inst_id
        tape = self.tapes.get(inst_id)
        pushed = self._tickers.get(inst_id) or self._first_tickers.get(inst_id) or {}
        day = tape.day() if tape is not None else None
        traded = day if day is not None and day.count else None
        now_ms = day.close_ns // NS_PER_MS if day is not None else 0
        if traded is None:
            vol, vol_ccy = Decimal(0), Decimal(0)
        elif instrument.inst_type == "SPOT":
            vol, vol_ccy = traded.volume, traded.notional
        elif instrument.inverse:  # contracts of ct_val USD: their coin worth
            vol, vol_ccy = traded.volume, traded.coin * instrument.ct_val
        else:
            vol, vol_ccy = traded.volume, traded.volume * instrument.ct_val
        return {
            "instType": instrument.inst_type,
            "instId": inst_id,
            "last": _text(day.last if day is not None else None),
            "lastSz": _text(day.last_size if day is not None else None),
            "askPx": str(pushed.get("askPx", "")),
            "askSz": str(pushed.get("askSz", "")),
            "bidPx": str(pushed.get("bidPx", "")),
            "bidSz": str(pushed.get("bidSz", "")),
            "open24h": _text(traded.open if traded is not None else None),
            "high24h": _text(traded.high if traded is not None else None),
            "low24h": _text(traded.low if traded is not None else None),
            "volCcy24h": _text(vol_ccy.quantize(_PLACES)),
            "vol24h": _text(vol),
            "ts": str(now_ms),
            "sodUtc0": _text(_day_open(tape, 0)),
            "sodUtc8": _text(_day_open(tape, 8)),
        }


def _day_open(tape: TradeTape | None, utc_hours: int) -> Decimal | None:
    """The price of the first trade of the day at UTC+`utc_hours` holding the stand-in's clock."""
    if tape is None:
        return None
    shift = utc_hours * 3_600_000 * NS_PER_MS
    day_ns = 86_400_000 * NS_PER_MS
    start = (tape.end_ns + shift) // day_ns * day_ns - shift
    first = tape.oldest(start, tape.end_ns, 1)
    return first[0].price if first else None
