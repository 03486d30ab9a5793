"""Public trade history for the replay stand-ins: the session's trades, a made-up past before them.

Each stand-in's trades endpoint (Binance's aggTrades, OKX's history-trades, Bybit's recent-trade,
Kraken's Trades, Coinbase's market trades, Deribit's trades by time) answers in its exchange's
format and paging from one TradeTape per market:

- the session: the capture's trades as the exchange pushed them (ids, times, prices, sizes,
  sides), each once, in id order;
- before the session, a made-up past, a pure function of time like the candles' (the same
  wave, trademesh.venues.replay.candles): each minute before the session's first holds as many trades as
  its made-up 1-minute candle counts, evenly spaced in the minute (the first at its open, at the
  candle's open price), each at the wave's price at its time, of the session's average size (so
  a minute's trades sum to its candle's volume) and the taker's side from the time's hash.
  Ids count back from the session's first: minute d before the session's holds ids
  first - 10 d .. first - 10 d + 8 (gaps between minutes, as an exchange's ids have where
  other markets trade), so ids increase with time and never repeat; the past starts where they
  would fall below 1 (a market with no trades in the session counts its ids from the epoch);
- after the session nothing: the stand-in's clock stopped at its last frame.

Times are nanoseconds (Kraken and Coinbase write sub-millisecond ones); a made-up trade's is a
whole millisecond. A tape is read forward from a time or id, or backward to one, lazily: a page
anywhere in the past costs its own trades only.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal

from trademesh.venues.replay.candles import CandleHistory, Trade

__all__ = ["NS_PER_MS", "DayStats", "Print", "TradeTape", "candle_trades"]

NS_PER_MS = 1_000_000
_MINUTE_MS = 60_000
_MINUTE_NS = _MINUTE_MS * NS_PER_MS
_DAY_NS = 1440 * _MINUTE_NS
_IDS_PER_MINUTE = 10  # a made-up minute's id slots: at most 9 trades, and a gap
_MASK = (1 << 64) - 1


@dataclass(frozen=True)
class Print:
    """One trade on a market's tape."""

    id: int
    ts_ns: int
    price: Decimal
    size: Decimal  # in the venue's own unit (base currency, or contracts)
    buy: bool  # the taker bought
    made_up: bool = False

    @property
    def ts_ms(self) -> int:
        return self.ts_ns // NS_PER_MS


@dataclass(frozen=True)
class DayStats:
    """A market's last 24 hours up to the stand-in's clock (a rolling window, as exchanges count it)."""

    open_ns: int  # the window's start
    close_ns: int  # the stand-in's clock
    open: Decimal | None  # the window's first trade's price (None: no trade in it)
    high: Decimal | None
    low: Decimal | None
    last: Decimal | None  # the last trade's price, in the window or before it
    last_size: Decimal | None
    volume: Decimal  # sizes summed
    notional: Decimal  # price x size summed
    coin: Decimal  # size / price summed (an inverse contract's worth in the coin)
    count: int
    first_id: int | None
    last_id: int | None

    @property
    def vwap(self) -> Decimal | None:
        return self.notional / self.volume if self.volume else None

    @classmethod
    def of(
        cls,
        window: Sequence[Print],
        open_ns: int,
        close_ns: int,
        last: Decimal | None,
        last_size: Decimal | None,
    ) -> DayStats:
        """The figures of the prints of a window (oldest first), from `open_ns` to `close_ns`."""
        zero = Decimal(0)
        prices = [p.price for p in window]
        return cls(
            open_ns=open_ns,
            close_ns=close_ns,
            open=prices[0] if prices else None,
            high=max(prices) if prices else None,
            low=min(prices) if prices else None,
            last=last,
            last_size=last_size,
            volume=sum((p.size for p in window), zero),
            notional=sum((p.price * p.size for p in window), zero),
            coin=sum((p.size / p.price for p in window), zero),
            count=len(window),
            first_id=window[0].id if window else None,
            last_id=window[-1].id if window else None,
        )

    @property
    def change(self) -> Decimal | None:
        return self.last - self.open if self.last is not None and self.open is not None else None


def _mix(value: int) -> int:
    x = (value * 0xBF58476D1CE4E5B9) & _MASK
    return x ^ (x >> 31)


def candle_trades(prints: Sequence[Print]) -> list[Trade]:
    """The prints as the candle history counts them."""
    return [Trade(p.ts_ms, p.price, p.size) for p in prints]


