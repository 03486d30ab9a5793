"""RecordedSource (trademesh.core.backtest.source) on rows the real recorder wrote: the same wire messages
back, in the documented order, exactly the range, the same sequence whatever the page size,
memory bounded by the page size, and bad input named."""

from __future__ import annotations

import contextlib
import time
import tracemalloc
from collections.abc import AsyncIterator, Sequence
from typing import Any

import asyncpg
import pytest

from tests.integration.postgres_server import database_url, fresh_database, recorder_database
from trademesh.bus.v1 import bus_pb2 as bus
from trademesh.common.v1 import common_pb2 as common
from trademesh.core.backtest.source import Recorded, RecordedSource
from trademesh.core.platform.bus.codec import FIELD, decode, encode_market
from trademesh.core.platform.errors import FailedPrecondition, InvalidArgument, Unavailable
from trademesh.core.recorder.app import Recorder, RecorderConfig, prepare
from trademesh.core.recorder.database import open_pool
from trademesh.marketdata.v1 import marketdata_pb2 as md

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # PostgreSQL: not in the fast tier
__all__ = ["database_url", "fresh_database", "recorder_database"]  # the fixtures, for pytest

VENUE = "sim"
BTC, ETH = "BTC/USDT", "ETH/USDT"
SECOND_NS = 10**9
MINUTE_NS = 60 * SECOND_NS
START = time.time_ns() // MINUTE_NS * MINUTE_NS  # a partition the recorder made
END = START + 2 * MINUTE_NS
T = START + MINUTE_NS  # the instant where everything happens at once
_RANK = {"book": 0, "trade": 1, "bar": 2}


# ---- builders


def trade(symbol: str, at: int, trade_id: str, price: str = "65000.50", size: str = "0.0120",
          side: common.Side.ValueType = common.SIDE_BUY) -> md.MarketEvent:  # fmt: skip
    event = md.MarketEvent(venue=VENUE, symbol=symbol, ts_event_ns=at, ts_recv_ns=at + 1234)
    event.trade.CopyFrom(md.Trade(trade_id=trade_id, price=price, size=size, taker_side=side))
    return event


Levels = Sequence[tuple[str, str]]


def book(
    symbol: str, at: int, sequence: int, snapshot: bool, bids: Levels = (), asks: Levels = ()
) -> md.MarketEvent:
    event = md.MarketEvent(venue=VENUE, symbol=symbol, ts_event_ns=at, ts_recv_ns=at + 77)
    target = event.book_snapshot if snapshot else event.book_delta
    target.sequence = sequence
    target.bids.extend(md.BookLevel(price=p, size=s) for p, s in bids)
    target.asks.extend(md.BookLevel(price=p, size=s) for p, s in asks)
    return event


def bar(symbol: str, timeframe: common.Timeframe.ValueType, open_time_ns: int, close: str = "100.5",
        quote_volume: str = "350.5", vwap: str = "100.1", repaired: bool = False) -> bus.Bar:  # fmt: skip
    return bus.Bar(venue=VENUE, symbol=symbol, timeframe=timeframe, open_time_ns=open_time_ns,
                   open="100", high="102.125", low="99", close=close, volume="3.5",
                   quote_volume=quote_volume, trade_count=4, vwap=vwap, repaired=repaired)  # fmt: skip


_DURATION = {common.TIMEFRAME_1_SECOND: SECOND_NS, common.TIMEFRAME_1_MINUTE: MINUTE_NS}


def order_key(message: md.MarketEvent | bus.Bar) -> tuple[Any, ...]:
    """The documented order: time, kind (book, trade, bar), symbol, then the table's key."""
    if isinstance(message, bus.Bar):
        return (message.open_time_ns + _DURATION[message.timeframe], 2, message.symbol, message.timeframe)
    kind = message.WhichOneof("payload")
    if kind == "trade":
        return (message.ts_event_ns, 1, message.symbol, message.trade.trade_id)
    book_event = message.book_snapshot if kind == "book_snapshot" else message.book_delta
    return (message.ts_event_ns, 0, message.symbol, book_event.sequence, kind == "book_snapshot")


