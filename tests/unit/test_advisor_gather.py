"""The advisor's context gatherer without a mesh: a stand-in for the market tools answers as they
do (the same JSON) and counts its calls. What is checked: the venue's parts (instruments,
positions, balances, open orders, status) are fetched once per venue and refresh, shared by its
markets and split per symbol where they are the symbol's; each market reads its own last event
age from a shared status answer; the market's own parts are fetched per market."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import AsyncGenerator, AsyncIterator
from decimal import Decimal
from decimal import Decimal as D
from typing import Any, cast

import pytest
from prometheus_client import REGISTRY

from tests.advisor_support import signal
from trademesh.bus.v1 import bus_pb2 as bus_pb
from trademesh.common.v1 import common_pb2 as common
from trademesh.core.advisor.bar_window import WHOLE_EVERY_S
from trademesh.core.advisor.engine.snapshot import snapshot
from trademesh.core.advisor.fills import RecentFills
from trademesh.core.advisor.gather import ContextGatherer
from trademesh.core.advisor.gather_config import GatherConfig
from trademesh.core.advisor.venue_bars import VenueBarHistory
from trademesh.core.domain.model import Timeframe
from trademesh.core.platform.bus.codec import FIELD, wrap_executions
from trademesh.core.platform.errors import NotFound, Unavailable
from trademesh.core.tools.market import MarketTools
from trademesh.core.tools.upstream import Upstream
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

Json = dict[str, Any]
MS = 1_000_000
T0 = 1_767_225_600_000_000_000
BTC, ETH = "BTC/USDT", "ETH/USDT"
LATER_S = 61.0  # past every part's interval (the instruments' 60 s), before the idle 300 s


class Clock:
    """The gatherer's wall clock (ns), moved by the test."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> int:
        return self.now


class Tools:
    """Answers like trademesh.core.tools.market.MarketTools for venues "sim" and "other"; counts each call by
    tool and venue. `ages_ms`: each symbol's streams' last event ages in the status answer."""

    def __init__(self) -> None:
        self.calls: Counter[tuple[str, str]] = Counter()
        self.ages_ms: dict[str, list[int]] = {BTC: [40, 7], ETH: [2500]}
        self.failing: set[str] = set()
        self.book_ts_ns: dict[str, int] = {}
        self.no_book: set[str] = set()  # symbols order_book_tops leaves out
        self.looked: list[list[str]] = []
        self.bars: list[Json] | None = None  # latest_bars' answer (else one bar)
        # The bridge's book events of a venue, pushed by the test (None ends the stream).
        self.book_streams: dict[str, asyncio.Queue[list[md.MarketEvent] | None]] = {}
        self.subscribed: Counter[tuple[str, ...]] = Counter()
        self.bar_limits: list[int] = []
        self.account_as_of_ns: int | None = None  # the venue's time of its account answers

    def _count(self, tool: str, venue: str) -> None:
        self.calls[(tool, venue)] += 1
        if tool in self.failing:
            raise Unavailable(f"{tool} is down")

    async def list_venues(self) -> Json:
        return {"venues": ["other", "sim"]}

    async def instruments(self, venue: str) -> Json:
        self._count("instruments", venue)
        facts = {"quote_asset": "USDT", "tick_size": "0.01", "lot_size": "0.001", "min_size": "0.001"}
        listed = [{"symbol": s, "base_asset": s[:3], **facts} for s in (BTC, ETH, "SOL/USDT")]
        return {"venue": venue, "instruments": listed}

    async def latest_bars(self, venue: str, symbol: str, timeframe: str, limit: int) -> Json:
        self._count("latest_bars", venue)
        self.bar_limits.append(limit)
        if self.bars is not None:
            return {"venue": venue, "symbol": symbol, "timeframe": timeframe, "bars": self.bars[-limit:]}
        bar = {"open_time_ns": T0 - 2000 * MS, "open": "100", "high": "101", "low": "99", "close": "100.5",
               "volume": "3", "quote_volume": "301", "trade_count": 4, "repaired": False}  # fmt: skip
        return {"venue": venue, "symbol": symbol, "timeframe": timeframe, "bars": [bar]}

    async def gap_markers(self, venue: str, symbol: str, timeframe: str, since_ns: int, limit: int) -> Json:
        self._count("gap_markers", venue)
        return {"venue": venue, "symbol": symbol, "timeframe": timeframe, "open": 0, "gaps": []}

    def _top(self, venue: str, symbol: str) -> Json:
        bids, asks = [{"price": "100", "size": "2"}], [{"price": "100.2", "size": "1"}]
        ts = self.book_ts_ns.get(symbol, T0 - 5 * MS)
        return {"venue": venue, "symbol": symbol, "ts_event_ns": ts, "bids": bids, "asks": asks}

    async def order_book_top(self, venue: str, symbol: str, depth: int) -> Json:
        self._count("order_book_top", venue)
        return self._top(venue, symbol)

    async def order_book_tops(self, venue: str, symbols: list[str], depth: int) -> Json:
        self._count("order_book_tops", venue)
        self.looked.append(list(symbols))
        held = [s for s in symbols if s not in self.no_book]
        return {"venue": venue, "books": {s: self._top(venue, s) for s in held}}

    def book_queue(self, venue: str) -> asyncio.Queue[list[md.MarketEvent] | None]:
        return self.book_streams.setdefault(venue, asyncio.Queue())

    async def book_events(self, venue: str, symbols: list[str]) -> AsyncGenerator[list[md.MarketEvent]]:
        self.subscribed[tuple(symbols)] += 1
        queue = self.book_queue(venue)
        while (events := await queue.get()) is not None:
            yield events
            queue.task_done()  # read by the feed
        queue.task_done()

    async def positions(self, venue: str, symbol: str | None = None) -> Json:
        self._count("positions", venue)
        held = [{"symbol": BTC, "size": "0.5", "entry_price": "90", "realized_pnl": "1"},
                {"symbol": ETH, "size": "-2", "entry_price": "3000", "realized_pnl": "0"}]  # fmt: skip
        listed = [p for p in held if symbol in (None, p["symbol"])]
        return {"venue": venue, "positions": listed, "as_of_ns": self.account_as_of_ns}

    async def balances(self, venue: str) -> Json:
        self._count("balances", venue)
        return {
            "venue": venue,
            "balances": [{"asset": "USDT", "free": "1000", "locked": "25", "total": "1025"}],
            "as_of_ns": self.account_as_of_ns,
        }

    async def open_orders(self, venue: str, symbol: str | None = None) -> Json:
        self._count("open_orders", venue)
        each = {"side": "buy", "price": "99", "size": "1", "filled_size": "0.25"}
        orders = [{"order_id": f"o{n}", "symbol": s, **each} for n, s in enumerate((BTC, ETH, ETH))]
        return {"venue": venue, "orders": [o for o in orders if symbol in (None, o["symbol"])]}

    async def recent_signals(self, strategy: str | None, symbol: str | None, limit: int) -> Json:
        self._count("recent_signals", symbol or "")
        return {"signals": []}

    async def venue_status(self, venue: str | None = None) -> Json:
        assert venue is not None
        self._count("venue_status", venue)
        streams = [{"symbol": s, "last_event_age_ms": age, "reconnects": 1, "resyncs": 0}
                   for s, ages in self.ages_ms.items() for age in ages]  # fmt: skip
        return {"venue": venue, "state": "running", "streams": streams}


