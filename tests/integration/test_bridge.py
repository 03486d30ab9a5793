"""The live bridge as a process: `trademesh bridge` on a real Redis, called by real gRPC clients.

Test data goes on the bus the way ingest and the bar aggregator put it there (Publisher,
Envelope on md.{<venue>}.<channel> and bars.{<venue>}.<timeframe>). A subscription's first message
means it is in place, so everything published after it must arrive. To prove nothing else
arrives, a test publishes an end marker after the data was received and compares all that
came before it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import grpc
import pytest
import redis.asyncio as aioredis
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from tests.integration.bridge_support import (
    BridgeProcess,
    Bus,
    Received,
    bar,
    book_delta,
    book_snapshot,
    bus_url,
    new_symbol,
    new_venue,
    read_until,
    start_bridge,
    subscribe,
    ticker,
    trade,
)
from tests.integration.redis_server import redis_url
from tests.integration.support import CALL_TIMEOUT_S, Book
from trademesh.common.v1 import common_pb2 as common
from trademesh.core.platform.rpc.status import bad_request_violations
from trademesh.livedata.v1 import livedata_pb2 as lv
from trademesh.marketdata.v1 import marketdata_pb2 as md

pytestmark = pytest.mark.integration
__all__ = ["bus_url", "redis_url"]  # the fixtures, for pytest


LIVE_DATA = "trademesh.livedata.v1.LiveData"


@pytest.fixture(scope="module")
async def created(bus_url: str) -> AsyncIterator[set[str]]:
    """Streams the tests create; deleted after the bridges that follow them stopped."""
    streams: set[str] = set()
    yield streams
    if streams:
        client = aioredis.Redis.from_url(bus_url)
        await client.delete(*streams)
        await client.aclose()


@pytest.fixture(scope="module")
async def bridge(
    bus_url: str, created: set[str], tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[BridgeProcess]:
    started = start_bridge(bus_url, tmp_path_factory.mktemp("bridge"))
    yield started
    assert await started.stop() == 0, started.log()


@pytest.fixture
async def bus(bus_url: str, created: set[str]) -> AsyncIterator[Bus]:
    found = Bus(aioredis.Redis.from_url(bus_url), created)
    yield found
    await found.close()


def label(event: md.MarketEvent) -> tuple[str, str, str, str]:
    """(venue, symbol, payload, id): what identifies a test event."""
    payload = event.WhichOneof("payload") or ""
    ident = event.trade.trade_id if payload == "trade" else event.ticker.last_price
    return event.venue, event.symbol, payload, ident


def at_least(count: int) -> Callable[[Received], bool]:
    return lambda received: len(received.events) >= count


def by_stream(events: list[md.MarketEvent]) -> dict[tuple[str, str], list[tuple[str, str, str, str]]]:
    """Labels per (venue, payload), in the order received: the bus keeps order per stream."""
    found: dict[tuple[str, str], list[tuple[str, str, str, str]]] = {}
    for event in events:
        found.setdefault((event.venue, event.WhichOneof("payload") or ""), []).append(label(event))
    return found


async def test_health_and_reflection_answer_without_a_token(bridge: BridgeProcess) -> None:
    channel = bridge.links.channel(token=None)
    health = health_pb2_grpc.HealthStub(channel)
    for service in ("", LIVE_DATA):
        answer = await health.Check(health_pb2.HealthCheckRequest(service=service), timeout=CALL_TIMEOUT_S)
        assert answer.status == health_pb2.HealthCheckResponse.SERVING, service
    reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
    requests = [
        reflection_pb2.ServerReflectionRequest(list_services=""),
        reflection_pb2.ServerReflectionRequest(file_containing_symbol=LIVE_DATA),
    ]
    answers = [r async for r in reflection.ServerReflectionInfo(iter(requests), timeout=CALL_TIMEOUT_S)]
    assert {LIVE_DATA, "grpc.health.v1.Health"} <= {s.name for s in answers[0].list_services_response.service}
    files = answers[1].file_descriptor_response.file_descriptor_proto
    assert any(b"livedata.proto" in f and b"ListStreams" in f for f in files)


async def test_a_call_without_the_token_is_refused(bridge: BridgeProcess) -> None:
    call = bridge.stub(token=None).Subscribe(lv.SubscribeRequest(kinds=[lv.KIND_TRADES]))
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await asyncio.wait_for(call.read(), CALL_TIMEOUT_S)
    assert error.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_subscribers_get_only_the_venues_symbols_and_kinds_they_asked_for(
    bridge: BridgeProcess, bus: Bus
) -> None:
    a, b = new_venue(), new_venue()
    s1, s2 = new_symbol("X"), new_symbol("Y")
    requests = {
        "s1 trades on a": lv.SubscribeRequest(venues=[a], symbols=[s1], kinds=[lv.KIND_TRADES]),
        "s2 tickers anywhere": lv.SubscribeRequest(symbols=[s2], kinds=[lv.KIND_TICKERS]),
        "all of a": lv.SubscribeRequest(venues=[a], kinds=[lv.KIND_TRADES, lv.KIND_TICKERS]),
        "s1 on a and b": lv.SubscribeRequest(
            venues=[a, b], symbols=[s1], kinds=[lv.KIND_TRADES, lv.KIND_TICKERS]
        ),
    }
    stub = bridge.stub()
    calls = {name: (await subscribe(stub, request))[0] for name, request in requests.items()}
    published: list[md.MarketEvent] = []
    for venue in (a, b):
        for symbol in (s1, s2):
            trades = [trade(venue, symbol, f"t{i}") for i in range(3)]
            tickers = [ticker(venue, symbol, f"{100 + i}") for i in range(3)]
            bus.add_market(venue, "trades", trades)
            bus.add_market(venue, "tickers", tickers)
            published += trades + tickers
    await bus.flush()

    def wanted(request: lv.SubscribeRequest, event: md.MarketEvent) -> bool:
        kind = lv.KIND_TRADES if event.WhichOneof("payload") == "trade" else lv.KIND_TICKERS
        return (
            (not request.venues or event.venue in request.venues)
            and (not request.symbols or event.symbol in request.symbols)
            and kind in request.kinds
        )

    expected = {name: [e for e in published if wanted(r, e)] for name, r in requests.items()}
    received = {name: await read_until(calls[name], at_least(len(expected[name]))) for name in requests}
    # End markers: each subscription matches at least one of them.
    await bus.publish_market(a, "trades", [trade(a, s1, "end")])
    await bus.publish_market(a, "tickers", [ticker(a, s2, "end")])
    for name, call in calls.items():
        got = await read_until(
            call, lambda r: any(label(e)[3] == "end" for e in r.events), into=received[name]
        )
        before_end = [e for e in got.events if label(e)[3] != "end"]
        assert by_stream(before_end) == by_stream(expected[name]), name
        call.cancel()

    listed = await stub.ListStreams(lv.ListStreamsRequest(venues=[a]), timeout=CALL_TIMEOUT_S)
    assert [(s.venue, s.kind, s.symbol, s.events_total) for s in listed.streams] == sorted(
        [
            (a, lv.KIND_TRADES, s1, 4),  # with the end marker
            (a, lv.KIND_TRADES, s2, 3),
            (a, lv.KIND_TICKERS, s1, 3),
            (a, lv.KIND_TICKERS, s2, 4),
        ],
        key=lambda s: (s[1], s[2]),
    )


async def test_bars_and_candles_arrive_for_the_timeframes_asked_for(bridge: BridgeProcess, bus: Bus) -> None:
    venue, symbol = new_venue(), new_symbol("B")
    minute = 60 * 10**9
    one_minute = [bar(venue, symbol, common.TIMEFRAME_1_MINUTE, t * minute) for t in range(3)]
    five_minutes = [bar(venue, symbol, common.TIMEFRAME_5_MINUTES, t * 5 * minute) for t in range(2)]
    candles = [
        md.MarketEvent(
            venue=venue,
            symbol=symbol,
            candle=md.Candle(timeframe=timeframe, open_time_ns=t * minute, open="1", close="2", closed=True),
        )
        for timeframe in (common.TIMEFRAME_1_MINUTE, common.TIMEFRAME_5_MINUTES)
        for t in range(2)
    ]
    stub = bridge.stub()
    only_1m, _ = await subscribe(
        stub,
        lv.SubscribeRequest(venues=[venue], kinds=[lv.KIND_BARS], timeframes=[common.TIMEFRAME_1_MINUTE]),
    )
    every_bar, _ = await subscribe(stub, lv.SubscribeRequest(symbols=[symbol], kinds=[lv.KIND_BARS]))
    candles_5m, _ = await subscribe(
        stub,
        lv.SubscribeRequest(venues=[venue], kinds=[lv.KIND_CANDLES], timeframes=[common.TIMEFRAME_5_MINUTES]),
    )
    bus.add_bars("1m", one_minute)
    bus.add_bars("5m", five_minutes)
    bus.add_market(venue, "candles", candles)
    await bus.flush()
    so_far = await read_until(every_bar, lambda r: len(r.bars) >= 5)
    # End markers, published after the data arrived.
    end = 10**18
    bus.add_bars("1m", [bar(venue, symbol, common.TIMEFRAME_1_MINUTE, end)])
    bus.add_bars("5m", [bar(venue, symbol, common.TIMEFRAME_5_MINUTES, end)])
    end_candle = md.Candle(timeframe=common.TIMEFRAME_5_MINUTES, open_time_ns=end)
    bus.add_market(venue, "candles", [md.MarketEvent(venue=venue, symbol=symbol, candle=end_candle)])
    await bus.flush()

    def ended(received: Received) -> bool:
        times = [b.open_time_ns for b in received.bars] + [e.candle.open_time_ns for e in received.events]
        return end in times

    got_1m = await read_until(only_1m, ended)
    assert list(got_1m.bars[:-1]) == one_minute and got_1m.events == []
    got_all = await read_until(
        every_bar, lambda r: sum(b.open_time_ns == end for b in r.bars) == 2, into=so_far
    )
    assert sorted((b.timeframe, b.open_time_ns) for b in got_all.bars if b.open_time_ns != end) == sorted(
        (b.timeframe, b.open_time_ns) for b in one_minute + five_minutes
    )
    got_candles = await read_until(candles_5m, ended)
    assert [e.candle for e in got_candles.events[:-1]] == [c.candle for c in candles[2:]]
    assert got_candles.bars == []
    for call in (only_1m, every_bar, candles_5m):
        call.cancel()


async def test_a_book_subscriber_starts_from_a_snapshot_then_gets_every_delta_in_sequence(
    bridge: BridgeProcess, bus: Bus
) -> None:
    venue, symbol = new_venue(), new_symbol("K")
    model = Book(md.BookSnapshot(sequence=10, bids=[], asks=[]))
    bus.add_market(
        venue, "book", [book_snapshot(venue, symbol, 10, [("100", "1"), ("99", "2")], [("101", "1")])]
    )
    model.bids, model.asks = {"100": "1", "99": "2"}, {"101": "1"}
    for sequence in range(11, 31):
        delta = _delta(venue, symbol, sequence)
        model.apply(delta.book_delta)
        bus.add_market(venue, "book", [delta])
    await bus.flush()
    stub = bridge.stub()
    await _book_sequence(stub, venue, symbol, 30)

    request = lv.SubscribeRequest(venues=[venue], symbols=[symbol], kinds=[lv.KIND_BOOK])
    call, first = await subscribe(stub, request)
    assert [e.WhichOneof("payload") for e in first.events] == ["book_snapshot"]
    follower = Book(first.events[0].book_snapshot)
    assert follower.sequence == 30 and follower.levels() == model.levels()

    for sequence in range(31, 61):
        delta = _delta(venue, symbol, sequence)
        model.apply(delta.book_delta)
        bus.add_market(venue, "book", [delta])
        if sequence == 50:
            bus.add_market(venue, "book", [_delta(venue, symbol, 45)])  # written twice: at least once
    await bus.flush()
    received = await read_until(call, lambda r: any(e.book_delta.sequence == 60 for e in r.events))
    for event in received.events:
        follower.apply(event.book_delta)  # asserts each delta follows the previous one
    assert follower.sequence == 60 and follower.levels() == model.levels()

    # A hole on the bus: one GAP notice, deltas held back until the venue's next snapshot.
    bus.add_market(venue, "book", [_delta(venue, symbol, 62), _delta(venue, symbol, 63)])
    bus.add_market(venue, "book", [book_snapshot(venue, symbol, 70, [("98", "5")], [("103", "4")])])
    bus.add_market(venue, "book", [_delta(venue, symbol, 71)])
    await bus.flush()
    after = await read_until(call, lambda r: any(e.book_delta.sequence == 71 for e in r.events))
    assert [e.WhichOneof("payload") for e in after.events] == ["notice", "book_snapshot", "book_delta"]
    gap = after.events[0].notice
    assert gap.kind == md.NOTICE_KIND_GAP and gap.channel == md.CHANNEL_BOOK
    assert "does not follow 60" in gap.reason
    assert after.events[1].book_snapshot.sequence == 70
    call.cancel()
    await _book_sequence(stub, venue, symbol, 71)


def _delta(venue: str, symbol: str, sequence: int) -> md.MarketEvent:
    """A deterministic change: a level set, another removed, on both sides."""
    bids = [(f"{90 + sequence % 7}", f"{sequence % 4}"), ("100", str(sequence))]
    asks = [(f"{105 + sequence % 5}", f"{sequence % 3}")]
    return book_delta(venue, symbol, sequence, bids, asks)


async def _book_sequence(stub: object, venue: str, symbol: str, sequence: int) -> None:
    """Wait until the bridge's book of the symbol is at `sequence`."""
    for _ in range(200):
        listed = await stub.ListStreams(  # type: ignore[attr-defined]
            lv.ListStreamsRequest(venues=[venue], kinds=[lv.KIND_BOOK]), timeout=CALL_TIMEOUT_S
        )
        if [(s.symbol, s.book_sequence) for s in listed.streams] == [(symbol, sequence)]:
            return
        await asyncio.sleep(0.05)
    pytest.fail(f"the bridge's book never reached {sequence}: {listed}")


