"""Candle history for the replay stand-ins: the session's trades in candles, a made-up past before them.

A capture holds seconds of trading; an exchange's candle endpoint reaches back years. Each
stand-in's history endpoint (Bybit's kline, OKX's candles, Kraken's OHLC, Coinbase's candles,
Deribit's chart data) answers in its exchange's format from one CandleHistory per market:

- the session: each of the capture's trades in the candle its time falls in (open, high, low,
  close as traded; sizes, notionals and trades counted). A candle the session spans without a
  trade is, where the exchange writes such (`fill`), a flat candle at the last close with no
  volume; else absent (Coinbase publishes none for a quiet interval);
- before the session, a made-up past back to the epoch. No exchange has one, but a history
  endpoint must answer a `since` of 0: the venue contract's paging check pages from 0, and
  ccxt turns a `since` into a fixed window on OKX, Coinbase and Deribit, which would read
  nothing before a listing. Its price follows a slow triangle wave (0.5 % either way over four
  hours) that starts the session at the session's first price; high and low reach a few ticks
  past open and close; the volume is a few of the session's average trades. A candle is a pure
  function of its open time, so a page of any range is computed at once, the same every time;
- after the session nothing: the stand-in's clock stopped at its last frame, and the candle
  holding that moment is the current one (not closed).

Grids: an interval's open times are every `step_ms` from `offset_ms` (0: from the epoch).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from trademesh.venues.replay.adapter import ReplayAdapter
from trademesh.venues.replay.capture import Capture
from trademesh.venues.replay.synthesis import decimals, step

__all__ = [
    "CandleHistory",
    "Grid",
    "ReplayCandle",
    "Trade",
    "TradeCollector",
    "adapter_histories",
    "first_prices",
    "histories",
    "session_span",
]

_WAVE_MS = 4 * 3_600_000  # the made-up price's period
_QUARTER_MS = _WAVE_MS // 4
_WAVE_SHARE = 200  # its amplitude: 1/200 of the session's first price
_MINUTE_MS = 60_000
_MASK = (1 << 64) - 1


@dataclass(frozen=True)
class Grid:
    """The open times of an interval's candles."""

    step_ms: int
    offset_ms: int = 0

    def floor(self, ms: int) -> int:
        """The open time of the candle that holds `ms`."""
        return (ms - self.offset_ms) // self.step_ms * self.step_ms + self.offset_ms

    def ceil(self, ms: int) -> int:
        """The first open time at or after `ms`."""
        return self.floor(ms + self.step_ms - 1)


@dataclass(frozen=True)
class Trade:
    ts_ms: int
    price: Decimal
    size: Decimal  # in the venue's own unit (base currency, or contracts)


@dataclass(frozen=True)
class ReplayCandle:
    open_ms: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal  # the sizes summed, in the venue's unit
    notional: Decimal  # price x size summed (the quote currency's worth)
    coin: Decimal  # size / price summed (an inverse contract's worth in the coin)
    trades: int
    made_up: bool = False

    @property
    def vwap(self) -> Decimal | None:
        return self.notional / self.volume if self.volume else None


def _mix(value: int) -> int:
    """A well-spread number from an integer (deterministic): the made-up past's small variations."""
    x = (value * 0x9E3779B97F4A7C15) & _MASK
    return x ^ (x >> 29)


