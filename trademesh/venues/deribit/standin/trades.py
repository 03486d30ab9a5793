"""Deribit's public trades and book summaries for the replay stand-in.

As Deribit's API v2 documents them (https://docs.deribit.com/#public-get_last_trades_by_instrument,
#public-get_last_trades_by_instrument_and_time, #public-get_book_summary_by_currency):
- public/get_last_trades_by_instrument (ccxt's fetch_trades without `since` or `until`):
  instrument_name, count (1 to 1000, 10 when absent), start_seq and end_seq (trade_seq, both
  included), sorting ("asc", "desc", "default": desc);
- public/get_last_trades_by_instrument_and_time (with `since` or `until`): instrument_name,
  start_timestamp and end_timestamp (ms, both included; the stand-in takes 0 and its clock for
  one not sent, where ccxt sends only one), count, sorting. With "asc" the `count` oldest of the
  range, else the `count` newest (newest first with "desc" and "default");
- answer {"jsonrpc":"2.0","result":{"trades":[...],"has_more":bool}}: has_more when the range
  holds more trades than answered. A trade: {"trade_seq", "trade_id", "timestamp",
  "tick_direction", "price", "mark_price", "instrument_name", "direction" (the taker's),
  "amount"}, numbers but trade_id (a string; ETH's and other currencies' prefixed "ETH-",
  Bitcoin's bare). trade_seq is the tape's id (increasing, a page cursor without holes);
  tick_direction 0 to 3 (plus tick, zero-plus, minus, zero-minus) from the price before;
- public/get_book_summary_by_currency (fetch_tickers): currency (required), kind (optional);
  every listed instrument of that currency (and kind): {"instrument_name", "base_currency",
  "quote_currency", "volume" (24 h amount), "price_change" (24 h, %), "high",
  "low", "last", "bid_price", "ask_price", "mid_price", "mark_price", "open_interest",
  "estimated_delivery_price", "creation_timestamp", "interest_rate", and options'
  "underlying_price" and "underlying_index"}: the 24 h from the trade tape up to the stand-in's
  clock, the best bid and ask of the replayed book, else of the instrument's first ticker
  notification in the capture, which also gives the mark price, open interest and underlying
  (null where the capture has none);
- errors, HTTP 400 JSON-RPC {"code":-32602,"message":"Invalid params","data":{"reason","param"}}.

Trades are the capture's trades notifications (each trade once) and the made-up past before
them (trademesh.venues.replay.trades), whose prices follow the chart data of
trademesh.venues.deribit.standin.history. A made-up trade's mark price is its price; it carries
no iv nor index price.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any

from trademesh.venues.deribit.standin.history import DeribitChartData
from trademesh.venues.replay.adapter import ReplayAdapter, RestAnswer
from trademesh.venues.replay.trades import NS_PER_MS, Print, TradeTape

__all__ = ["DeribitTrades"]

MAX_COUNT = 1000
DEFAULT_COUNT = 10
_FAR = 2**62
_SORTINGS = ("asc", "desc", "default")


def _number(value: Decimal) -> float | int:
    """A JSON number as Deribit writes it (its shortest decimal form)."""
    return int(value) if value == value.to_integral_value() else float(value)


def _invalid(param: str, reason: str) -> RestAnswer:
    error = {"code": -32602, "message": "Invalid params", "data": {"reason": reason, "param": param}}
    return RestAnswer.json({"jsonrpc": "2.0", "error": error, "testnet": False}, 400)


def _result(result: Any) -> RestAnswer:
    return RestAnswer.json(
        {"jsonrpc": "2.0", "result": result, "usIn": 0, "usOut": 0, "usDiff": 0, "testnet": False}
    )


class DeribitTrades:
    def __init__(
        self,
        adapter: ReplayAdapter,
        chart_data: DeribitChartData,
        instruments: Callable[[str | None, str | None], Iterable[Mapping[str, Any]]],
        best: Callable[[str], tuple[Any, Any, Any, Any] | None],
    ) -> None:
        self._adapter = adapter
        self._chart = chart_data
        self._instruments = instruments  # the listed instruments of a currency and kind
        self._best = best  # an instrument's best bid, its amount, best ask, its amount (replayed)

    @functools.cached_property
    def tapes(self) -> dict[str, TradeTape]:
        prints: dict[str, list[Print]] = {}
        for market in self._adapter.market_frames():
            if market.topic.startswith("trades."):
                for trade in json.loads(market.frame.text)["params"]["data"]:
                    found = Print(
                        int(str(trade["trade_id"]).rsplit("-", 1)[-1]),
                        int(trade["timestamp"]) * NS_PER_MS,
                        Decimal(str(trade["price"])),
                        Decimal(str(trade["amount"])),
                        buy=trade["direction"] == "buy",
                    )
                    prints.setdefault(str(trade["instrument_name"]), []).append(found)
        return {
            name: TradeTape(prints.get(name, ()), history) for name, history in self._chart.markets.items()
        }

    @functools.cached_property
    def _first_tickers(self) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for market in self._adapter.market_frames():
            if market.topic.startswith("ticker."):
                data = json.loads(market.frame.text)["params"]["data"]
                found.setdefault(str(data.get("instrument_name")), data)
        return found

    # ---- trades

    def trades(self, method: str, params: Mapping[str, str]) -> RestAnswer:
        """public/get_last_trades_by_instrument[_and_time]."""
        instrument = params.get("instrument_name", "")
        if instrument not in self._chart.listed and instrument not in self.tapes:
            return _invalid("instrument_name", "wrong format")
        names = ("start_timestamp", "end_timestamp", "count", "start_seq", "end_seq")
        for name in names:
            if name in params and not params[name].isdigit():
                return _invalid(name, "wrong format")
        count = int(params.get("count", str(DEFAULT_COUNT)))
        if not 1 <= count <= MAX_COUNT:
            return _invalid("count", "must be between 1 and 1000")
        sorting = params.get("sorting", "default")
        if sorting not in _SORTINGS:
            return _invalid("sorting", "must be one of asc, desc, default")
        tape = self.tapes.get(instrument)
        if tape is None:
            return _result({"trades": [], "has_more": False})
        if method.endswith("_and_time"):
            start = int(params.get("start_timestamp", "0")) * NS_PER_MS
            end = (int(params["end_timestamp"]) + 1) * NS_PER_MS - 1 if "end_timestamp" in params else _FAR
            first_id, last_id = None, None
        else:
            start, end = 0, _FAR
            first_id = int(params["start_seq"]) if "start_seq" in params else None
            last_id = int(params["end_seq"]) if "end_seq" in params else None
        if sorting == "asc":
            found = [
                p
                for p in tape.oldest(start, end, count + 1, from_id=first_id)
                if last_id is None or p.id <= last_id
            ]
        else:
            found = tape.newest(start, end, count + 1, to_id=last_id)
            found = [p for p in found if first_id is None or p.id >= first_id]
            found.reverse()
        more = len(found) > count
        found = found[:count]
        rows = [self._row(instrument, tape, p) for p in found]
        return _result({"trades": rows, "has_more": more})

    @staticmethod
    def _row(instrument: str, tape: TradeTape, trade: Print) -> dict[str, Any]:
        before = next(tape.backward(to_id=trade.id - 1), None)
        rising = before is None or trade.price >= before.price
        same = before is not None and trade.price == before.price
        currency = instrument.split("-", 1)[0].split("_", 1)[0]
        return {
            "trade_seq": trade.id,
            "trade_id": str(trade.id) if currency == "BTC" else f"{currency}-{trade.id}",
            "timestamp": trade.ts_ms,
            "tick_direction": (1 if same else 0) if rising else (3 if same else 2),
            "price": _number(trade.price),
            "mark_price": _number(trade.price),
            "instrument_name": instrument,
            "direction": "buy" if trade.buy else "sell",
            "amount": _number(trade.size),
        }

    # ---- book summaries

    def book_summary(self, params: Mapping[str, str]) -> RestAnswer:
        """public/get_book_summary_by_currency."""
        currency = params.get("currency")
        if not currency:
            return _invalid("currency", "missing")
        listed = list(self._instruments(currency, params.get("kind")))
        return _result([self._summary(instrument) for instrument in listed])

    def _summary(self, instrument: Mapping[str, Any]) -> dict[str, Any]:
        name = str(instrument["instrument_name"])
        tape = self.tapes.get(name)
        day = tape.day() if tape is not None else None
        traded = day if day is not None and day.count else None
        ticker = self._first_tickers.get(name, {})
        best = self._best(name)
        bid = best[0] if best else ticker.get("best_bid_price")
        ask = best[2] if best else ticker.get("best_ask_price")
        change = (
            traded.change / traded.open * 100
            if traded and traded.change is not None and traded.open
            else None
        )
        summary: dict[str, Any] = {
            "instrument_name": name,
            "base_currency": instrument.get("base_currency"),
            "quote_currency": instrument.get("quote_currency"),
            "volume": _number(traded.volume) if traded else 0,
            "price_change": float(round(change, 4)) if change is not None else None,
            "high": _number(traded.high) if traded and traded.high is not None else None,
            "low": _number(traded.low) if traded and traded.low is not None else None,
            "last": _number(day.last) if day is not None and day.last is not None else None,
            "bid_price": bid,
            "ask_price": ask,
            "mid_price": (bid + ask) / 2 if bid and ask else None,
            "mark_price": ticker.get("mark_price"),
            "open_interest": ticker.get("open_interest", 0),
            "estimated_delivery_price": ticker.get("estimated_delivery_price"),
            "creation_timestamp": day.close_ns // NS_PER_MS if day is not None else 0,
            "interest_rate": ticker.get("interest_rate", 0),
        }
        if "underlying_price" in ticker:
            summary["underlying_price"] = ticker["underlying_price"]
            summary["underlying_index"] = ticker.get("underlying_index")
        return summary
