"""The sim's synthetic market through the runtime feed, in process (no gRPC)."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Iterable
from decimal import Decimal
from pathlib import Path

import pytest

from trademesh.core.domain.book import L2Book
from trademesh.core.domain.model import Channel, Execution, Side, StreamKey, Timeframe
from trademesh.core.platform.errors import InvalidArgument
from trademesh.core.platform.rpc.fanout import Overflow
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.venues.runtime.fanout import MarketFanout, MarketInterest
from trademesh.venues.runtime.feed import MarketFeed
from trademesh.venues.runtime.stats import StreamTable
from trademesh.venues.runtime.venue import VenueContext
from trademesh.venues.sim.config import SimConfig, SymbolConfig, load_config
from trademesh.venues.sim.venue import SimVenue

TAKERS_PER_S = 500
FAST = SymbolConfig(
    symbol="BTC/USDT",
    start_price=Decimal("65000"),
    tick_size=Decimal("0.01"),
    lot_size=Decimal("0.00001"),
    trades_per_s=TAKERS_PER_S,
    book_updates_per_s=5000,
    level_spacing_ticks=100,
    maker_size_lots=5000,
    taker_size_lots=1000,
    volatility_per_sqrt_s=0.0005,
)  # fmt: skip


class Tape:
    """Every trade the feed sends, read through a real fan-out subscriber."""

    def __init__(self, feed: MarketFeed, symbol: str) -> None:
        fanout = MarketFanout(10**9, lambda symbol, channel: b"")
        feed.attach(fanout)
        self.fanout = fanout
        self.subscriber = fanout.subscribe(
            MarketInterest(frozenset({(symbol, Channel.TRADES, None)}), Overflow.DISCONNECT), b""
        )

    def trades(self) -> list[tuple[str, str, int]]:
        self.fanout.end_all()
        return asyncio.run(self._read())

    async def _read(self) -> list[tuple[str, str, int]]:
        found: list[tuple[str, str, int]] = []
        async for batch in self.subscriber.batches():
            events = md.SubscribeResponse.FromString(batch).events
            found += [(e.trade.price, e.trade.size, e.trade.taker_side) for e in events]
        return found


def _venue(config: SimConfig) -> tuple[SimVenue, MarketFeed, list[Execution]]:
    venue = SimVenue(config)
    feed = MarketFeed("sim", StreamTable())
    executions: list[Execution] = []
    venue.publisher.attach(VenueContext(feed, executions.append), venue.default_streams())
    venue.market.prime()
    return venue, feed, executions


def _run(venue: SimVenue, feed: MarketFeed, steps: int) -> None:
    for _ in range(steps):
        venue.market.step()
        feed.flush()


def _engine_levels(venue: SimVenue, symbol: str, side: Side) -> list[tuple[str, str]]:
    ex = venue.exchange
    return [(ex.price_str(symbol, p), ex.size_str(symbol, n)) for p, n in ex.book(symbol).depth(side)]


def test_book_deltas_reproduce_the_matching_engine_book() -> None:
    venue, feed, _ = _venue(SimConfig(symbols=(FAST,)))
    _run(venue, feed, 300)
    bids, asks = feed.book("BTC/USDT").snapshot()
    assert bids == _engine_levels(venue, "BTC/USDT", Side.BUY)
    assert asks == _engine_levels(venue, "BTC/USDT", Side.SELL)
    assert len(bids) > 5 and len(asks) > 5


def test_the_same_seed_gives_the_same_tape() -> None:
    tapes = []
    for _ in range(2):
        venue, feed, _ = _venue(SimConfig(seed=11, symbols=(FAST,)))
        tape = Tape(feed, "BTC/USDT")
        _run(venue, feed, 200)
        tapes.append(tape.trades())
    assert len(tapes[0]) > 100
    assert tapes[0] == tapes[1]


def test_another_seed_gives_another_tape() -> None:
    tapes = []
    for seed in (1, 2):
        venue, feed, _ = _venue(SimConfig(seed=seed, symbols=(FAST,)))
        tape = Tape(feed, "BTC/USDT")
        _run(venue, feed, 100)
        tapes.append(tape.trades())
    assert tapes[0] != tapes[1]


def test_trade_rate_follows_the_configuration() -> None:
    venue, feed, _ = _venue(SimConfig(symbols=(FAST,)))
    tape = Tape(feed, "BTC/USDT")
    _run(venue, feed, 100)  # one second of market time
    # Each taker prints one trade per maker order it hits.
    assert TAKERS_PER_S <= len(tape.trades()) <= TAKERS_PER_S * 6


def test_a_resting_user_order_fills_against_synthetic_flow() -> None:
    from trademesh.core.domain.model import OrderRequest, OrderStatus, OrderType, TimeInForce

    venue, feed, executions = _venue(SimConfig(symbols=(FAST,)))
    best_bid = venue.exchange.book("BTC/USDT").best_bid()
    assert best_bid is not None
    price = venue.exchange.price_of("BTC/USDT", best_bid)
    order, _ = venue.exchange.place(
        OrderRequest("BTC/USDT", Side.BUY, OrderType.LIMIT, Decimal("0.01"), price, TimeInForce.GTC)
    )
    for _ in range(500):
        _run(venue, feed, 1)
        if venue.exchange.get(order.order_id).status is OrderStatus.FILLED:
            break
    assert venue.exchange.get(order.order_id).status is OrderStatus.FILLED
    fills = [e.fill for e in executions if e.fill is not None and e.order.order_id == order.order_id]
    assert sum(f.size for f in fills) == Decimal("0.01")
    assert all(f.price <= price for f in fills)


def test_removed_streams_stop_publishing() -> None:
    venue, feed, _ = _venue(SimConfig(symbols=(FAST,)))
    only_book = {StreamKey("BTC/USDT", Channel.BOOK)}
    asyncio.run(_set_streams(venue, feed, only_book))
    before = feed.stats("BTC/USDT", Channel.TRADES).events_total
    _run(venue, feed, 50)
    assert feed.stats("BTC/USDT", Channel.TRADES).events_total == before
    assert feed.stats("BTC/USDT", Channel.BOOK).events_total > 0


async def _set_streams(venue: SimVenue, feed: MarketFeed, keys: set[StreamKey]) -> None:
    venue._context = VenueContext(feed, lambda e: None)
    await venue.set_streams(keys)


def test_config_rejects_unknown_keys_naming_them(tmp_path: Path) -> None:
    path = tmp_path / "sim.toml"
    path.write_text("seed = 3\nspeed = 9\n")
    with pytest.raises(InvalidArgument, match="speed: unknown key"):
        load_config(path)


def test_config_rejects_bad_symbol_values(tmp_path: Path) -> None:
    path = tmp_path / "sim.toml"
    path.write_text('[[symbols]]\nsymbol = "BTC/USDT"\nstart_price = "65000.005"\ntick_size = "0.01"\n'
                    'lot_size = "0.001"\n')  # fmt: skip
    with pytest.raises(InvalidArgument, match=r"symbols\[0\].start_price: must be a multiple of tick_size"):
        load_config(path)


def test_config_reads_symbols_and_balances(tmp_path: Path) -> None:
    path = tmp_path / "sim.toml"
    lines = [
        "seed = 3",
        "[balances]",
        'USDT = "5"',
        "[[symbols]]",
        'symbol = "ETH/USDT"',
        'start_price = "3000"',
        'tick_size = "0.1"',
        'lot_size = "0.001"',
        "trades_per_s = 5",
    ]
    path.write_text("\n".join(lines) + "\n")
    config = load_config(path)
    assert config.seed == 3
    assert config.balances == (("USDT", Decimal("5")),)
    assert [s.symbol for s in config.symbols] == ["ETH/USDT"]
    assert config.symbols[0].trades_per_s == 5.0


def test_the_synthetic_book_stays_bounded_however_long_it_runs() -> None:
    venue, feed, _ = _venue(SimConfig(symbols=(FAST,)))
    _run(venue, feed, 2000)  # 20 s of market time, 100,000 maker actions
    resting = len(venue.exchange.book("BTC/USDT"))
    assert 0 < resting <= 2 * FAST.book_depth_levels * 8


def _thinnest_side(config: SimConfig, steps: int) -> int:
    """The fewest levels either side of any symbol's book held after any of `steps` steps."""
    venue, feed, _ = _venue(config)
    thinnest = 99
    for _ in range(steps):
        _run(venue, feed, 1)
        for symbol in (s.symbol for s in config.symbols):
            book = venue.exchange.book(symbol)
            thinnest = min(thinnest, len(book.depth(Side.BUY)), len(book.depth(Side.SELL)))
    return thinnest


