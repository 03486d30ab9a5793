"""Binance's public trade history and 24h tickers for the replay stand-in (spot; USD-M with /fapi).

GET /api/v3/aggTrades (USD-M: /fapi/v1/aggTrades), what ccxt 4.5.90's fetch_trades calls by
default (`fetchTradesMethod` publicGetAggTrades / fapiPublicGetAggTrades), as Binance's
*Compressed/Aggregate trades list* documents it:
- query: symbol (required), fromId (an aggregate id, inclusive), startTime and endTime (ms,
  both inclusive), limit (default 500, at most 1000);
- with fromId: the `limit` oldest from that id (within startTime/endTime where given); with
  startTime and/or endTime: the `limit` oldest in the range, which may span at most an hour
  (more: -1127; ccxt asks for since .. since + 1 h); with neither: the `limit` most recent;
- a row: {"a": aggregate id, "p": price, "q": quantity (strings as the symbol writes them), "f"
  and "l": the first and last trade id it aggregates, "T": ms, "m": the buyer was the maker,
  "M": true (spot only)}, oldest first;
- errors: HTTP 400 {"code": -1121, "msg": "Invalid symbol."} (a symbol not listed, or none),
  -1127 for a range over an hour, -1100 for a parameter that is not a whole number, -1130 for a
  limit outside 1..1000.

The session's aggregates are the capture's aggTrade events (ids, times, prices as pushed; a symbol
streamed only as raw trade events has each trade as an aggregate of one, its id the trade's); before
them a made-up past (trademesh.venues.replay.trades), whose aggregates each hold one trade (f = l,
numbered as far below the session's first trade id as the aggregate's id is below its first aggregate
id). Its prices follow the made-up candles of trademesh.venues.replay.candles, which the stand-in's
klines serve before their recorded ones (trademesh.venues.binance.standin.history): a made-up minute's
kline holds its aggregates (open the first's price, the count, the volume).

GET /api/v3/ticker/24hr (USD-M: /fapi/v1/ticker/24hr): without `symbol` every symbol
exchangeInfo lists (recorded or made up), with `symbol` that one's object, with `symbols` (a
JSON list) those; the rolling 24 h up to the stand-in's clock from the same tape. A symbol with
no trade in the window answers zeros (Binance's "0.00000000", ids -1, count 0) and its last
price from before the window if any. Spot rows carry the replayed book's best bid and ask (the
depth snapshots' book with the updates played so far); USD-M rows have none, as on Binance.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from trademesh.venues.replay.adapter import ReplayAdapter, RestAnswer, RestRequest
from trademesh.venues.replay.candles import adapter_histories
from trademesh.venues.replay.synthesis import decimals, step
from trademesh.venues.replay.trades import NS_PER_MS, Print, TradeTape, candle_trades

__all__ = ["BinanceTrades"]

DEFAULT_LIMIT = 500
MAX_LIMIT = 1000
_HOUR_MS = 3_600_000
_FAR = 2**62


def _error(code: int, message: str) -> RestAnswer:
    return RestAnswer.json({"code": code, "msg": message}, 400)


class BinanceTrades:
    """aggTrades and ticker/24hr of one Binance stand-in (`futures`: the USD-M shapes)."""

    def __init__(
        self,
        adapter: ReplayAdapter,
        listed: Callable[[], list[str]],
        best: Callable[[str], tuple[str, str, str, str] | None],
        futures: bool = False,
    ) -> None:
        self._adapter = adapter
        self._listed = listed  # the symbols exchangeInfo lists
        self._best = best  # a symbol's best bid, its size, best ask, its size (None: no book)
        self._futures = futures
        # (from an aggTrade event, its id) -> (first trade id, last trade id, best match) of the
        # session's aggregates (a raw trade event is an aggregate of one)
        self._extra: dict[tuple[str, bool, int], tuple[int, int, bool | None]] = {}
        self._aggregated: set[str] = set()  # the symbols whose tape is their aggTrade stream

    @functools.cached_property
    def tapes(self) -> dict[str, TradeTape]:
        aggregated: dict[str, list[Print]] = {}
        single: dict[str, list[Print]] = {}  # raw trade events: each an aggregate of one
        for market in self._adapter.market_frames():
            if not market.topic.endswith(("@aggtrade", "@trade")):
                continue
            message = json.loads(market.frame.text)
            event = message.get("data", message) if "stream" in message else message
            if not isinstance(event, dict) or event.get("e") not in ("aggTrade", "trade"):
                continue
            aggregate = event["e"] == "aggTrade"
            trade_id = int(event["a"] if aggregate else event["t"])
            trade = Print(
                trade_id,
                int(event["T"]) * NS_PER_MS,
                Decimal(str(event["p"])),
                Decimal(str(event["q"])),
                buy=not event["m"],
            )
            (aggregated if aggregate else single).setdefault(str(event["s"]), []).append(trade)
            first, last = (int(event["f"]), int(event["l"])) if aggregate else (trade_id, trade_id)
            self._extra[(str(event["s"]), aggregate, trade_id)] = (first, last, event.get("M"))
        prints = {**single, **aggregated}  # a symbol's aggTrade stream where it has one
        self._aggregated = set(aggregated)
        trades = {symbol: candle_trades(found) for symbol, found in prints.items()}
        candles = adapter_histories(self._adapter, trades)
        return {symbol: TradeTape(prints.get(symbol, ()), history) for symbol, history in candles.items()}

    @staticmethod
    def _places(tape: TradeTape | None) -> tuple[int, int]:
        """The decimals the symbol's prices and quantities are written with (8 and 8 without a tape)."""
        if tape is None:
            return 8, 8
        prices = [p.price for p in tape.session] or [tape.candles.tick]
        sizes = [p.size for p in tape.session] or [tape.candles.size_unit]
        return max(decimals(p) or 0 for p in prices), max(decimals(q) or 0 for q in sizes)

    # ---- aggTrades

    def agg_trades(self, request: RestRequest) -> RestAnswer:
        params = request.params()
        symbol = params.get("symbol", "")
        if symbol not in self._listed():
            return _error(-1121, "Invalid symbol.")
        for name in ("fromId", "startTime", "endTime", "limit"):
            if name in params and not params[name].lstrip("-").isdigit():
                return _error(
                    -1100,
                    f"Illegal characters found in parameter '{name}'; legal range is '^[0-9]{{1,20}}$'.",
                )
        limit = int(params.get("limit", str(DEFAULT_LIMIT)))
        if not 1 <= limit <= MAX_LIMIT:
            return _error(-1130, "Invalid data sent for a parameter.")
        tape = self.tapes.get(symbol)
        if tape is None:  # listed, but the capture shows no price of it
            return RestAnswer.json([])
        start = int(params["startTime"]) if "startTime" in params else None
        end = int(params["endTime"]) if "endTime" in params else None
        if start is not None and end is not None and end - start > _HOUR_MS:
            return _error(-1127, "More than 1 hours between startTime and endTime.")
        if "fromId" in params:
            first = start if start is not None else 0
            found = tape.oldest(first * NS_PER_MS, _ns_end(end), limit, from_id=int(params["fromId"]))
        elif start is not None:
            found = tape.oldest(
                start * NS_PER_MS, _ns_end(end if end is not None else start + _HOUR_MS), limit
            )
        elif end is not None:
            found = tape.newest(max(end - _HOUR_MS, 0) * NS_PER_MS, _ns_end(end), limit)
        else:
            found = tape.newest(0, None, limit)
        return RestAnswer.json([self._row(symbol, tape, p) for p in found])

    def _row(self, symbol: str, tape: TradeTape, trade: Print) -> dict[str, Any]:
        extra = self._captured(symbol, trade.id)
        if extra is None:  # made up: one trade, numbered below the session's first
            first = self._first_trade_id(symbol, tape) - (tape.first_id - trade.id)
            extra = (first, first, True)
        row: dict[str, Any] = {
            "a": trade.id,
            "p": _text(trade.price),
            "q": _text(trade.size),
            "f": extra[0],
            "l": extra[1],
            "T": trade.ts_ms,
            "m": not trade.buy,
        }
        if not self._futures:
            row["M"] = True if extra[2] is None else extra[2]
        return row

    def _captured(self, symbol: str, trade_id: int) -> tuple[int, int, bool | None] | None:
        return self._extra.get((symbol, symbol in self._aggregated, trade_id))

    def _first_trade_id(self, symbol: str, tape: TradeTape) -> int:
        first = self._captured(symbol, tape.session[0].id) if tape.session else None
        return first[0] if first is not None else tape.first_id

    # ---- ticker/24hr

    def tickers(self, request: RestRequest) -> RestAnswer:
        params = request.params()
        listed = self._listed()
        if "symbol" in params:
            if params["symbol"] not in listed:
                return _error(-1121, "Invalid symbol.")
            return RestAnswer.json(self._ticker(params["symbol"]))
        if "symbols" in params:
            try:
                asked = json.loads(params["symbols"])
            except ValueError:
                return _error(-1100, "Illegal characters found in parameter 'symbols'.")
            if not isinstance(asked, list) or any(symbol not in listed for symbol in asked):
                return _error(-1121, "Invalid symbol.")
            return RestAnswer.json([self._ticker(str(symbol)) for symbol in asked])
        return RestAnswer.json([self._ticker(symbol) for symbol in listed])

    def _ticker(self, symbol: str) -> dict[str, Any]:
        tape = self.tapes.get(symbol)
        price_places, size_places = self._places(tape)

        def price(value: Decimal | None) -> str:
            return _fixed(value if value is not None else Decimal(0), price_places)

        def size(value: Decimal | None) -> str:
            return _fixed(value if value is not None else Decimal(0), size_places)

        now_ms = max((t.end_ns // NS_PER_MS for t in self.tapes.values()), default=0)
        day = tape.day() if tape is not None else None
        traded = day if day is not None and day.count > 0 else None
        change = traded.change if traded is not None else None
        percent = (
            change * 100 / traded.open if traded is not None and change is not None and traded.open else None
        )
        vwap = traded.vwap if traded is not None else None
        row: dict[str, Any] = {
            "symbol": symbol,
            "priceChange": price(change),
            "priceChangePercent": format((percent or Decimal(0)).quantize(Decimal("0.001")), "f"),
            "weightedAvgPrice": price(
                vwap.quantize(Decimal(step(price_places))) if vwap is not None else None
            ),
        }
        if not self._futures:
            row["prevClosePrice"] = price(traded.open if traded is not None else (day.last if day else None))
        row |= {
            "lastPrice": price(day.last if day is not None else None),
            "lastQty": size(day.last_size if day is not None else None),
        }
        if not self._futures:
            best = self._best(symbol)
            row |= {
                "bidPrice": best[0] if best else price(None),
                "bidQty": best[1] if best else size(None),
                "askPrice": best[2] if best else price(None),
                "askQty": best[3] if best else size(None),
            }
        row |= {
            "openPrice": price(traded.open if traded is not None else None),
            "highPrice": price(traded.high if traded is not None else None),
            "lowPrice": price(traded.low if traded is not None else None),
            "volume": size(traded.volume if traded is not None else None),
            "quoteVolume": _fixed(
                traded.notional if traded is not None else Decimal(0), price_places + size_places
            ),
            "openTime": day.open_ns // NS_PER_MS if day is not None else now_ms - 86_400_000,
            "closeTime": day.close_ns // NS_PER_MS if day is not None else now_ms,
            "firstId": traded.first_id if traded is not None else -1,
            "lastId": traded.last_id if traded is not None else -1,
            "count": traded.count if traded is not None else 0,
        }
        return row


def _fixed(value: Decimal, places: int) -> str:
    return format(value.quantize(Decimal(step(places))), "f")


def _text(value: Decimal) -> str:
    return format(value, "f")


def _ns_end(end_ms: int | None) -> int:
    """An inclusive end in ms as the last ns it holds."""
    return _FAR if end_ms is None else (end_ms + 1) * NS_PER_MS - 1