@pytest.fixture
def tools() -> Tools:
    return Tools()


@pytest.fixture
def clock() -> Clock:
    return Clock()


_MADE: list[ContextGatherer] = []


@pytest.fixture(autouse=True)
async def _close_feeds() -> AsyncIterator[None]:
    """Each gatherer's book subscriptions end with the test."""
    yield
    while _MADE:
        await _MADE.pop().tops.close()


def gatherer(tools: Tools, clock: Clock, regime_bars: int = 0) -> ContextGatherer:
    """10 bars of 1s, and `regime_bars` behind them for the regime (none unless a test is of them)."""
    config = GatherConfig(timeframe="1s", bars=10, regime_bars=regime_bars)
    made = ContextGatherer(cast(MarketTools, tools), config, clock)
    _MADE.append(made)
    return made


async def refresh(gathering: ContextGatherer, after_s: float = LATER_S) -> None:
    """One refresh of every part that is due `after_s` from now, awaited."""
    gathering._refresh_due(time.monotonic() + after_s)
    await asyncio.gather(*gathering._tasks)


VENUE_TOOLS = ("instruments", "positions", "balances", "open_orders", "venue_status")
MARKET_TOOLS = ("latest_bars", "gap_markers")


async def test_two_markets_of_a_venue_share_one_fetch_of_the_venues_parts(tools: Tools, clock: Clock) -> None:
    gathering = gatherer(tools, clock)
    await asyncio.gather(gathering.gather("sim", BTC), gathering.gather("sim", ETH))
    first = {tool: tools.calls[(tool, "sim")] for tool in (*VENUE_TOOLS, *MARKET_TOOLS)}
    assert first == {**dict.fromkeys(VENUE_TOOLS, 1), **dict.fromkeys(MARKET_TOOLS, 2)}
    assert (tools.calls[("order_book_top", "sim")], tools.calls[("order_book_tops", "sim")]) == (2, 0)
    tools.calls.clear()
    await refresh(gathering)
    again = {tool: tools.calls[(tool, "sim")] for tool in (*VENUE_TOOLS, *MARKET_TOOLS)}
    assert again == {**dict.fromkeys(VENUE_TOOLS, 1), **dict.fromkeys(MARKET_TOOLS, 2)}
    assert (tools.calls[("recent_signals", BTC)], tools.calls[("recent_signals", ETH)]) == (1, 1)
    # The books: one look at both, no single-book call.
    assert (tools.calls[("order_book_top", "sim")], tools.calls[("order_book_tops", "sim")]) == (0, 1)
    assert tools.looked == [[BTC, ETH]]


async def test_the_venues_look_gives_each_market_its_own_book_and_event_time(
    tools: Tools, clock: Clock
) -> None:
    gathering = gatherer(tools, clock)
    await asyncio.gather(gathering.gather("sim", BTC), gathering.gather("sim", ETH))
    tools.book_ts_ns = {BTC: T0 + 100 * MS, ETH: T0 + 250 * MS}
    tools.ages_ms = {}  # the status says nothing: the last event time is the book's
    await refresh(gathering)
    btc, eth = await gathering.gather("sim", BTC), await gathering.gather("sim", ETH)
    assert btc.book is not None and btc.book.ts_event_ns == T0 + 100 * MS == btc.last_event_ns
    assert eth.book is not None and eth.book.ts_event_ns == T0 + 250 * MS == eth.last_event_ns

    tools.no_book = {ETH}  # the bridge lost ETH's book: ETH keeps the last it had
    tools.book_ts_ns = {BTC: T0 + 1300 * MS, ETH: T0 + 1400 * MS}
    await refresh(gathering)
    btc, eth = await gathering.gather("sim", BTC), await gathering.gather("sim", ETH)
    assert btc.book is not None and btc.book.ts_event_ns == T0 + 1300 * MS
    assert eth.book is not None and eth.book.ts_event_ns == T0 + 250 * MS


async def test_a_market_joining_a_followed_venue_fetches_only_its_own_parts(
    tools: Tools, clock: Clock
) -> None:
    gathering = gatherer(tools, clock)
    await gathering.gather("sim", BTC)
    tools.calls.clear()
    context = await gathering.gather("sim", ETH)
    assert all(tools.calls[(tool, "sim")] == 0 for tool in VENUE_TOOLS)
    assert all(tools.calls[(tool, "sim")] == 1 for tool in (*MARKET_TOOLS, "order_book_top"))
    assert context.instrument is not None and context.instrument.symbol == ETH
    assert context.balances[0].total == Decimal("1025")


