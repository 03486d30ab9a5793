"""Stage 1's input, gathered through the mesh's tools (trademesh.core.tools.market: the functions the
gateway's MCP server serves, one implementation for both). A market's own parts are fetched per
market; its venue's once per venue, shared by every followed market of the venue:

| part | tool | per | kept (refreshed every) |
|---|---|---|---|
| closed bars, the last price (the last close), repaired bars | `latest_bars` | market | a bar (<= 5 s)** |
| open gap markers of the bars' window | `gap_markers` | market | `gaps_ms` (1 s) |
| book top (best bid, ask, sizes, the book's event time) | `order_book_tops` | venue | `book_ms` (200 ms)* |
| book tops by the book's event time (trademesh.core.advisor.book_feed) | `book_events` | venue | as they come
|
| recent signals of the symbol | `recent_signals` | market | `signals_ms` (1 s) |
| instrument facts (each parsed when first read) | `instruments` | venue | `instrument_ms` (60 s) |
| positions, open orders (all symbols, by symbol) | `positions`, `open_orders` | venue | `account_ms` (1 s) |
| balances | `balances` | venue | `account_ms` (1 s) |
| each symbol's last event time, reconnects and resyncs | `venue_status` | venue | `status_ms` (1 s) |

(*) Only while the venue's book subscription lacks a top of one of its followed markets.
(**) The newest `bars`; the regime's whole window behind them every 5 min (trademesh.core.advisor.bar_window).

A signal is decided on the world as of its time (`gather(..., as_of_ns)`), a part that cannot
be had as of then is the latest, counted; a decision never waits for a call once its market
is followed. How markets are followed and dropped, the as-of rules and the gaps:
docs/advisor-service.md, "Stage 1's context: the mesh's tools".
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TypeVar

from trademesh.core.advisor.bar_window import WHOLE_EVERY_S, Bars, closed_by, spliced
from trademesh.core.advisor.book_feed import BookFeed
from trademesh.core.advisor.engine.context import BookTop, Context, GapMarker, OpenOrder
from trademesh.core.advisor.fills import RecentFills, moved
from trademesh.core.advisor.gather_config import GatherConfig
from trademesh.core.advisor.metrics import AS_OF_LATEST, FOLLOWED_MARKETS, FOLLOWED_VENUES
from trademesh.core.advisor.venue_bars import VenueBarHistory, filled
from trademesh.core.domain.contracts.signal import Direction, RuleAttribution, Signal
from trademesh.core.domain.model import Balance, Candle, Instrument, InstrumentKind, Position, Side, Timeframe
from trademesh.core.platform.aio.retry import wait_any
from trademesh.core.platform.errors import NotFound, TrademeshError, shown
from trademesh.core.tools.market import MarketTools

__all__ = ["ContextGatherer", "GatherConfig", "open_gap"]

log = logging.getLogger(__name__)

Json = dict[str, Any]
T = TypeVar("T")
_NS_PER_MS = 1_000_000
_RECENT_SIGNALS = 20
_MAX_GAPS = 100  # more open gaps than this in a window block the signal anyway


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
        maker_fee_rate=_rate(raw.get("maker_fee_rate")),
        taker_fee_rate=_rate(raw.get("taker_fee_rate")),
    )


def _rate(text: Any) -> Decimal | None:
    """A stated fee rate; None when the venue states none."""
    return Decimal(text) if isinstance(text, str) and text != "" else None


def _candle(timeframe: Timeframe, raw: Json) -> Candle:
    return Candle(
        timeframe, int(raw["open_time_ns"]), _d(raw["open"]), _d(raw["high"]), _d(raw["low"]),
        _d(raw["close"]), _d(raw["volume"]), _d(raw.get("quote_volume")), int(raw.get("trade_count") or 0),
        True,
    )  # fmt: skip


def open_gap(raw: Json, window_start_ns: int, timeframe: Timeframe) -> GapMarker:
    """An open gap marker of the tool's answer, cut to the window: the bars of it the context has."""
    start = max(int(raw["start_ns"]), window_start_ns)
    end = max(start, int(raw["end_ns"]))
    bars = (timeframe.open_time_ns(end) - timeframe.open_time_ns(start)) // timeframe.ns + 1
    return GapMarker(start, end, bars, False)


