"""The inspector's market board (trademesh.core.inspector.market) without a venue: its MarketData
events handed to `take` as the stream would. What is checked: the latest quote is the book's
top (the ticker's only while no book is held) and the last trade; the quotes are kept by event
time, so a view as of a time is the book's top and the last trade then; a time the history does
not reach back to (before it, or after a GAP notice or a lost stream) gives the latest,
counted; the shell journals an intent with the quote as of its signal's time."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal as D
from typing import Any, cast

import pytest
from prometheus_client import REGISTRY

from trademesh.advisor.v1 import messages_pb2 as am
from trademesh.common.v1 import common_pb2 as common
from trademesh.core.inspector import market
from trademesh.core.inspector.engine.actions import OrderAction
from trademesh.core.inspector.engine.market import MarketView
from trademesh.core.inspector.executor import Executor
from trademesh.core.inspector.input_journal import InputJournal
from trademesh.core.inspector.market import MarketBoard
from trademesh.core.inspector.risk_log import RiskLog
from trademesh.core.inspector.runtime import PolicySource, Runtime
from trademesh.core.inspector.venues import VenueLinks
from trademesh.core.platform.errors import NotFound
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.risk.v1 import journal_pb2 as jr
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

MS = 1_000_000
T0 = 1_767_225_600_000_000_000
BTC = "BTC/USDT"


def _levels(*levels: tuple[str, str]) -> list[md.BookLevel]:
    return [md.BookLevel(price=price, size=size) for price, size in levels]


def snapshot(ts_ns: int, bids: list[tuple[str, str]], asks: list[tuple[str, str]]) -> md.MarketEvent:
    book = md.BookSnapshot(sequence=1, bids=_levels(*bids), asks=_levels(*asks))
    return md.MarketEvent(venue="sim", symbol=BTC, ts_event_ns=ts_ns, book_snapshot=book)


def delta(ts_ns: int, bids: list[tuple[str, str]], asks: list[tuple[str, str]]) -> md.MarketEvent:
    book = md.BookDelta(sequence=2, bids=_levels(*bids), asks=_levels(*asks))
    return md.MarketEvent(venue="sim", symbol=BTC, ts_event_ns=ts_ns, book_delta=book)


def trade(ts_ns: int, price: str) -> md.MarketEvent:
    done = md.Trade(trade_id=f"t{ts_ns}", price=price, size="0.1")
    return md.MarketEvent(venue="sim", symbol=BTC, ts_event_ns=ts_ns, trade=done)


def ticker(ts_ns: int, bid: str, ask: str, last: str) -> md.MarketEvent:
    quote = md.Ticker(best_bid=bid, best_ask=ask, last_price=last)
    return md.MarketEvent(venue="sim", symbol=BTC, ts_event_ns=ts_ns, ticker=quote)


def gap(ts_ns: int) -> md.MarketEvent:
    notice = md.StreamNotice(kind=md.NOTICE_KIND_GAP, channel=md.CHANNEL_BOOK)
    return md.MarketEvent(venue="sim", symbol=BTC, ts_event_ns=ts_ns, notice=notice)


class Trades:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str, D]] = []

    async def __call__(self, venue: str, symbol: str, price: D) -> None:
        self.seen.append((venue, symbol, price))


class Links:
    """The venues the board asks about: the sim, listing BTC/USDT."""

    def known(self, venue: str) -> None:
        if venue != "sim":
            raise NotFound(f"no venue {venue!r}")

    async def list_instruments(self, venue: str) -> list[common.Instrument]:
        return [common.Instrument(symbol=BTC)]


def board(keep_ns: int = 10_000 * MS) -> MarketBoard:
    return MarketBoard(cast(VenueLinks, Links()), Trades(), keep_ns)


async def feed(on: MarketBoard, *events: md.MarketEvent) -> None:
    for event in events:
        await on.take("sim", event)


def latest_count() -> float:
    return REGISTRY.get_sample_value("trademesh_inspector_quote_as_of_latest_total") or 0.0


async def test_the_view_as_of_a_time_is_the_books_top_and_the_last_trade_then() -> None:
    on = board()
    await feed(
        on,
        snapshot(T0, [("100", "1"), ("99", "2")], [("101", "1"), ("102", "3")]),
        delta(T0 + 1000 * MS, [("100.5", "1")], []),
        trade(T0 + 1500 * MS, "100.7"),
        delta(T0 + 2000 * MS, [], [("101", "0")]),
        ticker(T0 + 2100 * MS, "90", "110", "100.8"),  # the book is held: its prices win
    )
    before = latest_count()
    at = {ms: await on.view("sim", BTC, T0 + ms * MS) for ms in (0, 999, 1200, 1700, 2500)}
    assert at[0] == at[999] == MarketView(D("100"), D("101"), None)
    assert at[1200] == MarketView(D("100.5"), D("101"), None)
    assert at[1700] == MarketView(D("100.5"), D("101"), D("100.7"))
    assert at[2500] == MarketView(D("100.5"), D("102"), D("100.7"))
    assert latest_count() == before
    assert await on.view("sim", BTC) == MarketView(D("100.5"), D("102"), D("100.8"))  # the latest


async def test_a_time_before_the_history_or_after_a_gap_gives_the_latest_counted() -> None:
    on = board()
    await feed(on, snapshot(T0, [("100", "1")], [("101", "1")]), delta(T0 + 500 * MS, [("100.2", "1")], []))
    before = latest_count()
    assert await on.view("sim", BTC, T0 - 1) == MarketView(D("100.2"), D("101"), None)
    assert latest_count() == before + 1
    await feed(on, gap(T0 + 600 * MS), delta(T0 + 700 * MS, [("100.4", "1")], []))  # not applied
    assert await on.view("sim", BTC, T0 + 550 * MS) == MarketView(D("100.2"), D("101"), None)
    assert latest_count() == before + 2
    await feed(on, snapshot(T0 + 800 * MS, [("100.3", "1")], [("101", "1")]))
    assert await on.view("sim", BTC, T0 + 900 * MS) == MarketView(D("100.3"), D("101"), None)
    on.lost("sim")  # the stream lost: forgotten until the next snapshot
    assert await on.view("sim", BTC, T0 + 900 * MS) == MarketView(D("100.3"), D("101"), None)
    assert latest_count() == before + 3


async def test_the_ticker_gives_the_quote_while_no_book_is_held_and_the_history_keeps_its_window() -> None:
    on = board(keep_ns=1000 * MS)
    await feed(on, ticker(T0, "99", "100", "99.5"))
    assert on.quotes[("sim", BTC)].view() == MarketView(D("99"), D("100"), D("99.5"))
    before = latest_count()
    assert await on.view("sim", BTC, T0) == MarketView(D("99"), D("100"), D("99.5"))  # no history
    assert latest_count() == before + 1
    await feed(on, snapshot(T0 + 100 * MS, [("99.1", "1")], [("100", "1")]))
    await feed(on, *(delta(T0 + n * 500 * MS, [(f"99.{n}", "1")], []) for n in range(2, 8)))
    assert await on.view("sim", BTC, T0 + 3000 * MS) == MarketView(D("99.6"), D("100"), D("99.5"))
    assert latest_count() == before + 1
    await on.view("sim", BTC, T0 + 1000 * MS)  # older than the 1 s kept behind the newest
    assert latest_count() == before + 2


# ---- the shell: an intent journaled with the quote as of its signal's time


class Entries:
    """The journal as the runtime uses it: appended entries kept, none to replay."""

    stream = "journal.test"

    def __init__(self) -> None:
        self.appended: list[jr.JournalEntry] = []

    async def append(self, entry: jr.JournalEntry) -> tuple[int, int]:
        self.appended.append(entry)
        return (len(self.appended), 0)

    async def entries(self) -> AsyncIterator[jr.JournalEntry]:
        replayed: tuple[jr.JournalEntry, ...] = ()
        for entry in replayed:
            yield entry


class Quiet:
    """The risk log and the executor: what they are handed is not this test's."""

    async def publish(self, *args: Any) -> None:
        return None

    async def carry_out(self, actions: list[OrderAction]) -> None:
        return None

    async def carry_out_together(self, actions: list[OrderAction]) -> None:
        return None

    async def on_trade(self, venue: str, symbol: str, price: D) -> None:
        return None

    @property
    def ticks(self) -> Quiet:
        return self

    async def instruments(self, venue: str) -> None:
        return None  # the venue's instruments are not this test's either