class CandleHistory:
    """One market's candles on any grid: its made-up past, the session, nothing after."""

    def __init__(
        self,
        trades: Sequence[Trade],
        start_ms: int,
        end_ms: int,
        anchor: Decimal | None = None,
        *,
        fill: bool = True,
    ) -> None:
        self.trades = sorted(trades, key=lambda trade: trade.ts_ms)
        self.start_ms = min([start_ms, *(t.ts_ms for t in self.trades[:1])])
        self.end_ms = max([end_ms, *(t.ts_ms for t in self.trades[-1:])])
        first = self.trades[0].price if self.trades else anchor
        if first is None:
            raise ValueError("a market without trades needs an anchor price")
        self.fill = fill
        prices = [t.price for t in self.trades] or [first]
        self.tick = Decimal(step(max(decimals(p) or 0 for p in prices)))
        self.anchor_ticks = int(first / self.tick)
        self.amplitude = max(self.anchor_ticks // _WAVE_SHARE, 2)
        self.size_unit = _average_size(self.trades)
        self._session: dict[Grid, dict[int, ReplayCandle]] = {}

    def now_open(self, grid: Grid) -> int:
        """The open time of the current candle (the one holding the session's last moment)."""
        return grid.floor(self.end_ms)

    def candle(self, grid: Grid, open_ms: int) -> ReplayCandle | None:
        if open_ms < 0 or open_ms > self.now_open(grid):
            return None
        if open_ms < grid.floor(self.start_ms):
            return self._made_up(grid, open_ms)
        return self._session_candles(grid).get(open_ms)

    def oldest(self, grid: Grid, first_ms: int, last_ms: int, count: int) -> list[ReplayCandle]:
        """At most `count` candles opening in [first_ms, last_ms]: the oldest ones, oldest first."""
        found: list[ReplayCandle] = []
        at, last = grid.ceil(max(first_ms, 0)), min(last_ms, self.now_open(grid))
        while at <= last and len(found) < count:
            candle = self.candle(grid, at)
            if candle is not None:
                found.append(candle)
            at += grid.step_ms
        return found

    def newest(self, grid: Grid, first_ms: int, last_ms: int, count: int) -> list[ReplayCandle]:
        """At most `count` candles opening in [first_ms, last_ms]: the newest ones, oldest first."""
        found: list[ReplayCandle] = []
        at, first = grid.floor(min(last_ms, self.end_ms)), max(first_ms, 0)
        while at >= first and len(found) < count:
            candle = self.candle(grid, at)
            if candle is not None:
                found.append(candle)
            at -= grid.step_ms
        found.reverse()
        return found

    # ---- the session

    def _session_candles(self, grid: Grid) -> dict[int, ReplayCandle]:
        built = self._session.get(grid)
        if built is None:
            built = self._session[grid] = self._build(grid)
        return built

    def _build(self, grid: Grid) -> dict[int, ReplayCandle]:
        first = grid.floor(self.start_ms)
        buckets: dict[int, list[Trade]] = {}
        for trade in self.trades:
            buckets.setdefault(grid.floor(trade.ts_ms), []).append(trade)
        before = self._made_up(grid, first - grid.step_ms) if first - grid.step_ms >= 0 else None
        close = before.close if before is not None else self._price(self.anchor_ticks)
        built: dict[int, ReplayCandle] = {}
        for open_ms in range(first, self.now_open(grid) + 1, grid.step_ms):
            trades = buckets.get(open_ms)
            if trades:
                built[open_ms] = _traded(open_ms, trades)
                close = trades[-1].price
            elif self.fill:
                zero = Decimal(0)
                built[open_ms] = ReplayCandle(open_ms, close, close, close, close, zero, zero, zero, 0)
        return built

    # ---- the made-up past

    def price_at(self, ms: int) -> Decimal:
        """The made-up past's price at `ms` (the wave): its trades' prices
        (trademesh.venues.replay.trades)."""
        return self._price(self._level(ms))

    def minute_trades(self, open_ms: int) -> int:
        """How many trades the made-up 1-minute candle opening at `open_ms` counts."""
        return 1 + (_mix(open_ms) >> 16) % 9

    def _price(self, ticks: int) -> Decimal:
        return Decimal(max(ticks, 1)) * self.tick

    def _level(self, ms: int) -> int:
        """The made-up price at `ms` in ticks: the wave, at the first price when the session starts."""
        phase = (ms - self.start_ms) % _WAVE_MS
        if phase < _QUARTER_MS:
            offset = self.amplitude * phase // _QUARTER_MS
        elif phase < 3 * _QUARTER_MS:
            offset = self.amplitude * (2 * _QUARTER_MS - phase) // _QUARTER_MS
        else:
            offset = self.amplitude * (phase - _WAVE_MS) // _QUARTER_MS
        return self.anchor_ticks + offset

    def _turns(self, open_ms: int, step_ms: int) -> list[int]:
        """The wave's top and bottom (in ticks) where they fall inside the candle."""
        phase = (open_ms - self.start_ms) % _WAVE_MS
        found = []
        for turn in (_QUARTER_MS, 3 * _QUARTER_MS):
            at = open_ms + (turn - phase) % _WAVE_MS
            if at < open_ms + step_ms:
                found.append(self._level(at))
        return found

    def _made_up(self, grid: Grid, open_ms: int) -> ReplayCandle:
        o, c = self._level(open_ms), self._level(open_ms + grid.step_ms)
        levels = [o, c, *self._turns(open_ms, grid.step_ms)]
        unit, mixed = max(1, self.amplitude // 50), _mix(open_ms)
        high = max(levels) + unit * (1 + mixed % 4)
        low = min(levels) - unit * (1 + (mixed >> 8) % 4)
        trades = max(1, self.minute_trades(open_ms) * grid.step_ms // _MINUTE_MS)
        volume = self.size_unit * trades
        middle = (self._price(o) + self._price(c)) / 2
        return ReplayCandle(
            open_ms,
            self._price(o),
            self._price(high),
            self._price(low),
            self._price(c),
            volume,
            volume * middle,
            volume / middle,
            trades,
            made_up=True,
        )


def _traded(open_ms: int, trades: list[Trade]) -> ReplayCandle:
    prices = [t.price for t in trades]
    return ReplayCandle(
        open_ms,
        prices[0],
        max(prices),
        min(prices),
        prices[-1],
        sum((t.size for t in trades), Decimal(0)),
        sum((t.price * t.size for t in trades), Decimal(0)),
        sum((t.size / t.price for t in trades), Decimal(0)),
        len(trades),
    )


def _average_size(trades: Sequence[Trade]) -> Decimal:
    """The session's average trade size, to the decimals its sizes are written with (1 without trades)."""
    if not trades:
        return Decimal(1)
    places = max(decimals(t.size) or 0 for t in trades)
    unit = Decimal(step(places))
    average = sum((t.size for t in trades), Decimal(0)) / len(trades)
    return max(average.quantize(unit), unit)


def session_span(capture: Capture) -> tuple[int, int]:
    """The first and last received frame's times (ms): when the session starts and when the
    stand-in's clock stops."""
    if not capture.received:
        return 0, 0
    return int(capture.received[0].ts * 1000), int(capture.received[-1].ts * 1000)


def first_prices(adapter: ReplayAdapter) -> dict[str, Decimal]:
    """Each market's first price in the frames (a trade's or a book level's): the made-up past's
    anchor for a market that never traded in the session."""
    found: dict[str, Decimal] = {}
    for market in adapter.market_frames():
        symbol = adapter.symbol_of(market.topic)
        if symbol in found:
            continue
        try:
            levels = list(adapter.levels(market.frame, market.topic))
        except Exception:  # a frame the stand-in cannot read names no price
            continue
        for price, _size in levels:
            if decimals(price) is not None and Decimal(str(price)) > 0:
                found[symbol] = Decimal(str(price))
                break
    return found


def histories(
    trades: Mapping[str, Sequence[Trade]],
    anchors: Mapping[str, Decimal],
    span: tuple[int, int],
    *,
    fill: bool = True,
) -> dict[str, CandleHistory]:
    """A CandleHistory for each market that traded or shows a price, by the venue's own name."""
    names = dict.fromkeys([*trades, *anchors])
    return {
        name: CandleHistory(trades.get(name, ()), span[0], span[1], anchors.get(name), fill=fill)
        for name in names
        if trades.get(name) or name in anchors
    }


def adapter_histories(
    adapter: ReplayAdapter, trades: Mapping[str, Sequence[Trade]], *, fill: bool = True
) -> dict[str, CandleHistory]:
    """The candle histories of a stand-in's markets: its capture's trades, anchored at the frames'
    first prices, over the capture's session."""
    return histories(trades, first_prices(adapter), session_span(adapter.capture), fill=fill)


class TradeCollector:
    """A stand-in's trades by market as it reads them from its capture, each once however often
    it was pushed, and the candle histories they make."""

    def __init__(self, adapter: ReplayAdapter) -> None:
        self._adapter = adapter
        self._trades: dict[str, list[Trade]] = {}
        self._seen: set[Hashable] = set()

    def add(self, market: str, ms: int, price: Decimal, size: Decimal, once: Hashable | None = None) -> None:
        """A trade of `market` at `ms`; with `once` (the trade's identity), only the first time."""
        if once is not None:
            if once in self._seen:
                return
            self._seen.add(once)
        self._trades.setdefault(market, []).append(Trade(ms, price, size))

    def histories(self, *, fill: bool = True) -> dict[str, CandleHistory]:
        """A CandleHistory for each market that traded or shows a price."""
        return adapter_histories(self._adapter, self._trades, fill=fill)