# ---- the recorder


@pytest.fixture
async def pool(recorder_database: str) -> AsyncIterator[Any]:
    opened = await open_pool(recorder_database)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
async def recorder(pool: Any, recorder_database: str) -> Recorder:
    options = RecorderConfig(database_url=recorder_database, redis_url="redis://unused")
    return Recorder(pool, await prepare(pool, options), options)


async def record(recorder: Recorder, events: Sequence[md.MarketEvent] = (), bars: Sequence[bus.Bar] = (),
                 per_entry: int = 1000) -> None:  # fmt: skip
    """The events and bars through the recorder's bus handler, as bus entries."""
    payloads = [encode_market("test", events[i : i + per_entry]) for i in range(0, len(events), per_entry)]
    if bars:
        envelope = bus.Envelope(source="bars", ts_publish_ns=time.time_ns(), bars=bus.Bars(bars=bars))
        payloads.append(envelope.SerializeToString())
    entries = [(f"{i + 1}-0", decode({FIELD: data})) for i, data in enumerate(payloads)]
    await recorder.handle("md.test", entries)


async def replay(source: RecordedSource) -> list[Recorded]:
    return [event async for event in source]


# ---- round trip


async def test_the_source_yields_what_the_recorder_wrote_in_the_documented_order_within_the_range(
    recorder: Recorder, pool: Any
) -> None:
    inside = [
        trade(BTC, START, "t1", price="0.00000001", size="12345678901234567890.123456789012345678"),
        book(ETH, START, 10, True, bids=[("3000.10", "1.5"), ("3000", "2")], asks=[("3000.2", "0.25")]),
        # At T, all at once: book before trade before bar, BTC before ETH, then each table's key.
        book(BTC, T, 101, False, bids=[("64999.5", "0")]),
        trade(ETH, T, "e1", price="3000.20", size="1", side=common.SIDE_SELL),
        book(BTC, T, 100, True, bids=[("64999.5", "1.25"), ("64999", "0.50")], asks=[("65000.5", "2")]),
        trade(BTC, T, "t2", side=common.SIDE_UNSPECIFIED),
        book(BTC, T, 100, False, asks=[("65000.5", "3")]),  # the delta goes before its snapshot
        trade(BTC, T, "t10", price="65000.5"),  # "t10" < "t2"
        book(ETH, T, 11, False, asks=[("3000.2", "0")]),
        trade(ETH, END - 1, "e2", price="3001"),
    ]
    outside = [trade(BTC, START - 1, "t0"), book(ETH, END, 12, False, bids=[("2999", "1")])]
    bars_inside = [
        bar(ETH, common.TIMEFRAME_1_SECOND, T - SECOND_NS, quote_volume="", vwap="", repaired=True),
        bar(BTC, common.TIMEFRAME_1_MINUTE, T - MINUTE_NS),  # closes at T
        bar(BTC, common.TIMEFRAME_1_SECOND, T - SECOND_NS, close="101.25"),
        bar(BTC, common.TIMEFRAME_1_MINUTE, START - MINUTE_NS, close="99.5"),  # closes at START
    ]
    bars_outside = [
        bar(BTC, common.TIMEFRAME_1_MINUTE, END - MINUTE_NS),  # closes at END
        bar(ETH, common.TIMEFRAME_1_SECOND, START - 2 * SECOND_NS),  # closes a second before START
    ]
    await record(recorder, [*inside, *outside], [*bars_inside, *bars_outside])

    source = RecordedSource(pool, VENUE, [ETH, BTC], START, END, {"trade", "book", "bar"}, ["1m", "1s"])
    got = await replay(source)

    expected: list[md.MarketEvent | bus.Bar] = sorted([*inside, *bars_inside], key=order_key)
    assert [event.message for event in got] == expected
    assert [event.ts_ns for event in got] == [order_key(message)[0] for message in expected]
    assert [event.kind for event in got] == [
        "bar" if isinstance(m, bus.Bar) else "trade" if m.HasField("trade") else "book" for m in expected
    ]
    first_trade = next(event.message for event in got if event.kind == "trade")
    assert isinstance(first_trade, md.MarketEvent)
    assert first_trade.trade.price == "0.00000001"  # exact strings, not Decimal's "1E-8"
    assert await source.count() == {"book": 5, "trade": 5, "bar": 4}
    assert await source.bounds() == (START, END - 1)