async def test_each_market_reads_its_own_age_from_the_shared_status_answer(
    tools: Tools, clock: Clock
) -> None:
    gathering = gatherer(tools, clock)
    await asyncio.gather(gathering.gather("sim", BTC), gathering.gather("sim", ETH))
    answered = clock.now
    clock.now += 300 * MS  # the decisions come later than the status answer
    btc, eth = await gathering.gather("sim", BTC), await gathering.gather("sim", ETH)
    assert btc.last_event_ns == answered - 7 * MS  # the symbol's youngest stream
    assert eth.last_event_ns == answered - 2500 * MS
    assert snapshot(signal(symbol=BTC), btc, clock.now).last_event_age_ns == 307 * MS
    assert snapshot(signal(symbol=ETH), eth, clock.now).last_event_age_ns == 2800 * MS
    assert (btc.reconnects, eth.reconnects) == (0, 0)  # no increase yet: one sample

    tools.ages_ms = {BTC: [1], ETH: [10]}
    clock.now += 700 * MS
    await refresh(gathering)
    btc, eth = await gathering.gather("sim", BTC), await gathering.gather("sim", ETH)
    assert (btc.last_event_ns, eth.last_event_ns) == (clock.now - 1 * MS, clock.now - 10 * MS)


async def test_a_symbol_the_status_does_not_list_takes_its_books_event_time(
    tools: Tools, clock: Clock
) -> None:
    tools.ages_ms = {ETH: [3]}
    context = await gatherer(tools, clock).gather("sim", BTC)
    assert context.book is not None and context.last_event_ns == context.book.ts_event_ns == T0 - 5 * MS


async def test_positions_and_open_orders_are_split_per_symbol(tools: Tools, clock: Clock) -> None:
    gathering = gatherer(tools, clock)
    btc, eth = await asyncio.gather(gathering.gather("sim", BTC), gathering.gather("sim", ETH))
    assert [(p.symbol, p.size) for p in btc.positions] == [(BTC, Decimal("0.5"))]
    assert [(p.symbol, p.size) for p in eth.positions] == [(ETH, Decimal("-2"))]
    assert [o.order_id for o in btc.open_orders] == ["o0"]
    assert [(o.order_id, o.remaining) for o in eth.open_orders] == [
        ("o1", Decimal("0.75")),
        ("o2", Decimal("0.75")),
    ]
    assert btc.position_size() == Decimal("0.5") and eth.position_size() == Decimal("-2")


async def test_venues_are_fetched_apart(tools: Tools, clock: Clock) -> None:
    gathering = gatherer(tools, clock)
    await asyncio.gather(gathering.gather("sim", BTC), gathering.gather("other", BTC))
    assert (tools.calls[("balances", "sim")], tools.calls[("balances", "other")]) == (1, 1)
    assert (tools.calls[("venue_status", "sim")], tools.calls[("venue_status", "other")]) == (1, 1)


async def test_a_failing_venue_part_keeps_its_last_value_for_every_market(tools: Tools, clock: Clock) -> None:
    gathering = gatherer(tools, clock)
    await asyncio.gather(gathering.gather("sim", BTC), gathering.gather("sim", ETH))
    tools.failing = {"balances", "venue_status"}
    clock.now += 1000 * MS
    await refresh(gathering)
    btc, eth = await gathering.gather("sim", BTC), await gathering.gather("sim", ETH)
    assert btc.balances == eth.balances and btc.balances[0].free == Decimal("1000")
    assert btc.last_event_ns == T0 - 7 * MS  # the last answer's time, not the failed refresh's


async def test_a_venue_is_no_longer_fetched_once_none_of_its_markets_is_followed(
    tools: Tools, clock: Clock
) -> None:
    gathering = gatherer(tools, clock)
    await gathering.gather("sim", BTC)
    tools.calls.clear()
    await refresh(gathering, after_s=gathering.config.idle_s + 1)
    assert sum(tools.calls.values()) == 0
    context = await gathering.gather("sim", BTC)  # followed again: every part fetched again
    assert tools.calls[("balances", "sim")] == 1 and context.balances


def _bar(open_ns: int, close: str, repaired: bool = False) -> Json:
    return {"open_time_ns": open_ns, "open": close, "high": close, "low": close, "close": close,
            "volume": "1", "quote_volume": close, "trade_count": 1, "repaired": repaired}  # fmt: skip


async def test_the_bars_are_those_closed_by_the_signals_event_time(tools: Tools, clock: Clock) -> None:
    """A signal 1.5 s old is decided on the bars closed before its time (a bar closing at it
    left out: a backtest steps the tick at T before T's bars), its last close the price; a
    repaired bar cut off takes its gap with it. More bars are asked for than the context
    holds, so a late signal still has its full window."""
    tools.bars = [_bar(T0 - (13 - n) * 1000 * MS, str(100 + n), repaired=n == 12) for n in range(13)]
    gathering = gatherer(tools, clock)  # 10 bars of 1s, 5 s of history kept
    context = await gathering.gather("sim", BTC, T0 - 1500 * MS)
    assert tools.bar_limits == [10 + 5 + 1]
    assert [c.close for c in context.bars] == [Decimal(100 + n) for n in range(1, 11)]
    assert context.bars[-1].open_time_ns + 1000 * MS <= T0 - 1500 * MS
    assert context.price == Decimal(110) and not context.gaps
    at_close = await gathering.gather("sim", BTC, T0 - 2000 * MS)  # the bar closing then is out
    assert at_close.price == Decimal(109) and len(at_close.bars) == 10
    latest = await gathering.gather("sim", BTC)  # no time: the latest, the repaired bar's gap in
    assert latest.price == Decimal(112) and len(latest.bars) == 10
    assert [(g.start_ns, g.repaired) for g in latest.gaps] == [(T0 - 1000 * MS, True)]


