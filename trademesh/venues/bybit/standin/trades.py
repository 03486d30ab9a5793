"""GET /v5/market/recent-trade and /v5/market/tickers for the Bybit stand-in (spot).

As Bybit's v5 documents them (https://bybit-exchange.github.io/docs/v5/market/recent-trade,
.../market/tickers):
- recent-trade: category (spot here), symbol (required), limit (spot 1 to 60, 60 when absent);
  the `limit` most recent trades, newest first, each {"execId", "symbol", "price", "size",
  "side" (the taker's: Buy or Sell), "time" (ms), "isBlockTrade", "isRPITrade"}, strings as
  Bybit writes them. Bybit pages no further back: the endpoint has no cursor nor time range
  (ccxt's fetch_trades filters `since` from the answer; Bybit's older trades are only in its
  daily archive files), so neither does the stand-in;
- tickers: category spot, symbol optional (without it every listed spot symbol: those the
  capture's instruments-info lists, and those it streams); each {"symbol", "bid1Price",
  "bid1Size", "ask1Price", "ask1Size", "lastPrice", "prevPrice24h", "price24hPcnt",
  "highPrice24h", "lowPrice24h", "turnover24h", "volume24h", "usdIndexPrice"}. The market as the
  replay position stands: lastPrice the last trade delivered (before playback, the last one
  before the session), the best bid and ask of the tracked book; the 24 h statistics are the
  rolling day up to the stand-in's clock from the trade tape. A symbol the capture shows no
  price of answers empty strings;
- errors answer HTTP 200 with retCode 10001 and a message (a missing symbol, a limit outside
  1..60, a category not served: "Not supported symbols" as the kline endpoint says it).

Trades are the capture's publicTrade pushes (each execId once) and the made-up past before them
(trademesh.venues.replay.trades), whose prices follow the candles of trademesh.venues.bybit.standin.history.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from trademesh.venues.bybit.standin.history import BybitKlines
from trademesh.venues.replay.adapter import ReplayAdapter, RestAnswer
from trademesh.venues.replay.trades import NS_PER_MS, Print, TradeTape

__all__ = ["BybitTrades"]

_SPOT_MAX = 60
_BAD_REQUEST = 10001


def _answer(code: int, message: str, result: dict[str, Any], now_ms: int) -> RestAnswer:
    return RestAnswer.json(
        {"retCode": code, "retMsg": message, "result": result, "retExtInfo": {}, "time": now_ms}
    )


def _text(value: Decimal | None) -> str:
    return "" if value is None else format(value, "f")


class BybitTrades:
    def __init__(
        self,
        adapter: ReplayAdapter,
        klines: BybitKlines,
        last_prices: Mapping[str, str],
        best: Callable[[str], tuple[str, str, str, str] | None],
    ) -> None:
        self._adapter = adapter
        self._klines = klines
        self._last_prices = last_prices  # symbol -> the last trade price delivered
        self._best = best  # a symbol's best bid, its size, best ask, its size at the replay position

    @functools.cached_property
    def tapes(self) -> dict[str, TradeTape]:
        prints: dict[str, list[Print]] = {}
        for market in self._adapter.market_frames():
            if market.topic.startswith("publicTrade."):
                for trade in json.loads(market.frame.text)["data"]:
                    found = Print(
                        int(trade["i"]),
                        int(trade["T"]) * NS_PER_MS,
                        Decimal(trade["p"]),
                        Decimal(trade["v"]),
                        buy=trade["S"] == "Buy",
                    )
                    prints.setdefault(str(trade["s"]), []).append(found)
        return {
            name: TradeTape(prints.get(name, ()), history) for name, history in self._klines.markets.items()
        }

    def _now(self) -> int:
        return max((t.end_ns // NS_PER_MS for t in self.tapes.values()), default=0)

    def recent(self, params: Mapping[str, str]) -> RestAnswer:
        """GET /v5/market/recent-trade."""
        now = self._now()
        category, symbol = params.get("category", "spot"), params.get("symbol", "")
        if not symbol:
            return _answer(_BAD_REQUEST, "params error: symbol is required", {}, now)
        limit = params.get("limit", str(_SPOT_MAX))
        if not limit.isdigit() or not 1 <= int(limit) <= _SPOT_MAX:
            return _answer(_BAD_REQUEST, f"params error: limit must be between 1 and {_SPOT_MAX}", {}, now)
        if category != "spot" or symbol not in self._klines.listed:
            return _answer(_BAD_REQUEST, "Not supported symbols", {}, now)
        tape = self.tapes.get(symbol)
        found = tape.newest(0, None, int(limit)) if tape is not None else []
        rows = [_trade_row(symbol, p) for p in reversed(found)]
        return _answer(0, "OK", {"category": category, "list": rows}, now)

    def tickers(self, params: Mapping[str, str]) -> RestAnswer:
        """GET /v5/market/tickers."""
        now = self._now()
        category = params.get("category", "spot")
        listed = sorted(self._klines.listed)
        if category != "spot" or (params.get("symbol") and params["symbol"] not in listed):
            return _answer(_BAD_REQUEST, "Not supported symbols", {}, now)
        symbols = [params["symbol"]] if params.get("symbol") else listed
        return _answer(0, "OK", {"category": category, "list": [self._ticker(s) for s in symbols]}, now)

    def _ticker(self, symbol: str) -> dict[str, Any]:
        tape = self.tapes.get(symbol)
        last = self._last_prices.get(symbol)
        if last is None and tape is not None:  # before playback: the last trade before the session
            before = tape.newest(0, tape.candles.start_ms * NS_PER_MS - 1, 1)
            last = _text(before[0].price) if before else None
        day = tape.day() if tape is not None and tape.day().count else None
        best = self._best(symbol) or ("", "", "", "")
        change = day.change / day.open if day is not None and day.change is not None and day.open else None
        return {
            "symbol": symbol,
            "bid1Price": best[0],
            "bid1Size": best[1],
            "ask1Price": best[2],
            "ask1Size": best[3],
            "lastPrice": last or "",
            "prevPrice24h": _text(day.open if day else None),
            "price24hPcnt": _text(change.quantize(Decimal("0.0001")) + 0 if change is not None else None),
            "highPrice24h": _text(day.high if day else None),
            "lowPrice24h": _text(day.low if day else None),
            "turnover24h": _text(day.notional.quantize(Decimal("0.00000001")) if day else None),
            "volume24h": _text(day.volume if day else None),
            "usdIndexPrice": "",
        }


def _trade_row(symbol: str, trade: Print) -> dict[str, Any]:
    return {
        "execId": str(trade.id),
        "symbol": symbol,
        "price": _text(trade.price),
        "size": _text(trade.size),
        "side": "Buy" if trade.buy else "Sell",
        "time": str(trade.ts_ms),
        "isBlockTrade": False,
        "isRPITrade": False,
    }
