"""Market data from a real sim venue process over grpc.aio: trades, books, candles."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from typing import Any

import pytest

from tests.integration.support import (
    CALL_TIMEOUT_S,
    Book,
    BookFollower,
    Stubs,
    next_batch,
    snapshot_levels,
    until,
)
from trademesh.common.v1 import common_pb2 as common
from trademesh.marketdata.v1 import marketdata_pb2 as md

pytestmark = pytest.mark.integration

SYMBOLS = ["BTC/USDT", "ETH/USDT", "SOL/USDT"]


async def test_snapshot_plus_deltas_reproduces_the_venues_book(stubs: Stubs) -> None:
    follower = BookFollower()
    request = md.SubscribeRequest(
        symbols=SYMBOLS, channels=[md.CHANNEL_BOOK, md.CHANNEL_TRADES, md.CHANNEL_TICKERS]
    )
    a = stubs.md.Subscribe(request)
    task = asyncio.create_task(follower.follow(a))
    try:

        async def followed() -> bool | None:  # client A has rebuilt its books from many deltas
            enough = follower.deltas > 100 and follower.ticker_checks > 10
            return True if enough or task.done() else None

        await until(followed, 30.0, 0.05, "client A past 100 deltas and 10 ticker checks")
        b = stubs.md.Subscribe(md.SubscribeRequest(symbols=SYMBOLS, channels=[md.CHANNEL_BOOK]))
        first = await next_batch(b)
        b.cancel()
        snapshots = {e.symbol: e.book_snapshot for e in first.events}
        assert all(e.WhichOneof("payload") == "book_snapshot" for e in first.events)
        assert sorted(snapshots) == SYMBOLS

        async def caught_up() -> None:
            while any(follower.books[s].sequence < snapshots[s].sequence for s in SYMBOLS):
                if task.done():
                    task.result()  # raises whatever stopped client A
                    pytest.fail("client A's stream ended")
                await asyncio.sleep(0.02)

        await asyncio.wait_for(caught_up(), CALL_TIMEOUT_S)
        for symbol, snapshot in snapshots.items():
            ours = follower.at(symbol, snapshot.sequence)
            assert ours is not None, f"{symbol}: client A never held sequence {snapshot.sequence}"
            bids, asks = snapshot_levels(snapshot)
            assert len(bids) > 0 and len(asks) > 0
            assert ours == (bids, asks), (
                f"{symbol}: A's book at {snapshot.sequence} differs from B's snapshot"
            )
        assert not task.done(), "client A's stream ended"
    finally:
        a.cancel()
        (outcome,) = await asyncio.gather(task, return_exceptions=True)
    if isinstance(outcome, AssertionError):
        raise outcome
    assert follower.deltas > 100 and follower.ticker_checks > 10
    assert follower.notices == [], "a healthy stream carried GAP or RESYNC notices"
    assert all(len(follower.trades[s]) > 0 for s in SYMBOLS)


async def test_a_new_subscriber_continues_from_its_snapshot_without_holes(stubs: Stubs) -> None:
    call = stubs.md.Subscribe(md.SubscribeRequest(symbols=["ETH/USDT"], channels=[md.CHANNEL_BOOK]))
    first = await next_batch(call)
    assert [e.WhichOneof("payload") for e in first.events] == ["book_snapshot"]
    book = Book(first.events[0].book_snapshot)
    start = book.sequence
    try:
        while book.sequence < start + 200:
            message = await next_batch(call)
            for event in message.events:
                assert event.WhichOneof("payload") in ("book_delta", "book_snapshot")
                book.take(event)  # a snapshot only as the next of its sequence
    finally:
        call.cancel()
    bids, asks = book.levels()
    assert Decimal(bids[0][0]) < Decimal(asks[0][0]), "the rebuilt book is crossed"


async def test_trades_stream_with_consecutive_ids_and_valid_fields(stubs: Stubs) -> None:
    call = stubs.md.Subscribe(md.SubscribeRequest(symbols=["BTC/USDT"], channels=[md.CHANNEL_TRADES]))
    trades: list[md.MarketEvent] = []
    try:
        while len(trades) < 20:
            message = await next_batch(call)
            trades += message.events
    finally:
        call.cancel()
    ids = [int(e.trade.trade_id) for e in trades]
    assert ids == list(range(ids[0], ids[0] + len(ids))), "trade ids have holes"
    for event in trades:
        assert event.venue == "sim" and event.symbol == "BTC/USDT"
        assert Decimal(event.trade.price) > 0 and Decimal(event.trade.size) > 0
        assert event.trade.taker_side in (common.SIDE_BUY, common.SIDE_SELL)
        assert 0 < event.ts_event_ns <= event.ts_recv_ns <= time.time_ns()
    times = [e.ts_event_ns for e in trades]
    assert times == sorted(times)


async def test_candles_of_the_sim_match_its_trades(stubs: Stubs) -> None:
    """1s candles from GetCandles equal OHLCV computed from the trades we streamed meanwhile."""
    started_ns = time.time_ns()
    call = stubs.md.Subscribe(md.SubscribeRequest(symbols=["BTC/USDT"], channels=[md.CHANNEL_TRADES]))
    trades: list[md.MarketEvent] = []
    try:
        while not trades or trades[-1].ts_event_ns < started_ns + 4_000_000_000:
            message = await next_batch(call)
            trades += message.events
    finally:
        call.cancel()
    last_seen_ns = trades[-1].ts_event_ns
    response = await stubs.md.GetCandles(
        md.GetCandlesRequest(
            symbol="BTC/USDT", timeframe=common.TIMEFRAME_1_SECOND, start_ns=started_ns - 10**10
        ),
        timeout=CALL_TIMEOUT_S,
    )
    candles = list(response.candles)
    assert len(candles) >= 4
    opens = [c.open_time_ns for c in candles]
    assert opens == sorted(opens) and len(set(opens)) == len(opens)
    for candle in candles:
        assert candle.timeframe == common.TIMEFRAME_1_SECOND
        assert candle.open_time_ns % 1_000_000_000 == 0
        low, high = Decimal(candle.low), Decimal(candle.high)
        assert low <= Decimal(candle.open) <= high and low <= Decimal(candle.close) <= high
        assert Decimal(candle.volume) > 0 and candle.trade_count > 0
    assert all(c.closed for c in candles[:-1])
    # Candles wholly inside the span we streamed must be exactly our trades' OHLCV.
    covered = [c for c in candles if c.open_time_ns >= started_ns and c.open_time_ns + 10**9 <= last_seen_ns]
    assert len(covered) >= 2
    for candle in covered:
        inside = [
            e.trade for e in trades if candle.open_time_ns <= e.ts_event_ns < candle.open_time_ns + 10**9
        ]
        prices = [Decimal(t.price) for t in inside]
        assert candle.trade_count == len(inside)
        assert Decimal(candle.open) == prices[0] and Decimal(candle.close) == prices[-1]
        assert Decimal(candle.high) == max(prices) and Decimal(candle.low) == min(prices)
        assert Decimal(candle.volume) == sum(Decimal(t.size) for t in inside)
        assert Decimal(candle.quote_volume) == sum(Decimal(t.price) * Decimal(t.size) for t in inside)


async def test_list_instruments_names_every_symbol_with_its_steps(stubs: Stubs) -> None:
    response = await stubs.md.ListInstruments(md.ListInstrumentsRequest(), timeout=CALL_TIMEOUT_S)
    by_symbol = {i.symbol: i for i in response.instruments}
    assert sorted(by_symbol) == SYMBOLS
    btc = by_symbol["BTC/USDT"]
    assert (btc.native_symbol, btc.base_asset, btc.quote_asset) == ("BTCUSDT", "BTC", "USDT")
    assert (btc.tick_size, btc.lot_size, btc.min_notional) == ("0.01", "0.00001", "5")
    assert btc.kind == common.INSTRUMENT_KIND_SPOT and btc.active
    assert (btc.maker_fee_rate, btc.taker_fee_rate) == ("0.001", "0.002")  # the sim's, as configured
    only = await stubs.md.ListInstruments(
        md.ListInstrumentsRequest(symbols=["SOL/USDT"]), timeout=CALL_TIMEOUT_S
    )
    assert [i.symbol for i in only.instruments] == ["SOL/USDT"]


async def test_many_concurrent_subscribers_all_receive_the_stream(stubs: Stubs) -> None:
    request = md.SubscribeRequest(symbols=["BTC/USDT"], channels=[md.CHANNEL_BOOK])
    calls = [stubs.md.Subscribe(request) for _ in range(20)]

    async def follow(call: Any) -> tuple[int, int]:
        """(snapshot sequence, sequence reached), applying 50 deltas without holes."""
        snapshot = (await next_batch(call)).events[0].book_snapshot
        book = Book(snapshot)
        while book.sequence < snapshot.sequence + 50:
            for event in (await next_batch(call)).events:
                book.take(event)
        return snapshot.sequence, book.sequence

    try:
        reached = await asyncio.wait_for(asyncio.gather(*(follow(c) for c in calls)), CALL_TIMEOUT_S)
    finally:
        for call in calls:
            call.cancel()
    assert len(reached) == 20 and all(end >= start + 50 for start, end in reached)


async def test_a_symbol_the_venue_does_not_list_is_refused_alone_and_the_others_are_served(
    stubs: Stubs,
) -> None:
    request = md.SubscribeRequest(
        symbols=["BTC/USDT", "DOGE/USDT", "ETH/USDT"], channels=[md.CHANNEL_BOOK, md.CHANNEL_TRADES]
    )
    call = stubs.md.Subscribe(request)
    try:
        first = await next_batch(call)
        refused = [e for e in first.events if e.HasField("notice")]
        assert [(e.symbol, e.notice.kind, e.notice.channel) for e in refused] == [
            ("DOGE/USDT", md.NOTICE_KIND_REFUSED, md.CHANNEL_UNSPECIFIED)
        ]
        assert "unknown symbol 'DOGE/USDT'" in refused[0].notice.reason
        served: set[str] = {e.symbol for e in first.events if e.HasField("book_snapshot")}
        while served != {"BTC/USDT", "ETH/USDT"}:
            batch = await next_batch(call)
            served |= {e.symbol for e in batch.events if not e.HasField("notice")}
            assert "DOGE/USDT" not in served
    finally:
        call.cancel()