async def test_a_range_that_starts_after_the_snapshot_opens_with_the_book_as_it_stood(
    recorder: Recorder, pool: Any
) -> None:
    before = [
        book(BTC, START - 30 * SECOND_NS, 7, True, bids=[("100", "1"), ("99", "2")], asks=[("101", "1")]),
        book(BTC, START - 20 * SECOND_NS, 8, False, bids=[("100", "0"), ("98.5", "4")]),
        book(BTC, START - 10 * SECOND_NS, 9, False, asks=[("101", "3"), ("102", "1")]),
        book(ETH, START - 5 * SECOND_NS, 3, False, bids=[("5", "1")]),  # no snapshot before it: no book
    ]
    inside = [book(BTC, START, 10, False, asks=[("102", "0")]), trade(BTC, T, "t1")]
    await record(recorder, [*before, *inside])

    got = [event.message async for event in RecordedSource(pool, VENUE, [BTC, ETH], START, END)]

    seeded = book(BTC, START, 9, True, bids=[("99", "2"), ("98.5", "4")], asks=[("101", "3"), ("102", "1")])
    seeded.ts_recv_ns = START
    assert got == [seeded, *inside]


async def test_kinds_symbols_and_timeframes_select_their_streams(
    recorder: Recorder, recorder_database: str
) -> None:
    await record(
        recorder,
        [trade(BTC, T, "t1"), trade(ETH, T, "e1"), book(BTC, T, 1, True, bids=[("1", "1")])],
        [
            bar(BTC, common.TIMEFRAME_1_SECOND, T - SECOND_NS),
            bar(BTC, common.TIMEFRAME_1_MINUTE, T - MINUTE_NS),
        ],
    )
    trades = RecordedSource(recorder_database, VENUE, [BTC], START, END, {"trade"})  # a URL, not a pool
    assert [event.message for event in await replay(trades)] == [trade(BTC, T, "t1")]
    minutes = RecordedSource(recorder_database, VENUE, [BTC], START, END, {"bar"}, ["1m"])
    assert [event.message for event in await replay(minutes)] == [
        bar(BTC, common.TIMEFRAME_1_MINUTE, T - MINUTE_NS)
    ]
    other = RecordedSource(recorder_database, "other", [BTC], START, END, {"trade", "book"})
    assert await replay(other) == []
    assert await other.bounds() is None
    assert await other.count() == {"book": 0, "trade": 0}


# ---- pages


def crowded() -> tuple[list[md.MarketEvent], list[bus.Bar]]:
    """50 rows: per instant and symbol 4 trades and a delta and snapshot of one sequence, so
    runs of equal times straddle pages of 3; and bars closing at two of the instants."""
    events = []
    for step in range(4):
        at = T + step * SECOND_NS
        for symbol in (BTC, ETH):
            events += [trade(symbol, at, f"{step}-{n}", price=f"{65000 + n}.5") for n in range(4)]
            events += [
                book(symbol, at, step, snapshot, bids=[(f"{64000 + step}", "1")])
                for snapshot in (False, True)
            ]
    bars = [bar(BTC, common.TIMEFRAME_1_SECOND, T), bar(ETH, common.TIMEFRAME_1_SECOND, T + SECOND_NS)]
    return events, bars


