"""Market trades for the Coinbase stand-in: the trade history ccxt's fetch_trades reads.

As Coinbase Advanced Trade documents *Get Public Market Trades* (GET
/api/v3/brokerage/market/products/{product_id}/ticker, what ccxt 4.5.90 calls) and *Get Market
Trades* (/api/v3/brokerage/products/{product_id}/ticker, signed; the same answer):
- query: limit (1 to 1000, required), start and end (UNIX seconds, optional: ccxt sends them
  from `since` and the `until` param, whole seconds);
- answer: {"trades":[{"trade_id", "product_id", "price", "size", "time" (RFC 3339 with
  microseconds), "side" (BUY or SELL)}], "best_bid", "best_ask"}, strings, newest
  first: the `limit` newest trades at or after `start` and before `end` (end excluded, as the
  candles' range; without them, the most recent). A page cut inside one second is completed by
  asking again up to the next whole second (the trades repeated have the same trade_id);
- best_bid and best_ask: the replayed book's (empty before it has both sides);
- a limit out of range or a start or end that is not a number is refused, HTTP 400
  {"error":"INVALID_ARGUMENT",...}; a product it does not list, HTTP 404 "NOT_FOUND".

Trades are the capture's market_trades events, the snapshot's included (each trade_id once),
and the made-up past before them (trademesh.venues.replay.trades), whose prices follow the candles of
trademesh.venues.coinbase.standin.history. fetch_tickers reads the product list (GET
/api/v3/brokerage/market/products), which the capture records: its prices and 24 h volumes
are Coinbase's own, answered as recorded.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from trademesh.venues.coinbase.standin.history import CoinbaseCandles
from trademesh.venues.replay.adapter import ReplayAdapter, RestAnswer, RestRequest
from trademesh.venues.replay.trades import Print, TradeTape

__all__ = ["CoinbaseTrades"]

_PATH = re.compile(r"/api/v3/brokerage/(market/)?products/([^/]+)/ticker$")
MAX_LIMIT = 1000
_NS = 1_000_000_000
_FAR = 2**62


def _refuse(status: int, error: str, message: str) -> RestAnswer:
    return RestAnswer.json({"error": error, "error_details": message, "message": message}, status)


def _ns(iso: str) -> int:
    """An RFC 3339 time with up to nanoseconds in nanoseconds since the epoch."""
    whole, _, fraction = iso.rstrip("Z").partition(".")
    stamp = int(datetime.fromisoformat(whole + "+00:00").timestamp())
    return stamp * _NS + int((fraction + "000000000")[:9])


def _iso(ts_ns: int) -> str:
    """A made-up trade's time as Coinbase writes one: microseconds, Z."""
    stamp = datetime.fromtimestamp(ts_ns // _NS, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{ts_ns % _NS // 1000:06d}Z"


class CoinbaseTrades:
    def __init__(
        self,
        adapter: ReplayAdapter,
        candles: CoinbaseCandles,
        best: Callable[[str], tuple[str, str] | None],
    ) -> None:
        self._adapter = adapter
        self._candles = candles
        self._best = best  # a product's best bid and ask in the replayed book
        # (product, trade id) -> the session trade as captured
        self._captured: dict[tuple[str, int], dict[str, Any]] = {}

    @staticmethod
    def handles(request: RestRequest) -> bool:
        return request.method == "GET" and _PATH.search(request.path) is not None

    @functools.cached_property
    def tapes(self) -> dict[str, TradeTape]:
        prints: dict[str, list[Print]] = {}
        for market in self._adapter.market_frames():
            if not market.topic.startswith("market_trades:"):
                continue
            for event in json.loads(market.frame.text).get("events") or []:
                for trade in event.get("trades") or []:
                    product = str(trade["product_id"])
                    found = Print(
                        int(trade["trade_id"]),
                        _ns(trade["time"]),
                        Decimal(trade["price"]),
                        Decimal(trade["size"]),
                        buy=trade["side"] == "BUY",
                    )
                    prints.setdefault(product, []).append(found)
                    self._captured[(product, found.id)] = trade
        markets = self._candles.markets
        return {product: TradeTape(prints.get(product, ()), history) for product, history in markets.items()}

    def answer(self, request: RestRequest) -> RestAnswer:
        match = _PATH.search(request.path)
        assert match is not None
        product = match[2]
        if product not in self._candles.listed:
            return _refuse(404, "NOT_FOUND", "ProductID is invalid")
        params = request.params()
        limit = params.get("limit", "")
        if not limit.isdigit() or not 1 <= int(limit) <= MAX_LIMIT:
            return _refuse(400, "INVALID_ARGUMENT", f"limit must be between 1 and {MAX_LIMIT}")
        for name in ("start", "end"):
            if name in params and not params[name].isdigit():
                return _refuse(400, "INVALID_ARGUMENT", f"{name} must be UNIX seconds")
        best = self._best(product) or ("", "")
        tape = self.tapes.get(product)
        found: list[Print] = []
        if tape is not None:
            start = int(params.get("start", "0")) * _NS
            end = int(params["end"]) * _NS - 1 if "end" in params else None
            found = tape.newest(start, end, int(limit))
        rows = [self._row(product, p) for p in reversed(found)]
        return RestAnswer.json({"trades": rows, "best_bid": best[0], "best_ask": best[1]})

    def _row(self, product: str, trade: Print) -> dict[str, Any]:
        captured = self._captured.get((product, trade.id))
        time = str(captured["time"]) if captured is not None else _iso(trade.ts_ns)
        return {
            "trade_id": str(trade.id),
            "product_id": product,
            "price": str(captured["price"]) if captured is not None else format(trade.price, "f"),
            "size": str(captured["size"]) if captured is not None else format(trade.size, "f"),
            "time": time,
            "side": "BUY" if trade.buy else "SELL",
        }