async def test_a_starting_bridge_rebuilds_the_books_from_the_bus_and_skips_the_backlog(
    bus_url: str, bus: Bus, tmp_path: Path
) -> None:
    venue, s1, s2 = new_venue(), new_symbol("R"), new_symbol("S")
    model = Book(md.BookSnapshot(sequence=1))
    bus.add_market(venue, "book", [book_snapshot(venue, s1, 1, [], [])])
    # More entries than one page of the look-back (500), and s2's snapshot among them.
    for sequence in range(2, 801):
        delta = _delta(venue, s1, sequence)
        model.apply(delta.book_delta)
        events = [delta]
        if sequence == 400:
            events.append(book_snapshot(venue, s2, 5, [("10", "1")], [("11", "2")]))
        bus.add_market(venue, "book", events)
    bus.add_market(venue, "trades", [trade(venue, s1, "before the bridge started")])
    await bus.flush()

    fresh = start_bridge(bus_url, tmp_path)
    try:
        stub = fresh.stub()
        request = lv.SubscribeRequest(venues=[venue], kinds=[lv.KIND_BOOK, lv.KIND_TRADES])
        call, first = await subscribe(stub, request)
        snapshots = {e.symbol: e.book_snapshot for e in first.events}
        assert sorted(snapshots) == sorted([s1, s2])
        rebuilt = Book(snapshots[s1])
        assert rebuilt.sequence == 800 and rebuilt.levels() == model.levels()
        assert snapshots[s2] == md.BookSnapshot(
            sequence=5, bids=[md.BookLevel(price="10", size="1")], asks=[md.BookLevel(price="11", size="2")]
        )
        await bus.publish_market(venue, "trades", [trade(venue, s1, "after")])
        received = await read_until(call, lambda r: bool(r.trade_ids()))
        assert received.trade_ids() == ["after"], "a live bridge does not replay the backlog"
        call.cancel()
    finally:
        assert await fresh.stop() == 0, fresh.log()
    groups = await bus.redis.xinfo_groups(f"md.{{{venue}}}.trades")
    assert fresh.group.encode() not in [g["name"] for g in groups], "a stopped bridge removes its group"