async def test_the_regimes_bars_are_kept_behind_the_newest_which_alone_a_refresh_reads(
    tools: Tools, clock: Clock
) -> None:
    """The context holds the regime's window (here 30 bars) behind its 10; a refresh reads the
    newest 10 (and the 6 for signals as of 5 s ago) and keeps the older bars as they were, the
    same objects (the regime reader sees them unchanged); the quality gate counts the repaired
    bars of the newest 10 only."""
    tools.bars = [_bar(T0 - (40 - n) * 1000 * MS, str(100 + n), repaired=n == 5) for n in range(40)]
    gathering = gatherer(tools, clock, regime_bars=30)
    first = await gathering.gather("sim", BTC)
    assert tools.bar_limits == [30 + 5 + 1]
    assert [c.close for c in first.bars] == [Decimal(100 + n) for n in range(10, 40)] and not first.gaps
    tools.bars.append(_bar(T0, "140", repaired=True))
    await refresh(gathering)
    second = await gathering.gather("sim", BTC)
    assert tools.bar_limits == [36, 10 + 5 + 1]
    assert [c.close for c in second.bars] == [Decimal(100 + n) for n in range(11, 41)]
    assert all(a is b for a, b in zip(second.bars[:14], first.bars[1:15], strict=True))
    assert [(g.start_ns, g.repaired) for g in second.gaps] == [(T0, True)]


async def test_the_regimes_window_is_read_whole_again_when_due_or_when_the_newest_miss_some(
    tools: Tools, clock: Clock
) -> None:
    tools.bars = [_bar(T0 - (40 - n) * 1000 * MS, str(100 + n)) for n in range(40)]
    gathering = gatherer(tools, clock, regime_bars=30)
    await gathering.gather("sim", BTC)
    # An older bar repaired from the venue's candles: the next whole read (every 5 min) has it.
    tools.bars[20] = _bar(T0 - 20_000 * MS, "99", repaired=True)
    gathering._views[("sim", BTC)].whole_bars_at -= WHOLE_EVERY_S
    await refresh(gathering)
    assert tools.bar_limits == [36, 36]
    assert (await gathering.gather("sim", BTC)).bars[10].close == Decimal(99)
    # More new bars than the newest 16 reach: bars may be missing between, read it whole.
    tools.bars += [_bar(T0 + n * 1000 * MS, str(200 + n)) for n in range(20)]
    await refresh(gathering)
    assert tools.bar_limits == [36, 36, 16, 36]
    context = await gathering.gather("sim", BTC)
    assert [c.close for c in context.bars] == [Decimal(d["close"]) for d in tools.bars[-30:]]


async def test_a_signal_older_than_the_history_is_decided_on_the_latest_and_counted(
    tools: Tools, clock: Clock
) -> None:
    tools.bars = [_bar(T0 - (13 - n) * 1000 * MS, str(100 + n)) for n in range(13)]
    gathering = gatherer(tools, clock)
    before = _latest_count("old")
    context = await gathering.gather("sim", BTC, T0 - 6000 * MS)
    assert context.price == Decimal(112) and _latest_count("old") == before + 1


def _latest_count(why: str) -> float:
    return REGISTRY.get_sample_value("trademesh_advisor_as_of_latest_total", {"why": why}) or 0.0


def _levels(*levels: tuple[str, str]) -> list[md.BookLevel]:
    return [md.BookLevel(price=price, size=size) for price, size in levels]


def _snapshot(
    ts_ns: int, bids: list[tuple[str, str]], asks: list[tuple[str, str]], symbol: str = BTC
) -> md.MarketEvent:
    book = md.BookSnapshot(sequence=1, bids=_levels(*bids), asks=_levels(*asks))
    return md.MarketEvent(venue="sim", symbol=symbol, ts_event_ns=ts_ns, book_snapshot=book)


def _delta(ts_ns: int, bids: list[tuple[str, str]], asks: list[tuple[str, str]]) -> md.MarketEvent:
    book = md.BookDelta(sequence=2, bids=_levels(*bids), asks=_levels(*asks))
    return md.MarketEvent(venue="sim", symbol=BTC, ts_event_ns=ts_ns, book_delta=book)


async def _push(tools: Tools, events: list[md.MarketEvent] | None) -> None:
    """The bridge sends `events` (None: it ends the stream); the feed has read them on return."""
    queue = tools.book_queue("sim")
    await queue.put(events)
    await queue.join()


def _top(context: Any) -> tuple[Decimal, Decimal, Decimal, Decimal, int]:
    book = context.book
    return book.bid, book.bid_size, book.ask, book.ask_size, book.ts_event_ns


async def test_the_book_is_the_top_as_of_the_signals_event_time(tools: Tools, clock: Clock) -> None:
    """The followed market's book events are kept as tops by event time: a signal reads the last
    top at or before its time (a delta that moves neither best adds none); one before the first
    kept top reads the latest look and is counted."""
    tools.book_ts_ns[BTC] = T0 - 3000 * MS  # the latest look: the snapshot's top
    gathering = gatherer(tools, clock)
    first = await gathering.gather("sim", BTC, T0 - 2500 * MS)  # followed now: nothing kept yet
    assert first.book is not None and first.book.ts_event_ns == T0 - 3000 * MS
    before = _latest_count("book")
    await _push(
        tools, [_snapshot(T0 - 3000 * MS, [("100", "2"), ("99.9", "1")], [("100.2", "1"), ("100.3", "4")])]
    )
    await _push(
        tools, [_delta(T0 - 2000 * MS, [("100.1", "0.5")], []), _delta(T0 - 1900 * MS, [("99.8", "3")], [])]
    )
    await _push(tools, [_delta(T0 - 500 * MS, [], [("100.2", "0")])])
    at = {ms: _top(await gathering.gather("sim", BTC, T0 - ms * MS)) for ms in (3000, 2001, 1500, 500, 0)}
    assert at[3000] == at[2001] == (D("100"), D("2"), D("100.2"), D("1"), T0 - 3000 * MS)
    assert at[1500] == (D("100.1"), D("0.5"), D("100.2"), D("1"), T0 - 2000 * MS)
    assert at[500] == at[0] == (D("100.1"), D("0.5"), D("100.3"), D("4"), T0 - 500 * MS)
    assert _latest_count("book") == before
    await gathering.gather("sim", BTC, T0 - 3500 * MS)  # before the first kept top
    assert _latest_count("book") == before + 1
    assert tools.subscribed == Counter({(BTC,): 1})


