"""Helpers of the bar aggregator's integration tests (no tests here).

A real `trademesh bars` process, a tape that follows a sim venue's trades over gRPC and
publishes them to the bus the way ingest does, synthetic tapes, reading bars.{<venue>}.<timeframe>,
and the independent group-by every test compares against.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import urllib.request
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from decimal import Context, Decimal, Inexact, InvalidOperation, localcontext
from fractions import Fraction
from pathlib import Path
from typing import Any, cast

import grpc
import pytest

from tests.integration.support import CALL_TIMEOUT_S, TEST_TOKEN, Stubs, metric_samples, until
from trademesh.bus.v1 import bus_pb2 as bus
from trademesh.common.v1 import common_pb2 as common
from trademesh.core.bars.aggregator import Aggregator
from trademesh.core.bars.shares import stream_lease_name
from trademesh.core.bars.timeframes import FROM_PB, TO_PB
from trademesh.core.domain.model import Channel, Timeframe
from trademesh.core.platform.bus.codec import FIELD, decode, encode_market
from trademesh.core.platform.bus.group import Fenced
from trademesh.core.platform.bus.names import bars_stream, market_stream
from trademesh.core.platform.bus.publisher import Publisher, Retention
from trademesh.core.platform.bus.redis import BusRedis, open_redis
from trademesh.core.platform.config.env import TOKEN
from trademesh.core.platform.replicas.lease import Lease
from trademesh.core.platform.service.process import ServiceProcess, start_service
from trademesh.marketdata.v1 import marketdata_pb2 as md

__all__ = [
    "IDLE_CLOSE_NS",
    "LATENESS_NS",
    "BarsProcess",
    "BarsReader",
    "BusTape",
    "Fields",
    "Key",
    "SimTape",
    "Trade",
    "bar_fields",
    "bars_positions",
    "closed_keys",
    "completed",
    "group_by",
    "hold",
    "metric_equals",
    "metric_total",
    "new_venue_name",
    "read_bars",
    "scope",
    "start_bars",
    "synthetic",
    "venue_candles",
    "wait_closed_bars",
]

S = 1_000_000_000
LATENESS_NS = 300_000_000
IDLE_CLOSE_NS = 10 * S
Key = tuple[str, Timeframe, int]  # (symbol, timeframe, open time)
Fields = tuple[Fraction, Fraction, Fraction, Fraction, Fraction, Fraction | None, int]


async def hold(aggregator: Aggregator, stream: str) -> Lease:
    """The stream's lease taken and the stream adopted by `aggregator`, as a bars replica does
    (trademesh.core.bars.fleet), for tests that drive an Aggregator directly."""
    name = stream_lease_name(aggregator.store.group, stream)
    lease = Lease(aggregator.store.redis, name, f"test-{uuid.uuid4().hex[:6]}", 60_000)
    assert await lease.acquire() and lease.token is not None
    await aggregator.adopt(stream, Fenced(lease.key, lease.token))
    return lease


def new_venue_name() -> str:
    """A venue name no other test uses: its streams, checkpoints and bars are its own."""
    return f"bt{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class Trade:
    symbol: str
    ts: int
    trade_id: str
    price: str
    size: str

    @classmethod
    def of(cls, event: md.MarketEvent) -> Trade:
        t = event.trade
        return cls(event.symbol, event.ts_event_ns, t.trade_id, t.price, t.size)

    def event(self) -> md.MarketEvent:
        event = md.MarketEvent(venue="test", symbol=self.symbol, ts_event_ns=self.ts, ts_recv_ns=self.ts)
        event.trade.trade_id, event.trade.price, event.trade.size = self.trade_id, self.price, self.size
        event.trade.taker_side = common.SIDE_BUY
        return event


# ---- the independent computation


# Decimal arithmetic that raises rather than rounds: group_by's sums are exact (and many times
# faster than Fraction's); its results are Fractions, as bar_fields reads bars.
_EXACT = Context(prec=200, traps=[Inexact, InvalidOperation])


def group_by(trades: Iterable[Trade]) -> dict[Key, Fields]:
    """Bars of the unique trades (by symbol and id): first and last by (time, id length, id)."""
    unique = {(t.symbol, t.trade_id): t for t in trades}
    # Per bar, its trades' (price, size, price * size), each trade's read once for every timeframe.
    groups: dict[Key, list[tuple[Decimal, Decimal, Decimal]]] = defaultdict(list)
    with localcontext(_EXACT):
        for t in sorted(unique.values(), key=lambda t: (t.ts, len(t.trade_id), t.trade_id)):
            price, size = Decimal(t.price), Decimal(t.size)
            numbers = (price, size, price * size)
            for timeframe in Timeframe:
                groups[(t.symbol, timeframe, timeframe.open_time_ns(t.ts))].append(numbers)
        found: dict[Key, Fields] = {}
        for key, group in groups.items():
            prices = [price for price, _, _ in group]
            volume = sum((size for _, size, _ in group), Decimal(0))
            quote = sum((quote for _, _, quote in group), Decimal(0))
            found[key] = (
                Fraction(prices[0]),
                Fraction(max(prices)),
                Fraction(min(prices)),
                Fraction(prices[-1]),
                Fraction(volume),
                Fraction(quote),
                len(group),
            )
    return found


def closed_keys(expected: dict[Key, Fields], trades: Iterable[Trade]) -> dict[Key, Fields]:
    """The bars of `expected` that the watermark of these trades has closed."""
    latest: dict[str, int] = {}
    for t in trades:
        latest[t.symbol] = max(latest.get(t.symbol, 0), t.ts)
    venue_latest = max(latest.values())
    marks = {s: max(ts, venue_latest - IDLE_CLOSE_NS) - LATENESS_NS for s, ts in latest.items()}
    return {k: v for k, v in expected.items() if k[2] + k[1].ns <= marks[k[0]]}


def bar_fields(bar: bus.Bar | md.Candle) -> Fields:
    """A bar's or candle's numbers, exact; a bar's VWAP is checked against its own volumes."""
    quote = Fraction(Decimal(bar.quote_volume)) if bar.quote_volume else None
    if isinstance(bar, bus.Bar) and quote is not None:
        exact = quote / Fraction(Decimal(bar.volume))
        assert abs(Fraction(Decimal(bar.vwap)) - exact) <= Fraction(1, 2 * 10**16), f"vwap of {bar}"
    prices = (bar.open, bar.high, bar.low, bar.close, bar.volume)
    return (*(Fraction(Decimal(p)) for p in prices), quote, bar.trade_count)  # type: ignore[return-value]