async def test_bad_requests_name_every_bad_field(bridge: BridgeProcess) -> None:
    stub = bridge.stub()
    request = lv.SubscribeRequest(
        venues=["sim", "Not A Venue"],
        symbols=["BTC/USDT", "BTCUSDT"],
        kinds=[lv.KIND_TRADES, lv.KIND_UNSPECIFIED, 42],  # type: ignore[list-item]
        timeframes=[common.TIMEFRAME_1_MINUTE, 99],  # type: ignore[list-item]
        overflow_policy=7,  # type: ignore[arg-type]
    )
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await asyncio.wait_for(stub.Subscribe(request).read(), CALL_TIMEOUT_S)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    violations = dict(bad_request_violations(error.value))
    assert sorted(violations) == sorted(
        ["venues[1]", "symbols[1]", "kinds[1]", "kinds[2]", "timeframes", "timeframes[1]", "overflow_policy"]
    )
    assert "BTC/USDT" in violations["symbols[1]"] and "canonical" in violations["symbols[1]"]
    assert "KIND_BOOK" in violations["kinds[1]"]

    with pytest.raises(grpc.aio.AioRpcError) as error:
        await asyncio.wait_for(stub.Subscribe(lv.SubscribeRequest(venues=["sim"])).read(), CALL_TIMEOUT_S)
    assert dict(bad_request_violations(error.value)).keys() == {"kinds"}

    with pytest.raises(grpc.aio.AioRpcError) as error:
        await stub.ListStreams(lv.ListStreamsRequest(venues=["UPPER"]), timeout=CALL_TIMEOUT_S)
    assert dict(bad_request_violations(error.value)).keys() == {"venues[0]"}