def test_the_default_market_always_quotes_both_sides() -> None:
    # BTC/USDT's default volatility moves the mid through many levels a second: the side it
    # moves towards loses its quotes and must be refilled before a taker empties it.
    assert _thinnest_side(SimConfig(), 6000) >= 2  # 60 s of market time


def test_a_market_of_long_steps_and_few_book_updates_quotes_both_sides() -> None:
    # The test suite's sims (50 ms steps, a quarter of the book updates): the side the mid moves
    # towards is refilled to half its levels at once; one level a step left BTC/USDT's empty.
    symbols = tuple(dataclasses.replace(s, book_updates_per_s=100.0) for s in SimConfig().symbols)
    assert _thinnest_side(SimConfig(tick_interval_ms=50, symbols=symbols), 2400) >= 2  # 120 s


async def test_history_s_fills_the_candles_before_the_sim_opens_and_publishes_none_of_it() -> None:
    config = SimConfig(symbols=(FAST,), history_s=30)
    venue = SimVenue(config)
    feed = MarketFeed("sim", StreamTable())
    tape = Tape(feed, "BTC/USDT")
    before = time.time_ns()
    await venue.start(VenueContext(feed, lambda e: None), venue.default_streams())
    opened = time.time_ns()
    try:
        candles = await venue.candles("BTC/USDT", Timeframe.S1, 0, 2**63 - 1, 1000)
        closed = [c for c in candles if c.closed]
        # Every second of the 30 played, and of the time playing them took, in simulated time
        # ending when it opened, closed.
        assert 29 <= len(closed) <= 31 + (opened - before) // 10**9, len(closed)
        assert closed[-1].open_time_ns < opened
        assert closed[0].open_time_ns >= before - 31 * 10**9
        assert sum(c.trade_count for c in closed) >= 29 * TAKERS_PER_S // 2
        # The book starts as the matching engine's book after its history, not as a resync.
        bids, asks = feed.book("BTC/USDT").snapshot()
        assert bids == _engine_levels(venue, "BTC/USDT", Side.BUY) and len(asks) > 5
        assert feed.stats("BTC/USDT", Channel.BOOK).resyncs == 0
    finally:
        await venue.stop()
    tape.fanout.end_all()
    # Any trade on the stream was made live, after the sim opened: none from its history.
    assert all(ts >= before for ts in [t async for t in _trade_times(tape)])