async def test_a_latest_look_younger_than_the_kept_top_and_by_the_signals_time_is_taken(
    tools: Tools, clock: Clock
) -> None:
    """Both are the bridge's book: the younger of them at or before the signal's time is the
    book as of then."""
    tools.book_ts_ns[BTC] = T0 - 1000 * MS
    gathering = gatherer(tools, clock)
    await gathering.gather("sim", BTC, T0)
    await _push(tools, [_snapshot(T0 - 3000 * MS, [("99", "2")], [("100.2", "1")])])
    assert _top(await gathering.gather("sim", BTC, T0 - 500 * MS))[0] == D("100")  # the look's
    assert _top(await gathering.gather("sim", BTC, T0 - 1500 * MS))[0] == D("99")  # the kept one


async def test_a_gap_or_an_ended_stream_forgets_the_tops_until_the_next_snapshot(
    tools: Tools, clock: Clock
) -> None:
    tools.book_ts_ns[BTC] = T0 - 3000 * MS  # the latest look's top: older than what is pushed
    gathering = gatherer(tools, clock)
    await gathering.gather("sim", BTC, T0)
    await _push(tools, [_snapshot(T0 - 3000 * MS, [("100", "2")], [("100.2", "1")])])
    gap = md.StreamNotice(kind=md.NOTICE_KIND_GAP, channel=md.CHANNEL_BOOK, since_ns=T0 - 2000 * MS)
    await _push(tools, [md.MarketEvent(venue="sim", symbol=BTC, ts_event_ns=T0, notice=gap)])
    await _push(tools, [_delta(T0 - 1000 * MS, [("100.1", "1")], [])])  # not applied: no book
    before = _latest_count("book")
    assert (await gathering.gather("sim", BTC, T0 - 500 * MS)).book == tools_latest(tools)
    assert _latest_count("book") == before + 1
    await _push(tools, [_snapshot(T0 - 400 * MS, [("100.1", "1")], [("100.2", "1")])])
    assert _top(await gathering.gather("sim", BTC, T0))[0] == D("100.1")
    await _push(tools, None)  # the bridge ends the stream: forgotten, subscribed again
    assert (await gathering.gather("sim", BTC, T0)).book == tools_latest(tools)
    await until_true(lambda: tools.subscribed[(BTC,)] == 2)
    await _push(tools, [_snapshot(T0 - 300 * MS, [("100.1", "1")], [("100.15", "2")])])
    assert _top(await gathering.gather("sim", BTC, T0))[2] == D("100.15")


async def test_a_second_market_of_the_venue_joins_its_subscription_and_the_first_keeps_its_tops(
    tools: Tools, clock: Clock
) -> None:
    tools.book_ts_ns[BTC] = tools.book_ts_ns[ETH] = T0 - 9000 * MS  # the latest looks: old
    gathering = gatherer(tools, clock)
    await gathering.gather("sim", BTC, T0)
    await _push(tools, [_snapshot(T0 - 3000 * MS, [("100", "2")], [("100.2", "1")])])
    await gathering.gather("sim", ETH, T0)
    await until_true(lambda: tools.subscribed[(BTC, ETH)] == 1)
    assert tools.subscribed == Counter({(BTC,): 1, (BTC, ETH): 1})
    await _push(tools, [_snapshot(T0 - 1000 * MS, [("100.1", "2")], [("100.2", "1")]),
                        _snapshot(T0 - 1000 * MS, [("3000", "1")], [("3001", "1")], ETH)])  # fmt: skip
    assert _top(await gathering.gather("sim", BTC, T0 - 2000 * MS))[0] == D("100")  # kept through
    assert _top(await gathering.gather("sim", BTC, T0))[0] == D("100.1")
    assert _top(await gathering.gather("sim", ETH, T0))[0] == D("3000")


async def test_no_look_at_the_books_while_the_subscription_holds_each_markets_top(
    tools: Tools, clock: Clock
) -> None:
    """The latest top is the subscription's newest then (a context without a time reads it);
    once it holds none (the stream ended) the looks come back."""
    tools.book_ts_ns[BTC] = T0 - 9000 * MS
    gathering = gatherer(tools, clock)
    await gathering.gather("sim", BTC)
    await _push(tools, [_snapshot(T0 - 1000 * MS, [("100.1", "2")], [("100.2", "1")])])
    tools.calls.clear()
    await refresh(gathering)
    assert tools.calls[("order_book_tops", "sim")] == 0
    assert _top(await gathering.gather("sim", BTC))[0] == D("100.1")
    await _push(tools, None)
    await refresh(gathering)
    assert tools.calls[("order_book_tops", "sim")] == 1


async def test_a_market_no_longer_followed_ends_its_book_subscription(tools: Tools, clock: Clock) -> None:
    gathering = gatherer(tools, clock)
    await gathering.gather("sim", BTC, T0)
    assert gathering.tops.following() == [("sim", BTC)]
    await refresh(gathering, after_s=gathering.config.idle_s + 1)
    assert gathering.tops.following() == []


def tools_latest(tools: Tools) -> Any:
    """The top of the stand-in's latest look (trademesh.core.advisor.gather's parse of it)."""
    from trademesh.core.advisor.gather import _book

    return _book(tools._top("sim", BTC))


async def until_true(done: Any, within_s: float = 3.0) -> None:
    deadline = time.monotonic() + within_s
    while not done():
        assert time.monotonic() < deadline, "not within the time"
        await asyncio.sleep(0.02)


