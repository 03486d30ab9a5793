"""GET /0/public/Trades and /0/public/Ticker for the Kraken stand-in.

As Kraken's *Get Recent Trades* and *Get Ticker Information* document them
(https://docs.kraken.com/api-reference/market-data/get-recent-trades, .../get-ticker-information):
- Trades: pair (the AssetPairs key, its altname or its wsname), since, count (1 to 1000, 1000
  when absent). `since` is either the `last` of a previous answer, a cursor in nanoseconds (the
  trades after it), or a time in seconds as ccxt sends a `since` (a number below 10^12, a
  fraction allowed: the trades at or after it); without it, the `count` most recent. The answer
  {"error":[],"result":{<pair key>:[[price, volume, time, "b"|"s", "m"|"l", misc, trade_id]...],
  "last":"<ns>"}}: oldest first, prices and volumes strings as the capture writes them, time
  seconds (a JSON number with the capture's digits; a made-up trade's whole milliseconds, its
  price on the pair's tick, pair_decimals, as the OHLC candles are),
  trade_id a number; `last` the last trade's time in nanoseconds (the next page's `since`), or
  the `since` asked when nothing follows it. ccxt appends `last` to the last row, and reads the
  trade id from the row's seventh item;
- Ticker: pair (one or several, comma-separated; none: every listed pair), keyed by AssetPairs
  key: {"a":[ask, whole lot volume, lot volume], "b":[bid, ...], "c":[last price, its volume],
  "v":[volume today, last 24 h], "p":[vwap today, 24 h], "t":[trades today, 24 h], "l":[low
  today, 24 h], "h":[high today, 24 h], "o": today's opening price}: "today" since 00:00 UTC,
  both up to the stand-in's clock, from the trade tape; the best bid and ask of the replayed book
  (empty before it has any: "0" at the pair's decimals). A pair the capture shows no price of
  answers zeros;
- errors, HTTP 200 with {"error":[...]}: "EQuery:Unknown asset pair", "EGeneral:Invalid
  arguments" (a count outside 1..1000, a since that is not a number).

Trades are the capture's v1 trade frames and the made-up past before them
(trademesh.venues.replay.trades), whose prices follow the candles of
trademesh.venues.kraken.standin.history. v1 trades have no ids: the tape numbers the session's
from the epoch's minutes (the past counts back from there), unlike the v2 stream's per-pair
1, 2, 3 (trademesh.venues.kraken.standin.adapter). Trades of the session at the same instant are
a nanosecond apart on the tape, so every `last` is a cursor no other trade shares.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from trademesh.venues.kraken.standin.history import KrakenOhlc
from trademesh.venues.replay.adapter import ReplayAdapter, RestAnswer
from trademesh.venues.replay.trades import DayStats, Print, TradeTape

__all__ = ["KrakenTrades"]

MAX_COUNT = 1000
_SECONDS_BELOW = 10**12  # a `since` below this is seconds, else nanoseconds
_NS = 1_000_000_000
_DAY_NS = 86_400 * _NS
_FAR = 2**62
_VOLUME = Decimal("0.00000001")


def _error(message: str) -> RestAnswer:
    return RestAnswer.json({"error": [message]})


def _seconds(ts_ns: int, text: str | None) -> Any:
    """A trade's time as Kraken writes it: seconds, a JSON number (the capture's own digits)."""
    return json.loads(text) if text is not None else ts_ns / _NS


class KrakenTrades:
    def __init__(
        self,
        adapter: ReplayAdapter,
        ohlc: KrakenOhlc,
        best: Callable[[str], tuple[str, str, str, str] | None],
    ) -> None:
        self._adapter = adapter
        self._ohlc = ohlc
        self._best = best  # a pair's best bid, its size, best ask, its size in the replayed book
        # (wsname, trade id) -> the session trade's row as captured: price, volume, time, side, type, misc
        self._captured: dict[tuple[str, int], list[Any]] = {}
        self._todays: dict[int, DayStats] = {}

    @functools.cached_property
    def tapes(self) -> dict[str, TradeTape]:
        """By wsname."""
        rows: dict[str, list[list[Any]]] = {}
        for market in self._adapter.market_frames():
            if market.topic.startswith("trade:"):
                rows.setdefault(self._adapter.symbol_of(market.topic), []).extend(
                    json.loads(market.frame.text)[1]
                )
        tapes = {}
        for wsname, history in self._ohlc.markets.items():
            first_id = (
                history.start_ms // 60_000 + 1
            ) * 10  # the epoch's minutes, as a market without trades
            prints, previous = [], -1
            for n, row in enumerate(rows.get(wsname, [])):
                ts_ns = max(int(Decimal(row[2]) * _NS), previous + 1)  # one instant: a nanosecond apart
                previous = ts_ns
                prints.append(Print(first_id + n, ts_ns, Decimal(row[0]), Decimal(row[1]), buy=row[3] == "b"))
                self._captured[(wsname, first_id + n)] = row
            tapes[wsname] = TradeTape(prints, history, first_id=first_id)
        return tapes

    # ---- Trades

    def _wsname(self, name: str) -> str | None:
        """A listed pair's wsname; a dark pool's key (".d", no wsname; ccxt may name BTC/USD by it)
        is its pair's."""
        return self._ohlc.wsname(name) or self._ohlc.wsname(name.removesuffix(".d"))

    def trades(self, params: Mapping[str, str]) -> RestAnswer:
        wsname = self._wsname(params.get("pair", ""))
        if wsname is None:
            return _error("EQuery:Unknown asset pair")
        count, since = params.get("count", str(MAX_COUNT)), params.get("since")
        if not count.isdigit() or not 1 <= int(count) <= MAX_COUNT:
            return _error("EGeneral:Invalid arguments")
        try:
            cursor = Decimal(since) if since is not None else None
        except ArithmeticError:
            return _error("EGeneral:Invalid arguments")
        if cursor is not None and not cursor.is_finite():
            return _error("EGeneral:Invalid arguments")
        key, _places = self._ohlc.pair(wsname)
        tape = self.tapes.get(wsname)
        if tape is None:
            return RestAnswer.json({"error": [], "result": {key: [], "last": since or "0"}})
        if cursor is None:
            found = tape.newest(0, None, int(count))
        elif cursor < _SECONDS_BELOW:  # seconds: from that time on
            found = tape.oldest(max(int(cursor * _NS), 0), _FAR, int(count))
        else:  # a `last`: the trades after it
            found = tape.oldest(int(cursor) + 1, _FAR, int(count))
        last = str(found[-1].ts_ns) if found else (since if since is not None else "0")
        rows = [self._row(wsname, p) for p in found]
        return RestAnswer.json({"error": [], "result": {key: rows, "last": last}})

    def _row(self, wsname: str, trade: Print) -> list[Any]:
        captured = self._captured.get((wsname, trade.id))
        if captured is not None:
            price, volume, time, side, kind, misc = captured[:6]
            return [price, volume, _seconds(trade.ts_ns, str(time)), side, kind, misc, trade.id]
        # Made up: on the pair's tick (as its OHLC candles are), written with the capture's decimals.
        tick = Decimal(1).scaleb(-self._ohlc.pair(wsname)[1])
        price = trade.price.quantize(tick).quantize(trade.price)
        side = "b" if trade.buy else "s"
        return [format(price, "f"), format(trade.size, "f"), trade.ts_ns / _NS, side, "l", "", trade.id]

    # ---- Ticker

    def tickers(self, params: Mapping[str, str]) -> RestAnswer:
        names = [name for name in params.get("pair", "").split(",") if name]
        wsnames = [self._wsname(name) for name in names] if names else self._ohlc.listed()
        if any(wsname is None for wsname in wsnames):
            return _error("EQuery:Unknown asset pair")
        result = {}
        for wsname in wsnames:
            assert wsname is not None
            key, places = self._ohlc.pair(wsname)
            result[key] = self._ticker(wsname, places)
        return RestAnswer.json({"error": [], "result": result})

    def _ticker(self, wsname: str, places: int) -> dict[str, Any]:
        unit = Decimal(1).scaleb(-places)

        def price(value: Decimal | None) -> str:
            return format((value if value is not None else Decimal(0)).quantize(unit), "f")

        def volume(value: Decimal) -> str:
            return format(value.quantize(_VOLUME), "f")

        tape = self.tapes.get(wsname)
        day = tape.day() if tape is not None else None
        today = self._today(tape, day)
        best = self._best(wsname)
        bid = (best[0], best[1]) if best is not None else (price(None), volume(Decimal(0)))
        ask = (best[2], best[3]) if best is not None else (price(None), volume(Decimal(0)))
        windows = [w if w is not None and w.count else None for w in (today, day)]
        return {
            "a": [ask[0], str(max(int(Decimal(ask[1])), 1) if best else 0), ask[1]],
            "b": [bid[0], str(max(int(Decimal(bid[1])), 1) if best else 0), bid[1]],
            "c": [
                price(day.last if day else None),
                volume(day.last_size if day and day.last_size else Decimal(0)),
            ],
            "v": [volume(w.volume if w else Decimal(0)) for w in windows],
            "p": [price(w.vwap if w else None) for w in windows],
            "t": [w.count if w else 0 for w in windows],
            "l": [price(w.low if w else None) for w in windows],
            "h": [price(w.high if w else None) for w in windows],
            "o": price(today.open if today is not None and today.count else None),
        }

    def _today(self, tape: TradeTape | None, day: DayStats | None) -> DayStats | None:
        """Since 00:00 UTC of the stand-in's clock: the day's window cut at midnight (counted once)."""
        if tape is None or day is None:
            return None
        if id(tape) not in self._todays:
            self._todays[id(tape)] = self._count_today(tape, day)
        return self._todays[id(tape)]

    @staticmethod
    def _count_today(tape: TradeTape, day: DayStats) -> DayStats:
        midnight = tape.end_ns // _DAY_NS * _DAY_NS
        window = tape.oldest(midnight, tape.end_ns, 10**7)
        return DayStats.of(window, midnight, tape.end_ns, day.last, day.last_size)