def _book(raw: Json) -> BookTop | None:
    bids, asks = raw.get("bids") or [], raw.get("asks") or []
    if not bids or not asks:
        return None
    return BookTop(
        _d(bids[0]["price"]), _d(bids[0]["size"]), _d(asks[0]["price"]), _d(asks[0]["size"]),
        int(raw.get("ts_event_ns") or 0),
    )  # fmt: skip


def _items(answer: Json | None, key: str) -> list[Json]:
    return [] if answer is None else list(answer.get(key, []))


async def _parsed(call: Awaitable[Json], parse: Callable[[Json], T]) -> T:
    return parse(await call)


def _listed(answer: Json, key: str, parse: Callable[[Json], Any]) -> tuple[Any, ...]:
    return tuple(parse(item) for item in _items(answer, key))


def _by_symbol(answer: Json, key: str, parse: Callable[[Json], Any]) -> dict[str, tuple[Any, ...]]:
    """The venue's items of every symbol (one call for all its markets), by symbol."""
    found: dict[str, list[Any]] = {}
    for item in _items(answer, key):
        found.setdefault(item["symbol"], []).append(parse(item))
    return {symbol: tuple(items) for symbol, items in found.items()}


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


@dataclass
class _View:
    """Kept parts: a followed market's own, or its venue's (shared by every market of the venue):
    each part's latest value, when it was fetched, what is being fetched."""

    venue: str
    symbol: str  # "" in a venue's view
    parts: tuple[str, ...]  # those refreshed
    values: dict[str, Any] = field(default_factory=dict)
    fetched: dict[str, float] = field(default_factory=dict)
    fetching: set[str] = field(default_factory=set)
    ready: asyncio.Future[Any] | None = None  # the first fetch of every part
    touched: float = 0.0  # a market's last signal (monotonic s)
    whole_bars_at: float = 0.0  # a market's last read of its whole window of bars (monotonic s)


@dataclass
class _Instruments:
    """A venue's instruments as its tool answered, each parsed on first use (a venue may list
    thousands; a context needs one)."""

    venue: str
    raw: dict[str, Json]
    parsed: dict[str, Instrument] = field(default_factory=dict)

    def get(self, symbol: str) -> Instrument | None:
        found = self.parsed.get(symbol)
        if found is None and symbol in self.raw:
            found = self.parsed[symbol] = _instrument(self.venue, self.raw[symbol])
        return found


# A market's own parts, and those of its venue: fetched once per venue, shared by its markets.
# A market's book is its own part, fetched alone when the market is new, then refreshed with the
# venue's other followed markets' books in one look ("books", a venue part).
MARKET_PARTS = ("bars", "gaps", "book", "signals")
VENUE_PARTS = ("instruments", "positions", "balances", "orders", "status", "books")
_REFRESHED = {"market": ("bars", "gaps", "signals"), "venue": VENUE_PARTS}
# The refresh loop sleeps until the earliest part is due (or a market is ready), at least this.
_MIN_WAIT_S = 0.02
_NOTHING = _View("", "", ())