class TradeTape:
    """One market's trades: the made-up past, the session, nothing after.

    `session`: the capture's trades (any order; a repeated id is kept once); `candles`: the
    market's candle history (its wave prices the past, its clock ends the tape); `first_id`: the
    id the past counts back from when the session has no trades (default: the epoch's minutes)."""

    def __init__(self, session: Sequence[Print], candles: CandleHistory, first_id: int | None = None) -> None:
        unique = {p.id: p for p in session}
        self.session = sorted(unique.values(), key=lambda p: (p.id, p.ts_ns))
        self.candles = candles
        self.end_ns = candles.end_ms * NS_PER_MS  # the stand-in's clock
        # The first minute of the session: the past's minutes end before it.
        self.session_minute = candles.start_ms // _MINUTE_MS * _MINUTE_MS
        if self.session:
            self.first_id = self.session[0].id
        elif first_id is not None:
            self.first_id = first_id
        else:
            self.first_id = (self.session_minute // _MINUTE_MS + 1) * _IDS_PER_MINUTE
        # The past's first minute: the epoch's, or the one whose ids would fall below 1.
        back = (self.first_id - 1) // _IDS_PER_MINUTE  # minutes of the past with an id of 1 or more
        self.past_minute = max(0, self.session_minute - back * _MINUTE_MS)
        self._ids = [p.id for p in self.session]
        self._times = [p.ts_ns for p in self.session]
        self._day: DayStats | None = None

    # ---- the made-up past

    def minute(self, open_ms: int) -> list[Print]:
        """The made-up trades of the minute opening at `open_ms` (empty outside the past)."""
        if not self.past_minute <= open_ms < self.session_minute:
            return []
        count = self.candles.minute_trades(open_ms)
        first = self.first_id - (self.session_minute - open_ms) // _MINUTE_MS * _IDS_PER_MINUTE
        found = []
        for k in range(count):
            ms = open_ms + k * _MINUTE_MS // count
            price = self.candles.price_at(ms)
            found.append(
                Print(
                    first + k, ms * NS_PER_MS, price, self.candles.size_unit, _mix(ms) & 1 == 1, made_up=True
                )
            )
        return found

    def _minute_of_id(self, trade_id: int) -> int:
        """The open time of the made-up minute an id below the session's first falls in."""
        back = -((trade_id - self.first_id) // _IDS_PER_MINUTE)  # ceil((first - id) / slots)
        return self.session_minute - max(back, 0) * _MINUTE_MS

    # ---- reading

    def forward(self, from_ns: int = 0, from_id: int | None = None) -> Iterator[Print]:
        """Every trade at or after `from_ns` with an id of at least `from_id`, oldest first."""
        start_ms = max(from_ns, 0) // NS_PER_MS // _MINUTE_MS * _MINUTE_MS
        if from_id is not None:  # an id of the session's starts there
            start_ms = max(start_ms, min(self._minute_of_id(from_id), self.session_minute))
        for open_ms in range(max(start_ms, self.past_minute), self.session_minute, _MINUTE_MS):
            for p in self.minute(open_ms):
                if p.ts_ns >= from_ns and (from_id is None or p.id >= from_id):
                    yield p
        at = bisect.bisect_left(self._times, from_ns)
        if from_id is not None:
            at = max(at, bisect.bisect_left(self._ids, from_id))
        yield from self.session[at:]

    def backward(self, to_ns: int | None = None, to_id: int | None = None) -> Iterator[Print]:
        """Every trade at or before `to_ns` with an id of at most `to_id`, newest first."""
        end = len(self.session)
        if to_ns is not None:
            end = bisect.bisect_right(self._times, to_ns)
        if to_id is not None:
            end = min(end, bisect.bisect_right(self._ids, to_id))
        yield from reversed(self.session[:end])
        last_ms = self.session_minute - _MINUTE_MS
        if to_ns is not None:
            last_ms = min(last_ms, to_ns // NS_PER_MS // _MINUTE_MS * _MINUTE_MS)
        if to_id is not None and to_id < self.first_id:
            last_ms = min(last_ms, self._minute_of_id(to_id))
        for open_ms in range(last_ms, self.past_minute - 1, -_MINUTE_MS):
            for p in reversed(self.minute(open_ms)):
                if (to_ns is None or p.ts_ns <= to_ns) and (to_id is None or p.id <= to_id):
                    yield p

    def oldest(self, start_ns: int, end_ns: int, limit: int, from_id: int | None = None) -> list[Print]:
        """At most `limit` trades in [start_ns, end_ns] (and from `from_id`): the oldest, oldest first."""
        within = itertools.takewhile(lambda p: p.ts_ns <= end_ns, self.forward(start_ns, from_id))
        return list(itertools.islice(within, max(limit, 0)))

    def newest(self, start_ns: int, end_ns: int | None, limit: int, to_id: int | None = None) -> list[Print]:
        """At most `limit` trades in [start_ns, end_ns] (and to `to_id`): the newest, oldest first."""
        within = itertools.takewhile(lambda p: p.ts_ns >= start_ns, self.backward(end_ns, to_id))
        found = list(itertools.islice(within, max(limit, 0)))
        found.reverse()
        return found

    def last(self) -> Print | None:
        return next(self.backward(), None)

    def day(self) -> DayStats:
        """The last 24 hours up to the stand-in's clock (computed once)."""
        if self._day is None:
            self._day = self._count_day()
        return self._day

    def _count_day(self) -> DayStats:
        open_ns = self.end_ns - _DAY_NS
        window = list(itertools.takewhile(lambda p: p.ts_ns > open_ns, self.backward(self.end_ns)))
        window.reverse()
        last = self.last()
        price, size = (last.price, last.size) if last is not None else (None, None)
        return DayStats.of(window, open_ns, self.end_ns, price, size)