class Stream:
    """Redis's executions stream as RecentFills reads it (XREVRANGE for its end, XREAD on)."""

    def __init__(self) -> None:
        self.entries: list[tuple[bytes, dict[bytes, bytes]]] = []

    def add(self, *executions: tf.Execution, gap: bool = False) -> None:
        batch = bus_pb.Executions(executions=executions, gap=gap, venue="sim")
        data = wrap_executions("sim", batch.SerializeToString())
        self.entries.append((f"{len(self.entries) + 1}-0".encode(), {FIELD: data}))

    async def xrevrange(
        self, stream: str, max: str = "+", min: str = "-", count: int | None = None
    ) -> list[tuple[bytes, dict[bytes, bytes]]]:
        return self.entries[-1:]

    async def xread(self, cursors: dict[str, str], count: int, block: int) -> list[Any]:
        ((stream, after),) = cursors.items()
        newer = [e for e in self.entries if int(e[0].split(b"-")[0]) > int(after.split("-")[0])]
        if not newer:
            await asyncio.sleep(block / 1000)
        return [(stream.encode(), newer)] if newer else []


def _fill(ts_ns: int, side: common.Side.ValueType, size: str, price: str, fee: str) -> tf.Execution:
    fill = tf.Fill(fill_id=f"f{ts_ns}", symbol=BTC, side=side, price=price, size=size, fee=fee,
                   fee_asset="USDT", ts_event_ns=ts_ns)  # fmt: skip
    return tf.Execution(venue="sim", ts_event_ns=ts_ns, fill=fill)


@contextlib.asynccontextmanager
async def _reading_fills(
    tools: Tools, clock: Clock
) -> AsyncIterator[tuple[Stream, ContextGatherer, RecentFills]]:
    """A gatherer whose fills are read off a stand-in executions stream (5 s kept), while the block runs."""
    stream = Stream()
    gathering = gatherer(tools, clock)
    fills = gathering.fills = RecentFills(cast(Any, stream), 5000 * MS, clock)
    stop = asyncio.Event()
    reading = asyncio.create_task(fills.run(stop))
    try:
        yield stream, gathering, fills
    finally:
        stop.set()
        await reading


async def test_the_account_is_as_of_the_signals_event_time(tools: Tools, clock: Clock) -> None:
    """Balances and positions as read (at T0) less the fills since the signal's time, or with
    those up to it when the signal is the younger; a fill before the venue was followed is not
    known, so a signal before then is decided on the account as read (counted)."""
    async with _reading_fills(tools, clock) as (stream, gathering, fills):
        clock.now = T0 - 4000 * MS  # followed from here on
        first = await gathering.gather("sim", BTC, T0 - 4000 * MS)
        await until_true(lambda: fills.between("sim", T0 - 3000 * MS, T0) == [])
        # Read at T0 - 4 s (the balances' answer came then): 1000 free, 25 locked; BTC 0.5.
        assert first.quote_equity() == Decimal(1025) and first.position_size() == Decimal("0.5")
        stream.add(_fill(T0 - 3000 * MS, common.SIDE_BUY, "0.1", "100", "0.01"))
        stream.add(_fill(T0 - 1000 * MS, common.SIDE_SELL, "0.2", "101", "0.02"))
        await until_true(lambda: len(fills.between("sim", T0 - 4000 * MS, T0) or ()) == 2)
        clock.now = T0
        await refresh(gathering)  # balances and positions read again at T0: the fills in
        at = {ms: await gathering.gather("sim", BTC, T0 - ms * MS) for ms in (0, 2000, 3500)}
        # At T0 as read; 2 s before, without the sell (+0.2 BTC, -20.2 USDT, +0.02 fee back).
        assert at[0].quote_equity() == Decimal(1025) and at[0].position_size() == Decimal("0.5")
        assert at[2000].quote_equity() == Decimal(1025) - Decimal("20.2") + Decimal("0.02")
        assert at[2000].position_size() == Decimal("0.7")
        # 3.5 s before: without the buy too (-0.1 BTC, +10 USDT, +0.01).
        assert at[3500].quote_equity() == Decimal(1025) - Decimal("20.2") + Decimal("0.02") + Decimal("10.01")
        assert at[3500].position_size() == Decimal("0.6")
        btc = {b.asset: b.total for b in at[3500].balances}.get("BTC")
        assert btc == Decimal("0.1")  # the stand-in holds no BTC balance: the change shows (+0.2 - 0.1)
        before = _latest_count("account")
        early = await gathering.gather("sim", BTC, T0 - 4500 * MS)  # before the venue was followed
        assert early.quote_equity() == Decimal(1025) and _latest_count("account") == before + 1


async def test_an_account_answer_is_placed_among_the_fills_by_the_venues_time(
    tools: Tools, clock: Clock
) -> None:
    """The venue's time on its account answer (`as_of_ns`) is the moment it holds the fills up
    to, not when it came: a fill made after that moment and before it came is not taken back
    from it (as of an earlier time), and is added to it (as of a later time)."""
    async with _reading_fills(tools, clock) as (stream, gathering, fills):
        clock.now = T0 - 4000 * MS
        await gathering.gather("sim", BTC, T0 - 4000 * MS)
        await until_true(lambda: fills.between("sim", T0 - 3000 * MS, T0) == [])
        stream.add(_fill(T0 - 1000 * MS, common.SIDE_BUY, "0.1", "100", "0.01"))
        await until_true(lambda: len(fills.between("sim", T0 - 4000 * MS, T0) or ()) == 1)
        # The answers come at T0 and are as of T0 - 1.5 s at the venue: they hold no fill.
        tools.account_as_of_ns, clock.now = T0 - 1500 * MS, T0
        before = _latest_count("account_time")
        await refresh(gathering)
        assert _latest_count("account_time") == before, "the venue's time is had: nothing counted"
        earlier = await gathering.gather("sim", BTC, T0 - 2000 * MS)
        assert earlier.quote_equity() == Decimal(1025) and earlier.position_size() == Decimal("0.5")
        now = await gathering.gather("sim", BTC, T0)  # the buy added: -10.01 USDT, +0.1 BTC
        assert now.quote_equity() == Decimal(1025) - Decimal("10.01") and now.position_size() == Decimal(
            "0.6"
        )
        # Without the venue's time the answers are as of when they came (T0), the buy taken back.
        tools.account_as_of_ns = None
        await refresh(gathering)
        assert _latest_count("account_time") == before + 2, "balances and positions stamped on arrival"
        taken_back = await gathering.gather("sim", BTC, T0 - 2000 * MS)
        assert taken_back.quote_equity() == Decimal(1025) + Decimal("10.01")


