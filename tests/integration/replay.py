"""Helpers of the replay tests: live venue processes fed by recorded sessions, and event collection.

A replay venue is `trademesh venue <name> --replay <capture files>` run exactly as an
operator would; its ccxt.pro client talks to the in-process stand-in in the exchange's
own wire formats. Tests compare what comes out over gRPC with the capture itself.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

import grpc
import pytest

from tests.integration.support import CALL_TIMEOUT_S, VENUE_ENV, Stubs, Venue, stop_venue
from trademesh.admin.v1 import admin_pb2 as admin
from trademesh.core.platform.service.process import start_service
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.venues.replay.server import DRAINED

ROOT = Path(__file__).resolve().parents[2]
# Every session the tests replay lives in the repository (fixtures/exchange-captures/README.md).
CAPTURES = ROOT / "fixtures" / "exchange-captures"
ALL_CHANNELS = [md.CHANNEL_TRADES, md.CHANNEL_BOOK, md.CHANNEL_CANDLES, md.CHANNEL_TICKERS]


def capture_files(prefix: str) -> list[Path]:
    """The files of one recorded session (e.g. "BINANCE") in the repository's fixtures."""
    files = sorted(p for p in CAPTURES.glob(f"{prefix}.*") if p.name.split(".")[-1].isdigit())
    if not files:
        raise FileNotFoundError(f"no capture {prefix}.* in {CAPTURES}")
    return files


def start_replay_venue(
    directory: Path,
    name: str,
    files: Sequence[Path],
    faults: Sequence[str] = (),
    env: dict[str, str] | None = None,
    config: str | None = None,
    paced: bool = False,
    speed: float | None = None,
    extra: Sequence[str] = (),
) -> tuple[Venue, IO[str]]:
    """`speed`: paced at that many times the recorded pace (`paced`: at the recorded pace);
    `extra`: more arguments (`--paper`)."""
    args = ["venue", name, *extra, "--port", "0", "--metrics-port", "0", "--replay", *map(str, files)]
    if paced:
        args.append("--replay-paced")
    if speed is not None:
        args += ["--replay-speed", str(speed)]
    for fault in faults:
        args += ["--replay-fault", fault]
    if config is not None:
        path = directory / f"{name}.toml"
        path.write_text(config)
        args += ["--config", str(path)]
    log_path = directory / f"{name}-replay.log"
    log_file = log_path.open("w")
    service = start_service(args, env={**VENUE_ENV, **(env or {})}, stderr=log_file, timeout_s=60)
    return Venue(service, log_path), log_file


@contextlib.asynccontextmanager
async def running_replay_venue(
    directory: Path, request: pytest.FixtureRequest, name: str, files: Sequence[Path]
) -> AsyncIterator[Venue]:
    """A replay venue started with the test's `replay` marker's kwargs, stopped afterwards."""
    marker = request.node.get_closest_marker("replay")
    venue, log = start_replay_venue(directory, name, files, **(marker.kwargs if marker else {}))
    try:
        yield venue
    finally:
        await stop_venue(venue, log)


def replay_venue_fixture(name: str, files: Sequence[Path]) -> Any:
    """A `replay_venue` fixture of one venue: `replay_venue = replay_venue_fixture("binance", FILES)`.

    The test's own venue: for tests that trade, inject faults, pace, or set options.
    """

    @pytest.fixture
    async def replay_venue(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Venue]:
        async with running_replay_venue(tmp_path, request, name, files) as venue:
            yield venue

    return replay_venue


@dataclass(frozen=True)
class Session:
    """A live venue's recorded session, the channels its venue streams from it, and how long
    its subscriber reads on after the last message (the first must come within it too)."""

    prefix: str
    channels: tuple[md.Channel.ValueType, ...] = tuple(ALL_CHANNELS)
    quiet_s: float = 3.0

    def files(self) -> list[Path]:
        return capture_files(self.prefix)