async def test_prices_in_events_pass_through_unchanged(bridge: BridgeProcess, bus: Bus) -> None:
    venue, symbol = new_venue(), new_symbol("P")
    call, _ = await subscribe(bridge.stub(), lv.SubscribeRequest(venues=[venue], kinds=[lv.KIND_TRADES]))
    sent = trade(venue, symbol, "p1", price="65000.50", size="0.00100")
    await bus.publish_market(venue, "trades", [sent])
    received = await read_until(call, lambda r: bool(r.events))
    assert received.events == [sent] and Decimal(received.events[0].trade.price) == Decimal("65000.5")
    call.cancel()


async def test_a_stream_deleted_under_the_bridge_does_not_end_other_subscriptions(
    bridge: BridgeProcess, bus: Bus
) -> None:
    doomed, venue, symbol = new_venue(), new_venue(), new_symbol("D")
    call, _ = await subscribe(
        bridge.stub(), lv.SubscribeRequest(venues=[doomed, venue], kinds=[lv.KIND_TRADES])
    )
    await bus.publish_market(doomed, "trades", [trade(doomed, symbol, "1")])
    await read_until(call, lambda r: r.trade_ids() == ["1"])  # found: the bridge reads it now
    await bus.redis.delete(f"md.{{{doomed}}}.trades")  # fails the bridge's blocked read
    await bus.publish_market(venue, "trades", [trade(venue, symbol, "2")])
    received = await read_until(call, lambda r: bool(r.trade_ids()))
    assert received.trade_ids() == ["2"]
    call.cancel()