class ContextGatherer:
    def __init__(
        self,
        tools: MarketTools,
        config: GatherConfig,
        clock: Callable[[], int] = time.time_ns,
        venue_bars: VenueBarHistory | None = None,
    ) -> None:
        self.tools = tools
        # The venue's candles, where the recorder holds too few bars (None: the recorder's only).
        self.venue_bars = venue_bars
        self.config = config
        self.timeframe = Timeframe.from_label(config.timeframe)
        self._clock = clock
        self._views: dict[tuple[str, str], _View] = {}
        self._venues: dict[str, _View] = {}
        self._counters: dict[str, _Counters] = {}
        self._failing: set[tuple[str, str, str]] = set()  # (part, venue, error): said already
        self._tasks: set[asyncio.Task[None]] = set()
        self._intervals = {
            "instruments": config.instrument_ms / 1000,
            "bars": min(self.timeframe.value, 5.0),
            "gaps": config.gaps_ms / 1000,
            "books": config.book_ms / 1000,
            "positions": config.account_ms / 1000,
            "balances": config.account_ms / 1000,
            "orders": config.account_ms / 1000,
            "signals": config.signals_ms / 1000,
            "status": config.status_ms / 1000,
        }
        self._extra_bars = -(-config.history_ms * _NS_PER_MS // self.timeframe.ns) + 1
        self.tops = BookFeed(tools.book_events, config.history_ms * _NS_PER_MS)
        self.fills: RecentFills | None = None  # the venues' recent fills (the service sets it)
        self._kept: set[tuple[str, str]] = (
            set()
        )  # followed however idle (trademesh.core.platform.patch_markets)
        # Set when the refresh loop must look before its next due part: a view became ready,
        # the kept markets changed.
        self._wake = asyncio.Event()

    async def gather(self, venue: str, symbol: str, as_of_ns: int | None = None) -> Context:
        """The market's context: at once when it is followed, else after fetching every part
        (the venue's only when no other market of it is followed). With `as_of_ns` (a signal's
        time) as of then: the bars closed before then, the book's top and the account
        then (each the latest when it cannot be had then, counted)."""
        if (venue, symbol) not in self._views:
            await self._known(venue)
        view = self._market(venue, symbol)
        assert view.ready is not None
        await asyncio.shield(view.ready)
        view.touched = time.monotonic()
        return self._context(view, self._as_of(as_of_ns))

    def keep(self, markets: Collection[tuple[str, str]]) -> None:
        """Follow these markets from now on, and keep them while they are given (the detectors'
        active patches trade them: trademesh.core.platform.patch_markets): a market's first signal then
        finds its book's history and its venue's fills. A kept market is not dropped for
        idleness; one no longer kept is, `idle_s` after its last signal or after now."""
        now = time.monotonic()
        for key in self._kept - set(markets):
            view = self._views.get(key)
            if view is not None:
                view.touched = max(view.touched, now)
        self._kept = set(markets)
        for venue, symbol in sorted(self._kept):
            self._market(venue, symbol)
        self._wake.set()

    async def _known(self, venue: str) -> None:
        """NotFound naming a venue the mesh does not serve (not live, not followed already):
        nothing is followed for it."""
        if venue in self._venues:
            return
        live = (await self.tools.list_venues())["venues"]
        if venue not in live:
            serving = ", ".join(live) or "none is registered"
            raise NotFound(f"no venue {shown(venue)} in the mesh (venues: {serving})")

    def _market(self, venue: str, symbol: str) -> _View:
        """The market's view, followed from now on (every part's first fetch started) when new."""
        key = (venue, symbol)
        view = self._views.get(key)
        if view is None:
            self._make_room(key)
            shared = self._venue(venue)
            view = _View(venue, symbol, _REFRESHED["market"], touched=time.monotonic())
            self._views[key] = view
            if self.config.history_ms > 0:
                self.tops.follow(venue, symbol)
            assert shared.ready is not None
            view.ready = asyncio.gather(shared.ready, *(self._fetch(view, part) for part in MARKET_PARTS))
            view.ready.add_done_callback(self._woken)
            self._count()
        return view

    def _make_room(self, new: tuple[str, str]) -> None:
        """Past `most_markets` followed beyond the kept ones, the one without a signal for the
        longest is no longer followed (its venue goes at the next refresh when it was its last)."""
        if new in self._kept:
            return
        spare = sorted((v.touched, key) for key, v in self._views.items() if key not in self._kept)
        for _, key in spare[: max(0, len(spare) + 1 - self.config.most_markets)]:
            self._drop(key)

    def _drop(self, key: tuple[str, str]) -> None:
        del self._views[key]
        self.tops.unfollow(*key)
        if self.venue_bars is not None:
            self.venue_bars.drop(*key)
        self._count()

    def _count(self) -> None:
        FOLLOWED_MARKETS.set(len(self._views))
        FOLLOWED_VENUES.set(len(self._venues))

    def _as_of(self, as_of_ns: int | None) -> int | None:
        """The time to gather as of: None (the latest) without one, or for a signal older than
        the history kept (counted)."""
        if as_of_ns is None or as_of_ns <= 0 or self.config.history_ms <= 0:
            return None
        if self._clock() - as_of_ns > self.config.history_ms * _NS_PER_MS:
            AS_OF_LATEST.labels("old").inc()
            return None
        return as_of_ns

    def _venue(self, venue: str) -> _View:
        """The venue's view, its first fetch started when it is new."""
        shared = self._venues.get(venue)
        if shared is None:
            shared = self._venues[venue] = _View(venue, "", _REFRESHED["venue"])
            if self.fills is not None:
                self.fills.follow(venue)
            first = [part for part in VENUE_PARTS if part != "books"]  # a new market fetches its own
            shared.fetched["books"] = time.monotonic()
            shared.ready = asyncio.gather(*(self._fetch(shared, part) for part in first))
            shared.ready.add_done_callback(self._woken)
        return shared

    async def follow(self, stop: asyncio.Event) -> None:
        """Refresh each followed market's and venue's parts when due, until `stop`: asleep until
        the earliest is due, or a view becomes ready (a 20 ms tick woke it 50 times a second)."""
        try:
            while not stop.is_set():
                self._wake.clear()
                now = time.monotonic()
                due = self._refresh_due(now)
                wait_s = None if due is None else max(due - now, _MIN_WAIT_S)
                await wait_any(stop, self._wake, timeout_s=wait_s)
        finally:
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await self.tops.close()

    def _woken(self, _: object) -> None:
        self._wake.set()

    def _refresh_due(self, now: float) -> float | None:
        """The parts due by `now` fetched (in the background), idle markets dropped; when the
        next part is due or a market goes idle (monotonic s; None: nothing is followed ready)."""
        for key, view in list(self._views.items()):
            if key not in self._kept and now - view.touched > self.config.idle_s:
                self._drop(key)
        followed = {venue for venue, _ in self._views}
        for venue in [v for v in self._venues if v not in followed]:
            del self._venues[venue]
            self._failing = {f for f in self._failing if f[1] != venue}
            if self.fills is not None:
                self.fills.unfollow(venue)
            self._count()
        dues = [v.touched + self.config.idle_s for key, v in self._views.items() if key not in self._kept]
        for view in (*self._venues.values(), *self._views.values()):
            if view.ready is None or not view.ready.done():
                continue  # its ready's callback wakes the loop
            dues.extend(self._refresh_view(view, now))
        return min(dues, default=None)

    def _refresh_view(self, view: _View, now: float) -> list[float]:
        """The view's parts due by `now` fetched; when each is due next. A part being fetched,
        or the books while the subscription holds them, is looked at again an interval on (the
        fetch's end sets its time later still)."""
        dues = []
        for part in view.parts:
            interval = self._intervals[part]
            due = view.fetched.get(part, 0.0) + interval
            if part in view.fetching or (part == "books" and self.tops.holds(view.venue)):
                dues.append(now + interval)
                continue  # the book subscription has the latest tops: no look needed
            if now >= due:
                task = asyncio.create_task(self._fetch(view, part), name=f"{view.venue}|{view.symbol}|{part}")
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
                due = now + interval
            dues.append(due)
        return dues

    async def _fetch(self, view: _View, part: str) -> None:
        view.fetching.add(part)
        try:
            value = await self._call(part, view.venue, self._get(view, part))
            if value is not None or part not in view.values:
                view.values[part] = value
        finally:
            view.fetched[part] = time.monotonic()
            view.fetching.discard(part)

    def _get(self, view: _View, part: str) -> Awaitable[Any]:
        t, venue, symbol = self.tools, view.venue, view.symbol
        calls: dict[str, Callable[[], Awaitable[Any]]] = {
            "instruments": lambda: self._instruments(venue),
            "bars": lambda: self._bars(view),
            "gaps": lambda: self._open_gaps(venue, symbol),
            "book": lambda: self._book(venue, symbol),
            "books": lambda: self._books(venue),
            "positions": lambda: self._stamped(
                t.positions(venue), lambda a: _by_symbol(a, "positions", _position)
            ),
            "balances": lambda: self._stamped(t.balances(venue), lambda a: _listed(a, "balances", _balance)),
            "orders": lambda: _parsed(t.open_orders(venue), lambda a: _by_symbol(a, "orders", _open_order)),
            "signals": lambda: self._signals(venue, symbol),
            "status": lambda: self._venue_status(venue),
        }
        return calls[part]()

    def _context(self, view: _View, as_of_ns: int | None) -> Context:
        now = self._clock()
        values = view.values
        shared = self._venues.get(view.venue, _NOTHING).values
        symbol = view.symbol
        cfg = self.config
        kept = max(cfg.bars, cfg.regime_bars)
        candles, gaps = closed_by(values.get("bars") or ((), ()), as_of_ns, kept, cfg.bars)
        latest: BookTop | None = values.get("book")
        streamed = self.tops.latest(view.venue, symbol)
        if streamed is not None and (latest is None or streamed.ts_event_ns >= latest.ts_event_ns):
            latest = streamed
        last_event = (shared.get("status") or {}).get(symbol)
        if last_event is None and latest is not None and latest.ts_event_ns > 0:
            last_event = latest.ts_event_ns
        book = latest if as_of_ns is None else self._book_at(view, latest, as_of_ns)
        reconnects, resyncs = self._counters.get(view.venue, _Counters()).increase(symbol)
        instruments: _Instruments | None = shared.get("instruments")
        read_balances: tuple[int, tuple[Balance, ...]] = shared.get("balances") or (0, ())
        read_positions: tuple[int, dict[str, tuple[Position, ...]]] = shared.get("positions") or (0, {})
        balances, positions = read_balances[1], read_positions[1]
        if as_of_ns is not None and self.fills is not None and instruments is not None:
            balances, positions = self._account_at(
                view.venue, instruments, read_balances, read_positions, as_of_ns
            )
        return Context(
            venue=view.venue,
            symbol=symbol,
            gathered_ns=now,
            instrument=None if instruments is None else instruments.get(symbol),
            price=candles[-1].close if candles else None,
            book=book,
            bars=candles,
            positions=positions.get(symbol, ()),
            balances=balances,
            open_orders=(shared.get("orders") or {}).get(symbol, ()),
            recent_signals=values.get("signals") or (),
            last_event_ns=last_event,
            gaps=(*(values.get("gaps") or ()), *gaps),
            reconnects=reconnects,
            resyncs=resyncs,
        )

    def _book_at(self, view: _View, latest: BookTop | None, as_of_ns: int) -> BookTop | None:
        """The market's top as of `as_of_ns`: the last kept by then (or the latest look, when
        it is younger and not after that time); the latest when none is kept by then (counted)."""
        kept = self.tops.at(view.venue, view.symbol, as_of_ns)
        if kept is None:
            AS_OF_LATEST.labels("book").inc()
            return latest
        if latest is not None and kept.ts_event_ns < latest.ts_event_ns <= as_of_ns:
            return latest
        return kept

    def _account_at(
        self,
        venue: str,
        instruments: _Instruments,
        balances: tuple[int, tuple[Balance, ...]],
        positions: tuple[int, dict[str, tuple[Position, ...]]],
        as_of_ns: int,
    ) -> tuple[tuple[Balance, ...], dict[str, tuple[Position, ...]]]:
        """The balances and positions as of `as_of_ns`: each as read, less the fills since (or
        with those up to it, when the read is the older); as read when the fills between are
        not all known (counted)."""
        assert self.fills is not None
        found_balances, found_positions = balances[1], positions[1]
        for read_ns, which in ((balances[0], "balances"), (positions[0], "positions")):
            if read_ns <= 0:
                continue
            sign = -1 if as_of_ns <= read_ns else 1
            fills = self.fills.between(venue, min(as_of_ns, read_ns), max(as_of_ns, read_ns))
            if fills is None:
                AS_OF_LATEST.labels("account").inc()
                return balances[1], positions[1]
            if which == "balances":
                found_balances = moved(found_balances, {}, fills, sign, instruments.get)[0]
            else:
                found_positions = moved((), found_positions, fills, sign, instruments.get)[1]
        return found_balances, found_positions

    # ---- the parts, each through its tool

    async def _stamped(self, call: Awaitable[Json], parse: Callable[[Json], T]) -> tuple[int, T]:
        """An account part with the moment it is as of: the venue's (the answer's `as_of_ns`:
        it holds the fills up to then), else when it came (the wall clock: a fill made between
        the venue's moment and then is taken as held, and a read as of an earlier time is off by
        it; counted)."""
        answer = await call
        as_of_ns = answer.get("as_of_ns")
        if not as_of_ns:
            AS_OF_LATEST.labels("account_time").inc()
        return as_of_ns or self._clock(), parse(answer)

    async def _call(self, part: str, venue: str, call: Awaitable[Any]) -> Any:
        try:
            found = await call
        except (TrademeshError, KeyError, ValueError, TypeError, ArithmeticError) as exc:
            # A tool's failure, or an answer this parser cannot read: the part stays as it was.
            # Said once per part, venue and kind (another venue's answer does not reset it).
            failing = (part, venue, type(exc).__name__)
            if failing not in self._failing:
                self._failing.add(failing)
                log.warning("advisor context: %s of %s: %s", part, venue, exc, extra={"venue": venue})
            return None
        if self._failing:
            self._failing = {f for f in self._failing if f[:2] != (part, venue)}
        return found

    async def _instruments(self, venue: str) -> _Instruments:
        answer = await self.tools.instruments(venue)
        return _Instruments(venue, {raw["symbol"]: raw for raw in answer["instruments"]})

    async def _bars(self, view: _View) -> Bars:
        """The market's bars: the newest behind those kept, or the whole window when due (or the
        newest do not reach the kept: trademesh.core.advisor.bar_window). A few more than the context holds:
        those closed after an older signal's time are cut. Warmed from the venue's candles while
        the recorder holds too few (or cannot answer)."""
        cfg = self.config
        recent, whole = cfg.bars + self._extra_bars, max(cfg.bars, cfg.regime_bars) + self._extra_bars
        kept: Bars | None = view.values.get("bars")
        now = time.monotonic()
        if kept is not None and whole > recent and now - view.whole_bars_at < WHOLE_EVERY_S:
            fetched = await self._recorded(view, recent)
            if fetched is None:
                return await self._warmed(view, kept, whole, failed=True)
            found = spliced(kept, fetched, whole)
            if found is not None:
                return await self._warmed(view, found, whole)
        view.whole_bars_at = now
        recorded = await self._recorded(view, whole)
        if recorded is None:
            return await self._warmed(view, kept or ((), ()), whole, failed=True)
        return await self._warmed(view, recorded, whole)

    async def _recorded(self, view: _View, wanted: int) -> Bars | None:
        """The recorder's newest `wanted` bars; None when it cannot answer and the venue's candles
        can stand in (said once: the database may have no bars table yet, the recorder starting
        beside the advisor at `up`). Without the venue's the failure is the part's."""
        if self.venue_bars is None:
            return await self._latest_bars(view, wanted)
        found: Bars | None = await self._call("bars", view.venue, self._latest_bars(view, wanted))
        return found

    async def _warmed(self, view: _View, recorded: Bars, whole: int, *, failed: bool = False) -> Bars:
        """The recorded bars with the venue's closed candles where they hold none, while the
        recorder holds fewer than the context's bars or cannot answer (`failed`: a market the bars
        service has not backfilled yet: trademesh.core.advisor.venue_bars); as recorded once it
        holds enough."""
        source = self.venue_bars
        if source is None:
            return recorded
        if len(recorded[0]) >= self.config.bars and not failed:
            source.drop(view.venue, view.symbol)
            return recorded
        venue = await source.closed(view.venue, view.symbol, whole, self._clock())
        return filled(venue, recorded[0], whole), recorded[1]

    async def _latest_bars(self, view: _View, wanted: int) -> Bars:
        answer = await self.tools.latest_bars(view.venue, view.symbol, self.config.timeframe, wanted)
        raw_bars = _items(answer, "bars")
        candles = tuple(_candle(self.timeframe, b) for b in raw_bars)
        step = self.timeframe.ns
        gaps = tuple(
            GapMarker(c.open_time_ns, c.open_time_ns + step, 1, True)
            for c, raw in zip(candles, raw_bars, strict=True)
            if raw.get("repaired")
        )
        return candles, gaps

    async def _open_gaps(self, venue: str, symbol: str) -> tuple[GapMarker, ...]:
        """The open gap markers written within the window of the context's bars."""
        timeframe = self.timeframe
        window_start = timeframe.open_time_ns(self._clock()) - self.config.bars * timeframe.ns
        answer = await self.tools.gap_markers(venue, symbol, self.config.timeframe, window_start, _MAX_GAPS)
        return tuple(open_gap(raw, window_start, timeframe) for raw in _items(answer, "gaps") if raw["open"])

    async def _book(self, venue: str, symbol: str) -> BookTop | None:
        return _book(await self.tools.order_book_top(venue, symbol, 1))

    async def _books(self, venue: str) -> dict[str, BookTop | None]:
        """The books of the venue's followed markets from one look, each put in its market's view.
        A book the look does not hold (the bridge has none usable now) stays as it was."""
        symbols = sorted(symbol for v, symbol in self._views if v == venue)
        if not symbols:
            return {}
        answer = await self.tools.order_book_tops(venue, symbols, 1)
        found = {symbol: _book(raw) for symbol, raw in answer["books"].items()}
        for symbol, top in found.items():
            view = self._views.get((venue, symbol))
            if view is not None and top is not None:
                view.values["book"] = top
        return found

    async def _signals(self, venue: str, symbol: str) -> tuple[Signal, ...]:
        answer = await self.tools.recent_signals(None, symbol, _RECENT_SIGNALS)
        found = [s for s in map(_signal, _items(answer, "signals")) if s is not None and s.venue == venue]
        return tuple(reversed(found))

    async def _venue_status(self, venue: str) -> dict[str, int]:
        """The venue time of each symbol's latest event: the answer's time (when it came, the
        moment its ages are as of) less the symbol's youngest stream's age. Absolute times, so
        every market of the venue reads its own age from one answer however late it asks."""
        status = await self.tools.venue_status(venue)
        now = self._clock()
        totals: dict[str, tuple[int, int]] = {}
        youngest: dict[str, int] = {}
        for stream in _items(status, "streams"):
            symbol = stream["symbol"]
            reconnects, resyncs = totals.get(symbol, (0, 0))
            totals[symbol] = (reconnects + int(stream["reconnects"]), resyncs + int(stream["resyncs"]))
            age = stream.get("last_event_age_ms")
            if isinstance(age, int) and age < youngest.get(symbol, age + 1):
                youngest[symbol] = age
        self._counters.setdefault(venue, _Counters()).add(time.monotonic(), totals, self.config.window_s)
        return {symbol: now - age * _NS_PER_MS for symbol, age in youngest.items()}