async def test_pages_of_three_give_the_same_sequence_as_one_page(recorder: Recorder, pool: Any) -> None:
    events, bars = crowded()
    await record(recorder, events, bars, per_entry=7)

    def source(chunk: int) -> RecordedSource:
        return RecordedSource(pool, VENUE, [BTC, ETH], START, END, {"book", "trade", "bar"}, ["1s"], chunk)

    whole, paged = await replay(source(5000)), await replay(source(3))
    assert len(whole) == 50
    assert paged == whole
    written: list[md.MarketEvent | bus.Bar] = [*events, *bars]
    assert [event.message for event in whole] == sorted(written, key=order_key)


async def test_memory_stays_bounded_by_the_page_not_the_range(recorder: Recorder, pool: Any) -> None:
    events = [trade(BTC, T + n, f"{n:05d}", price=f"{60000 + n % 997}.25") for n in range(20_000)]
    await record(recorder, events, per_entry=5000)

    async def peak(rows: int, keep: bool) -> int:
        source = RecordedSource(pool, VENUE, [BTC], T, T + rows, {"trade"}, chunk=1000)
        kept: list[Recorded] = []
        tracemalloc.start()
        try:
            count = 0
            async for event in source:
                count += 1
                if keep:
                    kept.append(event)
            assert count == rows
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    await replay(RecordedSource(pool, VENUE, [BTC], T, T + 1000, {"trade"}))  # warm: connection, statements
    small, large, materialised = await peak(2_000, False), await peak(20_000, False), await peak(20_000, True)
    assert large < 2 * small, (small, large)
    assert large * 3 < materialised, (large, materialised)


async def test_an_iteration_broken_off_gives_its_connection_back(
    recorder: Recorder, recorder_database: str
) -> None:
    events, bars = crowded()
    await record(recorder, events, bars)
    single = await asyncpg.create_pool(recorder_database, min_size=0, max_size=1)
    try:
        source = RecordedSource(single, VENUE, [BTC, ETH], START, END, {"book", "trade"}, chunk=3)
        first: list[Recorded] = []
        async with contextlib.aclosing(aiter(source)) as iteration:
            async for event in iteration:
                first.append(event)
                if len(first) == 5:
                    break
        assert len(first) == 5
        assert len(await replay(source)) == 48  # the pool's one connection is back, and usable
    finally:
        await single.close()


# ---- bad input, missing tables


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"end_ns": START}, "end_ns"),
        ({"end_ns": START - 1}, "end_ns"),
        ({"symbols": []}, "symbols"),
        ({"symbols": "BTC/USDT"}, "symbols"),
        ({"kinds": {"trade", "quote"}}, "kinds"),
        ({"kinds": set()}, "kinds"),
        ({"kinds": {"bar"}}, "timeframes"),
        ({"kinds": {"bar"}, "timeframes": ["2m"]}, "timeframes"),
        ({"venue": ""}, "venue"),
        ({"chunk": 0}, "chunk"),
    ],
)
def test_bad_input_names_the_field(change: dict[str, Any], field: str) -> None:
    arguments: dict[str, Any] = {"venue": VENUE, "symbols": [BTC], "start_ns": START, "end_ns": END,
                                 "kinds": {"trade"}} | change  # fmt: skip
    with pytest.raises(InvalidArgument) as raised:
        RecordedSource("postgresql://unused", **arguments)
    assert [violation.field for violation in raised.value.violations] == [field]


async def test_a_database_without_the_recorder_tables_is_a_failed_precondition(fresh_database: str) -> None:
    source = RecordedSource(fresh_database, VENUE, [BTC], START, END, {"trade"})
    with pytest.raises(FailedPrecondition, match="no trades table"):
        await replay(source)


async def test_an_unreachable_database_is_unavailable_without_its_password() -> None:
    source = RecordedSource("postgresql://user:s3cret@127.0.0.1:1/none", VENUE, [BTC], START, END, {"trade"})
    with pytest.raises(Unavailable) as raised:
        await source.count()
    assert "127.0.0.1:1" in str(raised.value)
    assert "s3cret" not in str(raised.value)
