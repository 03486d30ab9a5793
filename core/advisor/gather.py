"""Stage 1's input, gathered through the mesh's tools (core.tools.market: the functions the
gateway's MCP server serves, one implementation for both), all at once:

| part | tool |
|---|---|
| instrument facts | `instruments` (kept `instrument_ttl_s` per venue: they change rarely) |
| recent closed bars, the last price (the last bar's close), repaired bars | `latest_bars` |
| book top (best bid and ask with sizes, the book's event time) | `order_book_top` |
| positions, balances, open orders | `positions`, `balances`, `open_orders` |
| recent signals of the symbol | `recent_signals` |
| the last event's age, reconnects and resyncs | `venue_status` (kept `status_ttl_s`) |

A tool that fails leaves its part empty (the core then blocks the signal with the reason, e.g.
"no order book"); the failure is logged once per part and kind until it answers again. The
venue's reconnects and resyncs are the increase of its counters over the last `window_s`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TypeVar

from core.advisor.engine.context import BookTop, Context, GapMarker, OpenOrder
from core.advisor.engine.signal import Direction, RuleAttribution, Signal
from core.errors import TrademeshError
from core.model import Balance, Candle, Instrument, InstrumentKind, Position, Side, Timeframe
from core.tools.market import MarketTools

__all__ = ["ContextGatherer", "GatherConfig"]

log = logging.getLogger(__name__)

T = TypeVar("T")
Json = dict[str, Any]
_NS_PER_MS = 1_000_000
_RECENT_SIGNALS = 20


@dataclass(frozen=True)
class GatherConfig:
    timeframe: str = "1m"  # the bars' timeframe ("" in a service config: the model's)
    bars: int = 60  # closed bars in the context
    instrument_ttl_s: float = 60.0
    status_ttl_s: float = 1.0
    window_s: float = 300.0  # reconnects and resyncs counted over this


@dataclass
class _Counters:
    """A venue's reconnect and resync totals per symbol over time, to count the window's."""

    samples: deque[tuple[float, dict[str, tuple[int, int]]]] = field(default_factory=deque)

    def add(self, at: float, totals: dict[str, tuple[int, int]], window_s: float) -> None:
        self.samples.append((at, totals))
        while len(self.samples) > 1 and self.samples[1][0] <= at - window_s:
            self.samples.popleft()

    def increase(self, symbol: str) -> tuple[int, int]:
        if not self.samples:
            return 0, 0
        first, last = self.samples[0][1].get(symbol, (0, 0)), self.samples[-1][1].get(symbol, (0, 0))
        return max(0, last[0] - first[0]), max(0, last[1] - first[1])


def _d(text: Any, default: Decimal = Decimal(0)) -> Decimal:
    return Decimal(text) if isinstance(text, str) and text != "" else default


def _instrument(venue: str, raw: Json) -> Instrument:
    return Instrument(
        venue=venue,
        symbol=raw["symbol"],
        native_symbol=raw.get("native_symbol", ""),
        kind=InstrumentKind(raw.get("kind", "spot")),
        base_asset=raw.get("base_asset", ""),
        quote_asset=raw.get("quote_asset", ""),
        settle_asset=raw.get("settle_asset", ""),
        tick_size=_d(raw.get("tick_size")),
        lot_size=_d(raw.get("lot_size")),
        min_size=_d(raw.get("min_size")),
        min_notional=_d(raw.get("min_notional")),
        contract_size=_d(raw.get("contract_size"), Decimal(1)),
        active=bool(raw.get("active", True)),
        contract_value=_d(raw.get("contract_value"), Decimal(1)),
        contract_value_asset=raw.get("contract_value_asset", "") or "",
    )


def _candle(timeframe: Timeframe, raw: Json) -> Candle:
    return Candle(
        timeframe, int(raw["open_time_ns"]), _d(raw["open"]), _d(raw["high"]), _d(raw["low"]),
        _d(raw["close"]), _d(raw["volume"]), _d(raw.get("quote_volume")), int(raw.get("trade_count") or 0),
        True,
    )  # fmt: skip


def _book(raw: Json) -> BookTop | None:
    bids, asks = raw.get("bids") or [], raw.get("asks") or []
    if not bids or not asks:
        return None
    return BookTop(
        _d(bids[0]["price"]), _d(bids[0]["size"]), _d(asks[0]["price"]), _d(asks[0]["size"]),
        int(raw.get("ts_event_ns") or 0),
    )  # fmt: skip


@dataclass(frozen=True)
class _Parts:
    """What each tool answered (None: it failed)."""

    instrument: Instrument | None
    bars: Json | None
    book: Json | None
    positions: Json | None
    balances: Json | None
    orders: Json | None
    signals: Json | None
    status: Json | None


def _items(answer: Json | None, key: str) -> list[Json]:
    return [] if answer is None else list(answer.get(key, []))


def _position(raw: Json) -> Position:
    entry = raw.get("entry_price")
    return Position(
        raw["symbol"], _d(raw["size"]), None if not entry else _d(entry), _d(raw.get("realized_pnl"))
    )


def _balance(raw: Json) -> Balance:
    return Balance(raw["asset"], _d(raw["free"]), _d(raw.get("locked")))


def _open_order(raw: Json) -> OpenOrder:
    price = raw.get("price")
    return OpenOrder(
        raw["order_id"],
        Side(raw["side"]),
        None if price in (None, "") else _d(price),
        _d(raw.get("size")) - _d(raw.get("filled_size")),
    )


def _signal(raw: Json) -> Signal | None:
    try:
        return Signal(
            raw["signal_id"], raw["venue"], raw["symbol"], Direction(raw["direction"]),
            _d(raw["conviction"]), _d(raw["score"]), _d(raw["threshold"]), raw["strategy"],
            int(raw["patch_version"]),
            tuple(RuleAttribution(r["name"], _d(r["weight"]), r["value"], r["fired"]) for r in raw["rules"]),
            int(raw["ts_event_ns"]), int(raw["ts_signal_ns"]),
        )  # fmt: skip
    except (TrademeshError, KeyError, ValueError, TypeError):
        return None  # a recorded row the core's Signal would refuse: not context


class ContextGatherer:
    def __init__(
        self, tools: MarketTools, config: GatherConfig, clock: Callable[[], int] = time.time_ns
    ) -> None:
        self.tools = tools
        self.config = config
        self.timeframe = Timeframe.from_label(config.timeframe)
        self._clock = clock
        self._instruments: dict[str, tuple[float, dict[str, Instrument]]] = {}
        self._status: dict[str, tuple[float, Json]] = {}
        self._counters: dict[str, _Counters] = {}
        self._failing: set[tuple[str, str]] = set()

    async def gather(self, venue: str, symbol: str) -> Context:
        t, cfg = self.tools, self.config
        instrument = asyncio.ensure_future(self._part("instruments", venue, self._instrument(venue, symbol)))
        bars, book, positions, balances, orders, signals, status = await asyncio.gather(
            self._part("latest_bars", venue, t.latest_bars(venue, symbol, cfg.timeframe, cfg.bars)),
            self._part("order_book_top", venue, t.order_book_top(venue, symbol, 1)),
            self._part("positions", venue, t.positions(venue, symbol)),
            self._part("balances", venue, t.balances(venue)),
            self._part("open_orders", venue, t.open_orders(venue, symbol)),
            self._part("recent_signals", venue, t.recent_signals(None, symbol, _RECENT_SIGNALS)),
            self._part("venue_status", venue, self._venue_status(venue)),
        )
        parts = _Parts(await instrument, bars, book, positions, balances, orders, signals, status)
        return self._context(venue, symbol, parts)

    def _context(self, venue: str, symbol: str, parts: _Parts) -> Context:
        now = self._clock()
        raw_bars = _items(parts.bars, "bars")
        candles = tuple(_candle(self.timeframe, b) for b in raw_bars)
        top = None if parts.book is None else _book(parts.book)
        found = [s for s in map(_signal, _items(parts.signals, "signals")) if s is not None]
        reconnects, resyncs = self._counters.get(venue, _Counters()).increase(symbol)
        step = self.timeframe.ns
        return Context(
            venue=venue,
            symbol=symbol,
            gathered_ns=now,
            instrument=parts.instrument,
            price=candles[-1].close if candles else None,
            book=top,
            bars=candles,
            positions=tuple(_position(p) for p in _items(parts.positions, "positions")),
            balances=tuple(_balance(b) for b in _items(parts.balances, "balances")),
            open_orders=tuple(_open_order(o) for o in _items(parts.orders, "orders")),
            recent_signals=tuple(reversed([s for s in found if s.venue == venue])),
            last_event_ns=self._last_event_ns(symbol, parts.status, top, now),
            gaps=tuple(
                GapMarker(c.open_time_ns, c.open_time_ns + step, 1, True)
                for c, raw in zip(candles, raw_bars, strict=True)
                if raw.get("repaired")
            ),
            reconnects=reconnects,
            resyncs=resyncs,
        )

    def _last_event_ns(self, symbol: str, status: Json | None, book: BookTop | None, now: int) -> int | None:
        ages: list[int] = [
            s["last_event_age_ms"]
            for s in _items(status, "streams")
            if s.get("symbol") == symbol and isinstance(s.get("last_event_age_ms"), int)
        ]
        if ages:
            return now - min(ages) * _NS_PER_MS
        if book is not None and book.ts_event_ns > 0:
            return book.ts_event_ns
        return None

    async def _part(self, part: str, venue: str, call: Awaitable[T]) -> T | None:
        try:
            found = await call
        except TrademeshError as exc:
            if (part, type(exc).__name__) not in self._failing:
                self._failing.add((part, type(exc).__name__))
                log.warning("advisor context: %s of %s: %s", part, venue, exc, extra={"venue": venue})
            return None
        self._failing = {f for f in self._failing if f[0] != part} if self._failing else self._failing
        return found

    async def _instrument(self, venue: str, symbol: str) -> Instrument | None:
        now = time.monotonic()
        cached = self._instruments.get(venue)
        if cached is None or now - cached[0] > self.config.instrument_ttl_s or symbol not in cached[1]:
            answer = await self.tools.instruments(venue)
            table = {raw["symbol"]: _instrument(venue, raw) for raw in answer["instruments"]}
            self._instruments[venue] = cached = (now, table)
        return cached[1].get(symbol)

    async def _venue_status(self, venue: str) -> Json:
        now = time.monotonic()
        cached = self._status.get(venue)
        if cached is not None and now - cached[0] <= self.config.status_ttl_s:
            return cached[1]
        status = await self.tools.venue_status(venue)
        self._status[venue] = (now, status)
        totals: dict[str, tuple[int, int]] = {}
        for stream in status.get("streams", []):
            reconnects, resyncs = totals.get(stream["symbol"], (0, 0))
            totals[stream["symbol"]] = (
                reconnects + int(stream["reconnects"]),
                resyncs + int(stream["resyncs"]),
            )
        self._counters.setdefault(venue, _Counters()).add(now, totals, self.config.window_s)
        return status