async def test_the_history_reaches_the_moment_the_sim_opens_however_long_its_play_took() -> None:
    """The seconds spent playing the history (the demo market's 20 minutes take seconds) are
    played after it, so the candles have no hole where the live market begins."""
    venue = SimVenue(SimConfig(symbols=(FAST,), history_s=10, tick_interval_ms=50))
    started = 1_767_225_600 * 10**9
    # The wall clock after each pass: the 10 s took 7 s to play, their catch-up 30 ms.
    readings = iter([started + 7 * 10**9, started + 7 * 10**9 + 30_000_000])
    venue.market.prime()
    venue._play_history(started, wall=lambda: next(readings))
    candles = await venue.candles("BTC/USDT", Timeframe.S1, 0, 2**63 - 1, 1000)
    seconds = [(c.open_time_ns - started) // 10**9 for c in candles if c.closed]
    assert seconds == list(range(-10, 7)), seconds  # every second up to the opening, closed


async def test_without_history_s_the_sim_opens_with_no_candles() -> None:
    venue = SimVenue(SimConfig(symbols=(FAST,)))
    feed = MarketFeed("sim", StreamTable())
    await venue.start(VenueContext(feed, lambda e: None), venue.default_streams())
    try:
        assert await venue.candles("BTC/USDT", Timeframe.S1, 0, 2**63 - 1, 1000) == []
    finally:
        await venue.stop()


async def test_at_each_ticker_the_book_from_the_events_before_it_has_the_tickers_top() -> None:
    """What a client may rely on with the sim (docs/connector.md, "Messages and event order"): a
    step's book changes go out before its ticker. A subscriber that fell behind gets several
    steps in one message, so that holds at each ticker event, not at a message's end."""
    venue = SimVenue(SimConfig(symbols=(FAST,), ticker_interval_ms=10))
    feed = MarketFeed("sim", StreamTable())
    fanout = MarketFanout(10**9, lambda symbol, channel: b"")
    feed.attach(fanout)
    routes = frozenset({("BTC/USDT", Channel.BOOK, None), ("BTC/USDT", Channel.TICKERS, None)})
    subscriber = fanout.subscribe(MarketInterest(routes, Overflow.DISCONNECT), b"")
    await venue.start(VenueContext(feed, lambda e: None), venue.default_streams())
    try:
        # The market loop runs (30 tickers, however loaded the machine); the subscriber reads
        # nothing meanwhile.
        deadline = time.monotonic() + 30
        while feed.stats("BTC/USDT", Channel.TICKERS).events_total < 30:
            assert time.monotonic() < deadline, "the sim made fewer than 30 tickers in 30 s"
            await asyncio.sleep(0.02)
    finally:
        await venue.stop()
    fanout.end_all()
    book, checked, stale_at_message_end = L2Book(), 0, 0
    async for raw in subscriber.batches():
        tops = []
        for event in md.SubscribeResponse.FromString(raw).events:
            if event.HasField("book_delta"):
                delta = event.book_delta
                assert delta.sequence == book.sequence + 1
                book.apply(delta.sequence, _levels(delta.bids), _levels(delta.asks))
            elif event.HasField("ticker"):
                assert _top(book) == _ticker_top(event.ticker), f"at sequence {book.sequence}"
                tops.append(_top(book))
        checked += len(tops)
        stale_at_message_end += sum(top != _top(book) for top in tops)
    assert checked > 10
    # Joined steps: checked at its message's end instead, some ticker would not match.
    assert stale_at_message_end > 0


def _levels(levels: Iterable[md.BookLevel]) -> list[tuple[str, str]]:
    return [(level.price, level.size) for level in levels]


def _top(book: L2Book) -> tuple[tuple[str, str], tuple[str, str]]:
    bids, asks = book.snapshot(1)
    return (bids[0] if bids else ("", "")), (asks[0] if asks else ("", ""))


def _ticker_top(ticker: md.Ticker) -> tuple[tuple[str, str], tuple[str, str]]:
    return (ticker.best_bid, ticker.best_bid_size), (ticker.best_ask, ticker.best_ask_size)


async def _trade_times(tape: Tape) -> AsyncIterator[int]:
    async for batch in tape.subscriber.batches():
        for event in md.SubscribeResponse.FromString(batch).events:
            if event.HasField("trade"):
                yield event.ts_event_ns