_NO_CANDLES = (md.CHANNEL_TRADES, md.CHANNEL_BOOK, md.CHANNEL_TICKERS)
_AND_FUNDING = (*ALL_CHANNELS, md.CHANNEL_FUNDING)
# Every live venue's session (ccxt.pro has no watch_ohlcv for coinbase; Deribit's has no candles,
# and its ccxt paces its 40 subscriptions over about 2 s).
SESSIONS = {
    "binance": Session("BINANCE"),
    "bybit": Session("BYBIT"),
    "kraken": Session("KRAKEN"),
    "okx": Session("OKX"),
    "coinbase": Session("COINBASE", _NO_CANDLES),
    "binanceusdm": Session("BINANCE_FUTURES", _AND_FUNDING),
    "okx-swap": Session("OKX_SWAP"),
    "deribit": Session("DERIBIT", _NO_CANDLES, quiet_s=5.0),
}


class SharedReplay:
    """One replay venue of a session, shared by the tests that only read from it, and the one
    record of what its subscriber received.

    The stand-in plays its capture once, to the subscribers there when playback starts
    (trademesh/venues/replay/server.py): a second subscriber would get nothing, or the tail of a replay
    still running. So the first test to ask subscribes to every instrument on every channel
    of the session and reads the whole replay; every test gets that same record.
    """

    def __init__(self, name: str, venue: Venue, log: IO[str]) -> None:
        self.name = name
        self.venue = venue
        self._log = log
        self._collected: Collected | None = None
        self._lock = asyncio.Lock()

    async def collected(self) -> Collected:
        """Everything the replay streamed, every symbol and channel of the session."""
        async with self._lock:
            if self._collected is None:
                stubs = self.venue.stubs()
                symbols = sorted((await instruments(stubs)).values())
                session = SESSIONS[self.name]
                self._collected = await collect(
                    stubs, symbols, session.channels, quiet_s=session.quiet_s, played=self.venue.log_path
                )
            return self._collected

    async def stop(self) -> None:
        await stop_venue(self.venue, self._log)