def _intent(ts_signal_ns: int) -> am.Intent:
    return am.Intent(
        intent_id=f"i{ts_signal_ns}", decision_id="d", signal_id="s", venue="sim", symbol=BTC,
        side=common.SIDE_BUY, size="0.01", entry_type=tf.ORDER_TYPE_LIMIT, entry_price="101",
        stop_loss="99", take_profit="104", time_in_force=tf.TIME_IN_FORCE_GTC, strategy_id="trend",
        expires_at_ns=T0 + 600_000 * MS, ts_intent_ns=T0 + 3000 * MS, ts_signal_ns=ts_signal_ns,
    )  # fmt: skip


async def test_the_shell_journals_an_intent_with_the_quote_as_of_its_signals_time() -> None:
    journal, quiet = Entries(), Quiet()
    on = board()
    runtime = Runtime(
        cast(InputJournal, journal), cast(RiskLog, quiet), lambda rt: cast(Executor, quiet), lambda rt: on,
        lambda: T0 + 3000 * MS,
    )  # fmt: skip
    await runtime.start(PolicySource(""), D(100_000))
    await feed(
        on,
        snapshot(T0, [("100", "1")], [("101", "1")]),
        trade(T0 + 200 * MS, "100.5"),
        delta(T0 + 2000 * MS, [("102", "1")], [("101", "0"), ("103", "1")]),  # 2 s after the signal
    )
    await asyncio.wait_for(runtime.submit(_intent(T0 + 1000 * MS)), 5)
    await asyncio.wait_for(runtime.submit(_intent(0)), 5)  # no signal time: the latest
    checked = [e.intent for e in journal.appended if e.WhichOneof("input") == "intent"]
    assert [(e.bid, e.ask, e.last) for e in checked] == [("100", "101", "100.5"), ("102", "103", "100.5")]
    assert checked[0].intent.ts_signal_ns == T0 + 1000 * MS


# ---- what the board follows: markets asked about are bounded and dropped when idle


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_markets_asked_about_are_bounded_dropped_when_idle_and_held_ones_followed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(market, "_FIRST_QUOTE_S", 0.001)  # no venue here: no quote comes
    clock, held = Clock(), set[tuple[str, str]]()
    on = MarketBoard(cast(VenueLinks, Links()), Trades(), clock=clock)
    on.asked.most = 2
    on.held = lambda: held
    for symbol in ("A/USDT", "B/USDT", "C/USDT"):
        await on.view("sim", symbol)
    assert on.following() == [("sim", "B/USDT"), ("sim", "C/USDT")]  # A went: the least recent
    held.add(("sim", "B/USDT"))  # a position there now
    clock.now += on.asked.idle_s + 1
    on.prune()
    assert on.following() == [("sim", "B/USDT")]  # C idle: dropped; B held: followed
    held.add(("sim", "D/USDT"))  # held, not followed (a position found at a restart)
    on.prune()
    assert on.following() == [("sim", "B/USDT"), ("sim", "D/USDT")]
    held.clear()
    on.prune()
    assert on.following() == []