async def test_a_gap_on_the_executions_stream_forgets_the_fills_before_it(tools: Tools, clock: Clock) -> None:
    async with _reading_fills(tools, clock) as (stream, gathering, fills):
        clock.now = T0 - 4000 * MS
        await gathering.gather("sim", BTC, T0 - 4000 * MS)
        await until_true(lambda: fills.between("sim", T0 - 4000 * MS, T0) == [])
        stream.add(_fill(T0 - 3000 * MS, common.SIDE_BUY, "0.1", "100", "0"))
        clock.now = T0 - 2000 * MS
        stream.add(gap=True)
        await until_true(lambda: fills.between("sim", T0 - 4000 * MS, T0) is None)
        assert fills.between("sim", T0 - 2000 * MS, T0) == []


async def test_without_a_history_every_signal_is_decided_on_the_latest(tools: Tools, clock: Clock) -> None:
    """history_ms 0 (`--history-ms 0`): no book subscription, the bars up to the latest, nothing
    counted."""
    tools.bars = [_bar(T0 - (13 - n) * 1000 * MS, str(100 + n)) for n in range(13)]
    config = GatherConfig(timeframe="1s", bars=10, history_ms=0, regime_bars=0)
    gathering = ContextGatherer(cast(MarketTools, tools), config, clock)
    _MADE.append(gathering)
    before = {why: _latest_count(why) for why in ("old", "book", "account")}
    context = await gathering.gather("sim", BTC, T0 - 1500 * MS)
    assert context.price == Decimal(112) and tools.bar_limits == [10 + 1]
    assert gathering.tops.following() == [] and not tools.subscribed
    assert {why: _latest_count(why) for why in before} == before


async def test_a_kept_market_is_followed_before_its_first_signal_which_reads_its_book_then(
    tools: Tools, clock: Clock
) -> None:
    """A market an active patch trades is followed from when it is kept: its book's tops are
    kept by event time before any signal, so its first signal reads the top as of its time
    (not the latest look, not counted)."""
    tools.book_ts_ns[BTC] = T0 - 9000 * MS  # the latest look: old
    gathering = gatherer(tools, clock)
    gathering.keep({("sim", BTC)})
    assert gathering.tops.following() == [("sim", BTC)]
    await until_true(lambda: tools.subscribed[(BTC,)] == 1)
    await _push(tools, [_snapshot(T0 - 3000 * MS, [("100", "2")], [("100.2", "1")])])
    await _push(tools, [_delta(T0 - 1000 * MS, [("100.1", "1")], [])])
    before = _latest_count("book")
    first = await gathering.gather("sim", BTC, T0 - 2000 * MS)  # its first signal
    assert _top(first)[0] == D("100") and _latest_count("book") == before
    assert tools.calls[("balances", "sim")] == 1  # the venue's parts fetched when kept, not again


async def test_a_kept_market_is_not_dropped_for_idleness_until_it_is_no_longer_kept(
    tools: Tools, clock: Clock
) -> None:
    gathering = gatherer(tools, clock)
    gathering.keep({("sim", BTC), ("sim", ETH)})
    await gathering.gather("sim", BTC)
    await refresh(gathering, after_s=gathering.config.idle_s + 1)
    assert gathering.tops.following() == [("sim", BTC), ("sim", ETH)]
    gathering.keep({("sim", ETH)})  # BTC's patch ended: idle from now on
    await refresh(gathering, after_s=gathering.config.idle_s - 1)
    assert gathering.tops.following() == [("sim", BTC), ("sim", ETH)]
    await refresh(gathering, after_s=gathering.config.idle_s + 1)
    assert gathering.tops.following() == [("sim", ETH)]


def _followed() -> float:
    return REGISTRY.get_sample_value("trademesh_advisor_followed_markets") or 0.0


async def test_the_refresh_loop_wakes_for_a_market_followed_later_and_refreshes_its_parts_when_due(
    tools: Tools, clock: Clock
) -> None:
    """The loop sleeps until a part is due (no tick): asleep with nothing followed, a market
    followed then is refreshed at its parts' intervals, never sooner, and a stop ends it at once."""
    config = GatherConfig(timeframe="1s", bars=10, regime_bars=0, status_ms=100)
    gathering = ContextGatherer(cast(MarketTools, tools), config, clock)
    _MADE.append(gathering)
    stop = asyncio.Event()
    loop = asyncio.create_task(gathering.follow(stop))
    for _ in range(3):
        await asyncio.sleep(0)  # the loop runs to its wait, nothing followed
    await gathering.gather("sim", BTC)
    fetched, started = tools.calls[("venue_status", "sim")], time.monotonic()
    await until_true(lambda: tools.calls[("venue_status", "sim")] >= fetched + 3, within_s=10.0)
    refreshed, elapsed = tools.calls[("venue_status", "sim")] - fetched, time.monotonic() - started
    assert 3 <= refreshed <= elapsed / 0.1 + 1
    assert tools.calls[("instruments", "sim")] == 1  # a minute's interval: not again
    stop.set()
    await asyncio.wait_for(loop, 1.0)


async def test_a_venue_nobody_serves_is_not_found_and_nothing_of_it_is_followed(
    tools: Tools, clock: Clock
) -> None:
    gathering = gatherer(tools, clock)
    for n in range(20):
        with pytest.raises(NotFound, match=f"no venue 'nope-{n}'"):
            await gathering.gather(f"nope-{n}", BTC)
    assert not [key for key in tools.calls if key[1].startswith("nope")], "a part of it was fetched"
    assert gathering.tops.following() == [] and gathering._views == {}