def _derivative_events(venue: str, symbol: str, tag: str) -> dict[str, md.MarketEvent]:
    """One event of each derivatives channel (as ingest puts them on md.{<venue>}.<channel>)."""
    now = time.time_ns()

    def event(**payload: Any) -> md.MarketEvent:
        return md.MarketEvent(venue=venue, symbol=symbol, ts_event_ns=now, ts_recv_ns=now, **payload)

    funding = md.FundingRate(rate=f"0.0001{tag}", next_funding_ns=now + 3600 * 10**9, mark_price="65001.5")
    return {
        "funding": event(funding_rate=funding),
        "mark": event(mark_price=md.MarkPrice(mark_price=f"65002.{tag}", index_price="64999.9")),
        "open_interest": event(open_interest=md.OpenInterest(size=f"1234.5{tag}", value="80000000")),
        "liquidations": event(
            liquidation=md.Liquidation(side=common.SIDE_SELL, price="64000.1", size=f"0.25{tag}")
        ),
    }


_DERIVATIVE_KINDS = {
    "funding": lv.KIND_FUNDING,
    "mark": lv.KIND_MARK,
    "open_interest": lv.KIND_OPEN_INTEREST,
    "liquidations": lv.KIND_LIQUIDATIONS,
}


async def test_a_perpetuals_funding_mark_open_interest_and_liquidations_reach_their_subscribers(
    bridge: BridgeProcess, bus: Bus
) -> None:
    venue, symbol = new_venue(), new_symbol("P").replace("/USDT", "/USDT:USDT")
    stub = bridge.stub()
    every, _ = await subscribe(
        stub, lv.SubscribeRequest(venues=[venue], symbols=[symbol], kinds=list(_DERIVATIVE_KINDS.values()))
    )
    marks, _ = await subscribe(stub, lv.SubscribeRequest(venues=[venue], kinds=[lv.KIND_MARK]))
    trades, _ = await subscribe(stub, lv.SubscribeRequest(venues=[venue], kinds=[lv.KIND_TRADES]))
    sent = _derivative_events(venue, symbol, "1")
    for channel, event in sent.items():
        bus.add_market(venue, channel, [event])
    # A GAP on the funding stream reaches its kind's subscribers too.
    gap = md.MarketEvent(
        venue=venue,
        symbol=symbol,
        notice=md.StreamNotice(kind=md.NOTICE_KIND_GAP, channel=md.CHANNEL_FUNDING, reason="test"),
    )
    bus.add_market(venue, "funding", [gap])
    await bus.flush()

    received = await read_until(every, at_least(len(sent) + 1))
    payloads = {e.WhichOneof("payload"): e for e in received.events}
    for channel, event in sent.items():
        assert payloads[event.WhichOneof("payload")] == event, channel
    assert payloads["notice"] == gap
    assert len(received.events) == len(sent) + 1, received.events

    # The mark-only subscriber got the mark alone (an end marker after it proves nothing else came).
    end = _derivative_events(venue, symbol, "9")["mark"]
    await bus.publish_market(venue, "mark", [end])
    got = await read_until(marks, lambda r: end in r.events)
    assert got.events == [sent["mark"], end]
    await bus.publish_market(venue, "trades", [trade(venue, symbol, "end")])
    assert (await read_until(trades, lambda r: bool(r.events))).trade_ids() == ["end"]
    for call in (every, marks, trades):
        call.cancel()

    listed = await stub.ListStreams(lv.ListStreamsRequest(venues=[venue]), timeout=CALL_TIMEOUT_S)
    kinds = {(s.kind, s.symbol): s.events_total for s in listed.streams}
    assert kinds[(lv.KIND_MARK, symbol)] == 2 and kinds[(lv.KIND_FUNDING, symbol)] == 1, kinds
    assert kinds[(lv.KIND_OPEN_INTEREST, symbol)] == 1 and kinds[(lv.KIND_LIQUIDATIONS, symbol)] == 1, kinds