class ReplaySessions:
    """The shared replay venues of a test process, one per session, each started on first use."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._started: dict[str, SharedReplay] = {}

    def get(self, name: str) -> SharedReplay:
        if name not in self._started:
            folder = self._directory / name
            folder.mkdir()
            venue, log = start_replay_venue(folder, name, SESSIONS[name].files())
            self._started[name] = SharedReplay(name, venue, log)
        return self._started[name]

    async def stop(self) -> None:
        """Stop every one (an exit stack runs each stop, whatever an earlier one raised)."""
        started, self._started = list(self._started.values()), {}
        async with contextlib.AsyncExitStack() as stack:
            for shared in started:
                stack.push_async_callback(shared.stop)


@pytest.fixture(scope="session")
async def replay_sessions(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ReplaySessions]:
    """The shared replay venues (tests/workers.py keeps their tests in one xdist worker)."""
    sessions = ReplaySessions(tmp_path_factory.mktemp("replay-shared"))
    try:
        yield sessions
    finally:
        await sessions.stop()


def shared_replay_fixture(name: str) -> Any:
    """A `shared_replay` fixture of one venue: `shared_replay = shared_replay_fixture("binance")`.

    For read-only tests: no trading, no faults, no options (those take `replay_venue_fixture`).
    """

    @pytest.fixture
    def shared_replay(replay_sessions: ReplaySessions) -> SharedReplay:
        return replay_sessions.get(name)

    return shared_replay


@dataclass
class Collected:
    """Everything one subscriber received, by symbol and kind, in arrival order."""

    events: list[md.MarketEvent] = field(default_factory=list)

    def of(self, symbol: str, kind: str) -> list[md.MarketEvent]:
        return [e for e in self.events if e.symbol == symbol and e.WhichOneof("payload") == kind]

    def counts(self) -> collections.Counter[tuple[str, str]]:
        return collections.Counter((e.symbol, str(e.WhichOneof("payload"))) for e in self.events)

    def notices(self, kind: int | None = None) -> list[md.MarketEvent]:
        return [e for e in self.events if e.HasField("notice") and kind in (None, e.notice.kind)]

    def trades(self, symbol: str) -> list[tuple[Any, ...]]:
        """(trade id, price, size, taker side, event time in ms) of each trade."""
        return [
            (
                e.trade.trade_id,
                Decimal(e.trade.price),
                Decimal(e.trade.size),
                e.trade.taker_side,
                e.ts_event_ns // 1_000_000,
            )
            for e in self.of(symbol, "trade")
        ]

    def tickers(
        self, symbol: str, last_price: bool = False, blank_as_none: bool = False
    ) -> list[tuple[Decimal | None, ...]]:
        """(best bid, its size, best ask, its size[, last price]) of each ticker.

        A blank field is an error unless blank_as_none (then it reads as None).
        """
        rows: list[tuple[Decimal | None, ...]] = []
        for e in self.of(symbol, "ticker"):
            t = e.ticker
            texts = [t.best_bid, t.best_bid_size, t.best_ask, t.best_ask_size]
            if last_price:
                texts.append(t.last_price)
            rows.append(tuple(None if blank_as_none and not text else Decimal(text) for text in texts))
        return rows

    def volumes(self, symbol: str) -> list[tuple[Decimal | None, Decimal | None]]:
        """(24h base volume, 24h quote volume) of each ticker; None where it states none."""
        return [
            tuple(Decimal(text) if text else None for text in (t.base_volume_24h, t.quote_volume_24h))  # type: ignore[misc]
            for t in (e.ticker for e in self.of(symbol, "ticker"))
        ]

    def funding(self, symbol: str) -> list[tuple[Any, ...]]:
        """(rate, next funding time ns, mark price, index price, event time ms) of each funding rate."""
        rows: list[tuple[Any, ...]] = []
        for e in self.of(symbol, "funding_rate"):
            f = e.funding_rate
            prices = (Decimal(f.mark_price), Decimal(f.index_price))
            rows.append((Decimal(f.rate), f.next_funding_ns, *prices, e.ts_event_ns // 1_000_000))
        return rows

    def candles(self, symbol: str, closed: bool = False) -> list[tuple[Any, ...]]:
        """(open time in ms, open, high, low, close, volume[, closed]) of each candle update."""
        rows: list[tuple[Any, ...]] = []
        for e in self.of(symbol, "candle"):
            c = e.candle
            values = (Decimal(c.open), Decimal(c.high), Decimal(c.low), Decimal(c.close), Decimal(c.volume))
            row = (c.open_time_ns // 1_000_000, *values)
            rows.append((*row, c.closed) if closed else row)
        return rows

    def book(self, symbol: str) -> tuple[dict[Decimal, Decimal], dict[Decimal, Decimal]]:
        """The book after the last snapshot and every delta after it (sequence checked)."""
        bids: dict[Decimal, Decimal] = {}
        asks: dict[Decimal, Decimal] = {}
        sequence = None
        for event in self.events:
            if event.symbol != symbol:
                continue
            if event.HasField("book_snapshot"):
                bids, asks = {}, {}
                _apply(bids, event.book_snapshot.bids)
                _apply(asks, event.book_snapshot.asks)
                sequence = event.book_snapshot.sequence
            elif event.HasField("book_delta"):
                assert sequence is not None and event.book_delta.sequence == sequence + 1, "sequence gap"
                _apply(bids, event.book_delta.bids)
                _apply(asks, event.book_delta.asks)
                sequence = event.book_delta.sequence
        return bids, asks


def _apply(side: dict[Decimal, Decimal], levels: Sequence[md.BookLevel]) -> None:
    for level in levels:
        price, size = Decimal(level.price), Decimal(level.size)
        if size == 0:
            side.pop(price, None)
        else:
            side[price] = size


def resync_done(collected: Collected) -> bool:
    """A fault's outcome to read until (`collect(until=...)`): a resync notice, and after each
    resynced symbol's notice its book snapshot again. The venue fetches that snapshot after the
    fault, its own work: on a loaded machine it can come after any quiet (a CI run read until
    quiet and saw no resync)."""
    pending: set[str] = set()
    seen = False
    for event in collected.events:
        if event.HasField("notice") and event.notice.kind == md.NOTICE_KIND_RESYNC:
            pending.add(event.symbol)
            seen = True
        elif event.HasField("book_snapshot"):
            pending.discard(event.symbol)
    return seen and not pending


async def instruments(stubs: Stubs) -> dict[str, str]:
    """native symbol -> canonical symbol, as the venue lists them."""
    answer = await stubs.md.ListInstruments(md.ListInstrumentsRequest(), timeout=10)
    return {i.native_symbol: i.symbol for i in answer.instruments}


# The stand-in's tally, logged once playback has ended (trademesh/venues/replay/server.py, tally.summary()).
_PLAYED_LINE = "captured frames served"
PLAYED_QUIET_S = 1.5
# Of a payload, the stream (channel) whose events Admin counts (events_total; notices are not).
_CHANNEL_OF = {
    "trade": md.CHANNEL_TRADES,
    "book_snapshot": md.CHANNEL_BOOK,
    "book_delta": md.CHANNEL_BOOK,
    "ticker": md.CHANNEL_TICKERS,
    "candle": md.CHANNEL_CANDLES,
    "funding_rate": md.CHANNEL_FUNDING,
}


def _says(log: Path, line: str) -> bool:
    return line in log.read_text(errors="replace")


async def _has_it_all(
    stubs: Stubs,
    collected: Collected,
    symbols: Sequence[str],
    channels: Sequence[md.Channel.ValueType],
    played: Path,
) -> bool:
    """The venue has handled every frame of its replay (the stand-in's DRAINED line: their events
    are on its subscribers' streams) and this subscriber has them all: as many market events of
    each of its streams as Admin says the venue published. One that cannot have them all (one
    candle timeframe of several) never matches, and reads until quiet instead."""
    if not _says(played, DRAINED):
        return False
    answer = await stubs.admin.GetStatus(admin.GetStatusRequest(), timeout=CALL_TIMEOUT_S)
    received = collections.Counter(
        (event.symbol, _CHANNEL_OF[kind])
        for event in collected.events
        if (kind := str(event.WhichOneof("payload"))) in _CHANNEL_OF
    )
    return all(
        received[(stream.symbol, stream.channel)] == stream.events_total
        for stream in answer.streams
        if stream.symbol in symbols and stream.channel in channels
    )


async def collect(
    stubs: Stubs,
    symbols: Sequence[str],
    channels: Sequence[md.Channel.ValueType] = ALL_CHANNELS,
    quiet_s: float = 2.0,
    timeout_s: float = 90.0,
    played: Path | None = None,
    until: Callable[[Collected], bool] | None = None,
) -> Collected:
    """Subscribe (which starts the replay) and read until the stream has been quiet for quiet_s.

    `until`: an outcome the test waits for (a resync after a fault): nothing ends the reading
    before it holds (the venue's own work after the capture's end, a snapshot fetched again, can
    take longer than any quiet on a loaded machine); the timeout still does.

    `played`, the replay venue's log: once its stand-in says the venue has handled the whole
    capture (DRAINED, trademesh/venues/replay/server.py), the reading ends as soon as this subscriber has
    every event the venue published on its streams (`_has_it_all`); failing that, once the
    stand-in says the capture is played whole (the tally's line at the end of playback), a quiet
    of PLAYED_QUIET_S is enough, since what is left is the venue's own work on the last frames.
    quiet_s covers playback that pauses (a client reconnecting, a fault's slow answer), when the
    stand-in has not ended. With `played`, a quiet before the first event is not an end: the
    venue may not have begun (one loaded run: playback began more than quiet_s after the
    subscription, took 36 s, and a shared replay's record was empty); the stand-in's lines end it.

    A reader task drains the stream as fast as it comes; a stream that ends in an error
    (e.g. RESOURCE_EXHAUSTED for a subscriber that fell behind) fails the test.
    """
    call = stubs.md.Subscribe(md.SubscribeRequest(symbols=symbols, channels=channels))
    collected = Collected()
    loop = asyncio.get_running_loop()
    last_read = loop.time()

    async def read() -> None:
        nonlocal last_read
        async for message in call:
            collected.events.extend(message.events)
            last_read = loop.time()

    async def enough() -> bool:
        if until is not None and not until(collected):
            return False
        quiet = loop.time() - last_read
        if quiet >= quiet_s and (collected.events or played is None):
            return True
        if played is None:
            return False
        if quiet >= PLAYED_QUIET_S and _says(played, _PLAYED_LINE):
            return True
        return await _has_it_all(stubs, collected, symbols, channels, played)

    reader = asyncio.create_task(read())
    deadline = loop.time() + timeout_s
    while not reader.done() and loop.time() < deadline and not await enough():  # noqa: ASYNC110 (polls)
        await asyncio.sleep(0.05)
    if reader.done():
        reader.result()  # raises what ended the stream
    call.cancel()
    reader.cancel()
    with contextlib.suppress(asyncio.CancelledError, grpc.aio.AioRpcError):
        await reader
    return collected