async def test_past_the_bound_the_market_without_a_signal_for_the_longest_is_dropped(
    tools: Tools, clock: Clock
) -> None:
    made = ContextGatherer(
        cast(MarketTools, tools), GatherConfig(timeframe="1s", bars=10, most_markets=2), clock
    )
    _MADE.append(made)
    await made.gather("sim", BTC)
    await made.gather("sim", ETH)
    await made.gather("sim", BTC)  # asked again: ETH is the idle one now
    await made.gather("sim", "SOL/USDT")
    assert made.tops.following() == [("sim", BTC), ("sim", "SOL/USDT")] and _followed() == 2
    made.keep([("sim", ETH)])  # a kept market (an active patch's) is followed beyond the bound
    assert made.tops.following() == [("sim", BTC), ("sim", ETH), ("sim", "SOL/USDT")]
    await made.gather("other", BTC)
    assert ("sim", ETH) in made.tops.following() and len(made.tops.following()) == 3


class VenueCandles:
    """Answers MarketData GetCandles as a venue does (trademesh.core.tools.upstream.Upstream's
    `unary`): its closed candles of 1s from `start_ns`, at most `limit`; records each ask."""

    def __init__(self, closes: list[str]) -> None:
        self.candles = [_venue_candle(T0 - (len(closes) - n) * 1000 * MS, c) for n, c in enumerate(closes)]
        self.asked: list[int] = []
        self.down = False

    async def unary(self, service: str, target: str, method: str, request: Any, answer: Any, **_: Any) -> Any:
        assert (service, target, method) == ("trademesh.marketdata.v1.MarketData", "sim", "GetCandles")
        self.asked.append(request.start_ns)
        if self.down:
            raise Unavailable("sim's GetCandles is down")
        found = [c for c in self.candles if c.open_time_ns >= request.start_ns][: request.limit]
        return md.GetCandlesResponse(candles=found)


def _venue_candle(open_ns: int, close: str) -> md.Candle:
    return md.Candle(open_time_ns=open_ns, open=close, high=close, low=close, close=close,
                     volume="1", quote_volume=close, trade_count=1, closed=True)  # fmt: skip


def warmed(tools: Tools, clock: Clock, venue: VenueCandles) -> ContextGatherer:
    """gatherer()'s, with the venue's candles where the recorder holds too few bars."""
    source = VenueBarHistory(cast(Upstream, venue), Timeframe.from_label("1s"))
    made = ContextGatherer(
        cast(MarketTools, tools), GatherConfig(timeframe="1s", bars=10, regime_bars=0), clock, source
    )
    _MADE.append(made)
    return made


def _closes(context: Any) -> list[str]:
    return [str(c.close) for c in context.bars]


async def test_a_market_the_recorder_holds_no_bar_of_is_decided_on_the_venues_candles(
    tools: Tools, clock: Clock
) -> None:
    """The bars service backfills a market only after its first trade: a signal before then
    is decided on the venue's closed candles (a bar still open left out), asked again only once
    a bar may have closed, from after the last one kept."""
    tools.bars = []
    venue = VenueCandles([str(100 + n) for n in range(20)])
    venue.candles.append(md.Candle(open_time_ns=T0, open="999", close="999", closed=False))  # open
    gathering = warmed(tools, clock, venue)
    context = await gathering.gather("sim", BTC)
    assert _closes(context) == [str(100 + n) for n in range(10, 20)] and context.price == Decimal(119)
    assert len(venue.asked) == 1
    await refresh(gathering)  # within the same second: no bar closed since
    assert len(venue.asked) == 1
    clock.now += 1000 * MS
    venue.candles[-1] = _venue_candle(T0, "120")
    await refresh(gathering)
    assert venue.asked[-1] == T0 and _closes(await gathering.gather("sim", BTC))[-2:] == ["119", "120"]


async def test_the_recorders_bars_win_and_once_it_holds_enough_the_venue_is_not_asked(
    tools: Tools, clock: Clock
) -> None:
    tools.bars = [_bar(T0 - (4 - n) * 1000 * MS, str(200 + n)) for n in range(4)]  # the last 4 s
    venue = VenueCandles([str(100 + n) for n in range(20)])
    gathering = warmed(tools, clock, venue)
    context = await gathering.gather("sim", BTC)
    assert _closes(context) == [str(100 + n) for n in range(10, 16)] + [str(200 + n) for n in range(4)]
    tools.bars = [_bar(T0 - (12 - n) * 1000 * MS, str(300 + n)) for n in range(12)]
    clock.now += 1000 * MS
    await refresh(gathering)
    assert _closes(await gathering.gather("sim", BTC)) == [str(300 + n) for n in range(2, 12)]
    asked = len(venue.asked)
    clock.now += 1000 * MS
    await refresh(gathering)
    assert len(venue.asked) == asked == 1


async def test_a_recorder_that_cannot_answer_yet_is_stood_in_for_by_the_venue_and_a_venue_down_is_said(
    tools: Tools, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    """At `up` the advisor may ask before the recorder made its tables: the venue's candles."""
    tools.failing.add("latest_bars")
    venue = VenueCandles([str(100 + n) for n in range(20)])
    gathering = warmed(tools, clock, venue)
    assert _closes(await gathering.gather("sim", ETH)) == [str(100 + n) for n in range(10, 20)]
    venue.down = True
    clock.now += 1000 * MS
    await refresh(gathering)
    await refresh(gathering, LATER_S * 2)
    context = await gathering.gather("sim", ETH)
    assert len(context.bars) == 10  # those kept
    said = [r.getMessage() for r in caplog.records if "from the venue" in r.getMessage()]
    assert len(said) == 1 and "no history of sim ETH/USDT 1s" in said[0], said