# ---- the bars process


@dataclass
class BarsProcess:
    args: list[str]
    log_path: Path
    service: ServiceProcess | None = None
    starts: int = 0

    def start(self) -> None:
        with self.log_path.open("a") as log:
            self.service = start_service(self.args, env={TOKEN: TEST_TOKEN}, stderr=log)
        self.starts += 1

    def kill(self) -> None:
        """kill -9: no shutdown of any kind."""
        assert self.service is not None
        self.service.process.kill()
        self.service.process.wait(10)

    def stop(self) -> None:
        if self.service is not None:
            self.service.terminate()

    async def metrics(self) -> str:
        assert self.service is not None
        port = self.service.info["metrics_port"]

        def get() -> str:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=CALL_TIMEOUT_S) as reply:
                body: bytes = reply.read()
            return body.decode()

        return await asyncio.to_thread(get)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def start_bars(
    directory: Path, redis_url: str, streams: str, venues: dict[str, str] | None = None, *extra: str
) -> BarsProcess:
    ms = 1_000_000
    args = ["bars", "--port", "0", "--metrics-port", "0", "--redis-url", redis_url, "--streams", streams,
            "--lateness-ms", str(LATENESS_NS // ms), "--idle-close-ms", str(IDLE_CLOSE_NS // ms),
            *extra]  # fmt: skip
    for name, address in (venues or {}).items():
        args += ["--venue", f"{name}={address}"]
    process = BarsProcess(args, directory / f"bars-{uuid.uuid4().hex[:6]}.log")
    process.start()
    return process


def metric_total(text: str, name: str, venue: str) -> float:
    return sum(v for labels, v in metric_samples(text, name).items() if f'venue="{venue}"' in labels)


async def metric_equals(bars: BarsProcess, name: str, venue: str, value: float) -> None:
    """Waits (briefly: metrics follow the commit) for the process's metric to be `value`."""
    seen: list[float] = []

    async def check() -> bool | None:
        seen.append(metric_total(await bars.metrics(), name, venue))
        return True if seen[-1] == value else None

    try:
        await until(check, 5, what=f"{name} = {value}")
    except BaseException:
        raise AssertionError(f"{name} of {venue} is {seen[-1]}, not {value}") from None


# ---- the bus side


class BusTape:
    """Publishes trades (and gap markers) to md.{<venue>}.trades as ingest does."""

    def __init__(self, redis: BusRedis, venue: str) -> None:
        self.redis = redis
        self.venue = venue
        self.stream = f"md.{{{venue}}}.trades"
        self.publisher = Publisher(redis, Retention(entries_per_s=1000, outage_minutes=10))
        self.published: list[Trade] = []

    async def publish(self, trades: list[Trade], flush: bool = True) -> None:
        self.publisher.add(self.stream, encode_market("test-ingest", [t.event() for t in trades]))
        self.published += trades
        if flush:
            await self.publisher.flush()

    async def gap(self, symbol: str, since_ns: int, resumed_ns: int) -> None:
        event = md.MarketEvent(venue=self.venue, symbol=symbol, ts_event_ns=resumed_ns, ts_recv_ns=resumed_ns)
        event.notice.kind, event.notice.channel = md.NOTICE_KIND_GAP, md.CHANNEL_TRADES
        event.notice.reason, event.notice.since_ns = "test: trades dropped", since_ns
        self.publisher.add(self.stream, encode_market("test-ingest", [event]))
        await self.publisher.flush()


@dataclass
class SimTape:
    """Follows a sim venue's trades over gRPC and publishes each batch to the bus, until stopped.

    drop(seconds) loses what the venue sends for a while, then publishes a GAP notice per symbol
    before the first batch after it, as ingest does after a reconnect."""

    stubs: Stubs
    bus: BusTape
    symbols: list[str]
    # Per symbol: (since_ns, resumed_ns) of the gap notice, and how many trades were published before it.
    gaps: dict[str, tuple[int, int]] = field(default_factory=dict)
    published_before_gap: int = 0
    _dropping: bool = False
    _gap_due: bool = False
    _task: asyncio.Task[None] | None = None
    _call: Any = None

    def start(self) -> None:
        request = md.SubscribeRequest(symbols=self.symbols, channels=[md.CHANNEL_TRADES])
        self._call = self.stubs.md.Subscribe(request)
        self._task = asyncio.create_task(self._follow())

    async def drop(self, seconds: float) -> None:
        self._dropping = True
        await asyncio.sleep(seconds)
        self._gap_due, self._dropping = True, False

    async def _follow(self) -> None:
        async for response in self._call:
            trades = [Trade.of(e) for e in response.events if e.HasField("trade")]
            if self._dropping or not trades:
                continue
            if self._gap_due:
                await self._gap_notices()
            await self.bus.publish(trades)

    async def _gap_notices(self) -> None:
        self._gap_due = False
        self.published_before_gap = len(self.bus.published)
        resumed = time.time_ns()
        for symbol in self.symbols:
            self.gaps[symbol] = (self.last_ts(symbol), resumed)
            await self.bus.gap(symbol, self.last_ts(symbol), resumed)

    async def stop(self) -> None:
        """Ends the call the gRPC way (call.cancel(): the stream ends with CANCELLED), then the
        task; a task that will not end fails the test rather than hanging it."""
        assert self._task is not None and self._call is not None
        if self._task.done():
            self._task.result()  # whatever ended it
        self._call.cancel()
        self._task.cancel()
        done, _ = await asyncio.wait({self._task}, timeout=CALL_TIMEOUT_S)
        assert done, f"the tape's task did not end within {CALL_TIMEOUT_S} s of its call's cancel"
        with contextlib.suppress(asyncio.CancelledError, grpc.aio.AioRpcError):
            self._task.result()

    def last_ts(self, symbol: str) -> int:
        return max(t.ts for t in self.bus.published if t.symbol == symbol)


def venue_bars(venue: str, timeframe: Timeframe) -> str:
    """The stream of `venue`'s bars of `timeframe` (made from md.{<venue>}.trades)."""
    return bars_stream(timeframe, market_stream(venue, Channel.TRADES))


async def bars_positions(redis: BusRedis, venue: str) -> dict[Timeframe, str]:
    """Where each of `venue`'s bars streams ends now: a test reads only what comes after."""
    found = {}
    for timeframe in Timeframe:
        last = cast(list[tuple[bytes, Any]], await redis.xrevrange(venue_bars(venue, timeframe), count=1))
        found[timeframe] = last[0][0].decode() if last else "0-0"
    return found


class BarsReader:
    """The bars published for one venue after `after`, each read once: every read goes on from
    where the last one ended (a wait that polls does not decode the whole stream again each time)."""

    def __init__(self, redis: BusRedis, venue: str, after: dict[Timeframe, str]) -> None:
        self.redis = redis
        self.venue = venue
        self.positions = dict(after)
        self.bars: list[bus.Bar] = []
        # The live (not repaired) bars read so far, by (symbol, timeframe, open time).
        self.live: defaultdict[Key, list[bus.Bar]] = defaultdict(list)

    async def read(self) -> list[bus.Bar]:
        """Every bar read so far, in each timeframe's stream order."""
        for timeframe in Timeframe:
            after = f"({self.positions[timeframe]}"
            entries = cast(
                list[tuple[bytes, dict[bytes, bytes]]],
                await self.redis.xrange(venue_bars(self.venue, timeframe), min=after),
            )
            for entry_id, fields in entries:
                self.positions[timeframe] = entry_id.decode()
                if FIELD not in fields:
                    continue
                for bar in decode(fields).bars.bars:
                    if bar.venue == self.venue:
                        self.bars.append(bar)
                        if not bar.repaired:
                            self.live[(bar.symbol, FROM_PB[bar.timeframe], bar.open_time_ns)].append(bar)
        return self.bars


async def read_bars(redis: BusRedis, venue: str, after: dict[Timeframe, str]) -> list[bus.Bar]:
    return await BarsReader(redis, venue, after).read()


async def venue_candles(
    stubs: Stubs, symbol: str, timeframe: Timeframe, start_ns: int, end_ns: int
) -> list[md.Candle]:
    reply = await stubs.md.GetCandles(
        md.GetCandlesRequest(symbol=symbol, timeframe=TO_PB[timeframe], start_ns=start_ns, end_ns=end_ns),
        timeout=CALL_TIMEOUT_S,
    )
    return list(reply.candles)


def synthetic(symbols: list[str], start_ns: int, count: int, step_ns: int, seed: int) -> list[Trade]:
    """A made-up tape: `count` trades per symbol, random gaps up to step_ns, in time order."""
    rng = random.Random(seed)
    trades, ts = [], start_ns
    for i in range(count):
        ts += rng.randrange(step_ns)
        for symbol in symbols:
            price, size = (
                f"{100 + rng.randrange(-5000, 5000) / 100:.2f}",
                f"{rng.randrange(1, 5000) / 1000:.3f}",
            )
            trades.append(Trade(symbol, ts + rng.randrange(3), str(10 * i + 1), price, size))
    return trades


async def completed(reader: BarsReader, expected: dict[Key, Fields]) -> dict[Key, list[Fields]] | None:
    """For `until`: every live (not repaired) bar published for the venue, once all expected are there."""
    await reader.read()
    if not expected.keys() <= reader.live.keys():
        return None
    return {key: [bar_fields(bar) for bar in bars] for key, bars in reader.live.items()}


async def wait_closed_bars(
    redis: BusRedis,
    tape: BusTape,
    after: dict[Timeframe, str],
    timeout_s: float = 30.0,
    trades: list[Trade] | None = None,
) -> tuple[dict[Key, list[Fields]], dict[Key, Fields]]:
    """(the live bars published for the tape's venue, the closed bars of a group-by of `trades`
    (default: all it published)), once every one of the latter was published."""
    expected = closed_keys(group_by(tape.published if trades is None else trades), tape.published)
    reader = BarsReader(redis, tape.venue, after)
    live = await until(lambda: completed(reader, expected), timeout_s, what=f"the bars of {tape.venue}")
    return live, expected


@pytest.fixture
async def scope(redis_url: str) -> AsyncIterator[tuple[BusRedis, str]]:
    """A Redis client and a venue name of this test's own; its streams and checkpoints go after."""
    client = open_redis(redis_url)  # with socket deadlines: a stuck read fails, never hangs
    name = new_venue_name()
    try:
        yield client, name
    finally:
        keys = [key async for key in client.scan_iter(match=f"*{name}*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()
