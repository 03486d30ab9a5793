"""Helpers of the integration tests: venue processes, authenticated channels, books, polling.

Every venue runs as its own `trademesh venue sim --port 0` process with both bearer tokens set,
the mesh token and the trading credential, exactly as an operator would start it; tests talk to
it only over gRPC and HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import socketserver
import textwrap
import threading
import time
import urllib.request
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import IO, Any, TypeVar

import grpc
import pytest

from trademesh.admin.v1 import admin_pb2 as admin
from trademesh.admin.v1 import admin_pb2_grpc as admin_grpc
from trademesh.common.v1 import common_pb2 as common
from trademesh.core.platform.config.env import TOKEN, TRADE_TOKEN
from trademesh.core.platform.service.process import ServiceProcess, start_service
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.marketdata.v1 import marketdata_pb2_grpc as md_grpc
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf
from trademesh.tradeflow.v1 import tradeflow_pb2_grpc as tf_grpc
from trademesh.venues.sim.config import SymbolConfig
from trademesh.venues.sim.config import load_config as load_sim_config

TEST_TOKEN = "integration-test-token"
# The trading credential of the venues tests start (TRADEMESH_TRADE_TOKEN): a venue places and
# cancels orders, and arms its dead-man switch, only for it. A test that trades on a venue stands
# in for the inspector, its only other holder; the mesh services get TEST_TOKEN alone.
TEST_TRADE_TOKEN = "integration-test-trade-token"
# What a venue process started by a test gets: the mesh token and the trading credential.
VENUE_ENV = {TOKEN: TEST_TOKEN, TRADE_TOKEN: TEST_TRADE_TOKEN}
# Deadline of every unary call a test makes: a hung server fails the test instead of the suite.
CALL_TIMEOUT_S = 10.0
# Deadline of one call through the gateway of a whole mesh `up` starts: three such meshes (test_up's,
# the wheel test's, test_external_venue_mesh's) run beside the rest of a run on two cores, and a
# login, a ListTransfers and a CreatePatch each passed 10 s in fresh-clone runs. The loops around
# the calls keep their own deadlines.
MESH_CALL_TIMEOUT_S = 60.0

T = TypeVar("T")


def _with_token(details: grpc.aio.ClientCallDetails, token: str) -> grpc.aio.ClientCallDetails:
    metadata = grpc.aio.Metadata(*(details.metadata or ()), ("authorization", f"Bearer {token}"))
    return grpc.aio.ClientCallDetails(
        details.method, details.timeout, metadata, details.credentials, details.wait_for_ready
    )


# grpc.aio files an interceptor under its first matching kind only: one class per call kind.
class _UnaryAuth(grpc.aio.UnaryUnaryClientInterceptor):
    def __init__(self, token: str) -> None:
        self._token = token

    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(_with_token(details, self._token), request)


class _StreamAuth(grpc.aio.UnaryStreamClientInterceptor):
    def __init__(self, token: str) -> None:
        self._token = token

    async def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(_with_token(details, self._token), request)


@dataclass
class Stubs:
    """The three venue services on one channel."""

    channel: grpc.aio.Channel
    md: md_grpc.MarketDataAsyncStub
    tf: tf_grpc.TradeFlowAsyncStub
    admin: admin_grpc.AdminAsyncStub

    async def close(self) -> None:
        await self.channel.close()


@dataclass
class Venue:
    """A running venue process.

    Its channels and stubs carry the trading credential unless told otherwise: a test that trades
    on a venue stands in for the inspector (the credential is good for every RPC). Pass TEST_TOKEN
    to call as a mesh service does (reads only), None for no token.
    """

    service: ServiceProcess
    log_path: Path
    # The mesh token; the trading credential.
    token: str = TEST_TOKEN
    trade_token: str = TEST_TRADE_TOKEN
    _channels: list[grpc.aio.Channel] = field(default_factory=list)

    @property
    def address(self) -> str:
        return self.service.address

    @property
    def metrics_port(self) -> int:
        port: int = self.service.info["metrics_port"]
        return port

    def channel(
        self, token: str | None = TEST_TRADE_TOKEN, options: Sequence[tuple[str, Any]] = ()
    ) -> grpc.aio.Channel:
        """A channel to the venue; with a token, every call carries it. Closed at teardown."""
        interceptors = [] if token is None else [_UnaryAuth(token), _StreamAuth(token)]
        channel = grpc.aio.insecure_channel(
            self.address,
            interceptors=interceptors,
            options=[("grpc.max_receive_message_length", 64 * 1024 * 1024), *options],
        )
        self._channels.append(channel)
        return channel

    def stubs(self, token: str | None = TEST_TRADE_TOKEN, options: Sequence[tuple[str, Any]] = ()) -> Stubs:
        channel = self.channel(token, options)
        return Stubs(
            channel,
            md_grpc.MarketDataStub(channel),
            tf_grpc.TradeFlowStub(channel),
            admin_grpc.AdminStub(channel),
        )

    async def close_channels(self) -> None:
        channels, self._channels = self._channels, []
        for channel in channels:
            await channel.close()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


# The tests' sims step every 50 ms, not the product's 10: the same market a second (rates are per
# second, the walk's volatility per second^0.5) in a fifth of the steps, so a fifth of the
# wake-ups and batches through every service behind the sim. And their symbols (the product's
# three, unless a config lists its own) make a quarter of the product's book updates. The suite
# runs dozens of sims at once on 2 cores: their steps and book updates, and the services behind
# them, were about a third of its CPU. A config that sets its own step or symbols keeps them.
TEST_SIM_STEP_MS = 50
TEST_BOOK_UPDATES_PER_S = 100.0


def with_test_step(config: str | None) -> str:
    """A sim config text (`config`'s, dedented) with the tests' step and symbols unless it names
    its own."""
    text = textwrap.dedent(config or "")
    if "tick_interval_ms" not in text:
        text = f"tick_interval_ms = {TEST_SIM_STEP_MS}\n{text}"
    if "[[symbols]]" not in text:
        text += "".join(_symbol_toml(s) for s in load_sim_config(None).symbols)
    return text


def _symbol_toml(symbol: SymbolConfig) -> str:
    """One of the product's default symbols as a config table, at the tests' book update rate."""
    lines = ["\n[[symbols]]"]
    for item in dataclasses.fields(symbol):
        name, value = item.name, getattr(symbol, item.name)
        if name.startswith("funding_") and not symbol.perpetual:
            continue
        if name == "book_updates_per_s":
            value = TEST_BOOK_UPDATES_PER_S
        if isinstance(value, tuple) and not value:
            continue  # an empty array of tables (a perpetual's brackets): the default
        lines.append(f'{name} = "{value}"' if isinstance(value, str | Decimal) else f"{name} = {value}")
    return "\n".join(lines) + "\n"


def start_venue(
    directory: Path, config: str | None, name: str, env: dict[str, str] | None = None
) -> tuple[Venue, IO[str]]:
    """A sim venue process with VENUE_ENV (`env`: instead; "" unsets a variable), stepping as
    the tests' sims do (`with_test_step`)."""
    args = ["venue", "sim", "--port", "0", "--metrics-port", "0"]
    config_path = directory / f"{name}.toml"
    config_path.write_text(with_test_step(config))
    args += ["--config", str(config_path)]
    log_path = directory / f"{name}.log"
    log_file = log_path.open("w")
    service = start_service(args, env=VENUE_ENV if env is None else env, stderr=log_file)
    return Venue(service, log_path), log_file


VenueFactory = Callable[..., Venue]


async def stop_venue(venue: Venue, log_file: IO[str]) -> None:
    try:
        await venue.close_channels()
    finally:  # the process ends whatever happened to its channels (a cancelled test included)
        try:
            await asyncio.to_thread(venue.service.terminate)
        finally:
            log_file.close()


async def until(
    check: Callable[[], Awaitable[T | None]],
    timeout_s: float,
    interval_s: float = 0.05,
    what: str = "condition",
) -> T:
    """Poll `check` until it returns something other than None; fail after timeout_s."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = await check()
        if result is not None:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"{what} not reached within {timeout_s} s")
        await asyncio.sleep(interval_s)


async def next_batch(call: Any) -> md.SubscribeResponse:
    """The next message of a Subscribe stream; fails the test if the stream ends first."""
    message = await asyncio.wait_for(call.read(), CALL_TIMEOUT_S)
    assert message is not grpc.aio.EOF, "the stream ended"
    assert isinstance(message, md.SubscribeResponse)
    return message


class Book:
    """An L2 book rebuilt from a snapshot and deltas, with strict sequence checks."""

    def __init__(self, snapshot: md.BookSnapshot) -> None:
        self.sequence = 0
        self.bids: dict[str, str] = {}
        self.asks: dict[str, str] = {}
        self._whole(snapshot)

    def _whole(self, snapshot: md.BookSnapshot) -> None:
        self.sequence = snapshot.sequence
        self.bids = {level.price: level.size for level in snapshot.bids}
        self.asks = {level.price: level.size for level in snapshot.asks}

    def take(self, event: md.MarketEvent) -> None:
        """A book event of the stream: a delta, or the book sent whole as the next snapshot of its
        sequence (a venue sends a changing book whole every minute: trademesh/venues/runtime/feed.py)."""
        if event.WhichOneof("payload") == "book_snapshot":
            sequence = event.book_snapshot.sequence
            assert sequence == self.sequence + 1, f"sequence hole: {self.sequence} -> {sequence}"
            self._whole(event.book_snapshot)
            return
        self.apply(event.book_delta)

    def apply(self, delta: md.BookDelta) -> None:
        assert delta.sequence == self.sequence + 1, f"sequence hole: {self.sequence} -> {delta.sequence}"
        self.sequence = delta.sequence
        for side, levels in ((self.bids, delta.bids), (self.asks, delta.asks)):
            for level in levels:
                if Decimal(level.size) == 0:
                    side.pop(level.price, None)
                else:
                    side[level.price] = level.size

    def levels(self) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        """Bids and asks, best first."""
        bids = sorted(self.bids.items(), key=lambda lv: Decimal(lv[0]), reverse=True)
        asks = sorted(self.asks.items(), key=lambda lv: Decimal(lv[0]))
        return bids, asks

    def best(self) -> tuple[tuple[str, str] | None, tuple[str, str] | None]:
        bids, asks = self.levels()
        return (bids[0] if bids else None), (asks[0] if asks else None)


def snapshot_levels(snapshot: md.BookSnapshot) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    return [(lv.price, lv.size) for lv in snapshot.bids], [(lv.price, lv.size) for lv in snapshot.asks]


def limit_order(
    symbol: str, side: common.Side.ValueType, size: str, price: str, **extra: Any
) -> tf.PlaceOrderRequest:
    return tf.PlaceOrderRequest(
        symbol=symbol, side=side, type=tf.ORDER_TYPE_LIMIT, size=size, price=price, **extra
    )


async def best_prices(stubs: Stubs, symbol: str) -> tuple[Decimal, Decimal]:
    """(best bid, best ask) from the venue's book snapshot for the symbol."""
    call = stubs.md.Subscribe(md.SubscribeRequest(symbols=[symbol], channels=[md.CHANNEL_BOOK]))
    try:
        message = await next_batch(call)
    finally:
        call.cancel()
    snapshot = message.events[0].book_snapshot
    return Decimal(snapshot.bids[0].price), Decimal(snapshot.asks[0].price)


async def balances(stubs: Stubs) -> dict[str, tf.Balance]:
    response = await stubs.tf.GetBalances(tf.GetBalancesRequest(), timeout=CALL_TIMEOUT_S)
    return {b.asset: b for b in response.balances}


async def open_streams(stubs: Stubs, expected: int) -> int | None:
    """For `until`: the venue's count of open client streams once it is `expected`."""
    status = await stream_status(stubs)
    return status.subscriber_count if status.subscriber_count == expected else None


async def stream_status(stubs: Stubs) -> admin.GetStatusResponse:
    status: admin.GetStatusResponse = await stubs.admin.GetStatus(
        admin.GetStatusRequest(), timeout=CALL_TIMEOUT_S
    )
    return status


def far_bid(best_bid: Decimal, tick: Decimal) -> str:
    """A buy price far below the market (half the best bid), on the tick grid: it rests."""
    return str((best_bid / 2 // tick) * tick)


class Executions:
    """A StreamExecutions subscription read in the background, for tests to wait on."""

    def __init__(self, stubs: Stubs, symbols: list[str] | None = None) -> None:
        self.call = stubs.tf.StreamExecutions(tf.StreamExecutionsRequest(symbols=symbols or []))
        self.seen: list[tf.Execution] = []
        self.error: grpc.aio.AioRpcError | None = None
        self.ended = asyncio.Event()
        self._changed = asyncio.Event()
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            async for message in self.call:
                self.seen += message.executions
                self._changed.set()
        except grpc.aio.AioRpcError as exc:
            self.error = exc
        finally:
            self.ended.set()
            self._changed.set()

    def of(self, order_id: str) -> list[tf.Execution]:
        return [e for e in self.seen if e.order.order_id == order_id]

    async def wait_for(
        self, order_id: str, status: tf.OrderStatus.ValueType, timeout_s: float = CALL_TIMEOUT_S
    ) -> list[tf.Execution]:
        """Every execution of the order, once one shows `status`."""
        deadline = time.monotonic() + timeout_s
        while not any(e.order.status == status for e in self.of(order_id)):
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self.ended.is_set():
                pytest.fail(
                    f"order {order_id} never reached {tf.OrderStatus.Name(status)}: {self.of(order_id)}"
                )
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)
        return self.of(order_id)

    async def ready(self, stubs: Stubs, symbol: str, price: str, size: str) -> None:
        """Returns once the stream is live: it has seen a probe order open and cancel."""
        placed = await stubs.tf.PlaceOrder(
            limit_order(symbol, common.SIDE_BUY, size, price), timeout=CALL_TIMEOUT_S
        )
        await stubs.tf.CancelOrder(
            tf.CancelOrderRequest(order_id=placed.order.order_id), timeout=CALL_TIMEOUT_S
        )
        await self.wait_for(placed.order.order_id, tf.ORDER_STATUS_CANCELED)

    async def close(self) -> None:
        self.call.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


Levels = tuple[list[tuple[str, str]], list[tuple[str, str]]]


class BookFollower:
    """Follows a Subscribe stream: rebuilds each symbol's book, checks it, remembers it per sequence.

    Checks as it goes, event by event in the stream's order: deltas follow without holes; a
    snapshot after the first only comes after a GAP or RESYNC notice; and at every ticker, the
    top of the book rebuilt from every event before it (in this message and the earlier ones)
    equals the ticker exactly. The sim publishes a step's ticker from its matching engine's own
    book, after that step's book changes. A message may carry several venue dispatches (a
    subscriber that has fallen behind gets them joined), so the check is per event, never at a
    message's end (docs/connector.md, "Messages and event order").
    """

    def __init__(self, keep: int = 5000) -> None:
        self.books: dict[str, Book] = {}
        self.history: dict[str, deque[tuple[int, Levels]]] = defaultdict(lambda: deque(maxlen=keep))
        self.trades: dict[str, list[md.MarketEvent]] = defaultdict(list)
        self.notices: list[md.MarketEvent] = []
        self.deltas = 0
        self.ticker_checks = 0
        self._resync_due: set[str] = set()

    def on_message(self, message: md.SubscribeResponse) -> None:
        for event in message.events:
            self.on_event(event)

    def on_event(self, event: md.MarketEvent) -> None:
        kind = event.WhichOneof("payload")
        if kind == "book_snapshot":
            if event.symbol in self.books:
                assert event.symbol in self._resync_due, f"{event.symbol}: a new snapshot without a notice"
            self._resync_due.discard(event.symbol)
            self.books[event.symbol] = Book(event.book_snapshot)
        elif kind == "book_delta":
            self.books[event.symbol].apply(event.book_delta)  # asserts sequence = previous + 1
            self.deltas += 1
        elif kind == "trade":
            self.trades[event.symbol].append(event)
        elif kind == "ticker":
            self._check_ticker(event.symbol, event.ticker)
        elif kind == "notice":
            self.notices.append(event)
            self._resync_due.add(event.symbol)
        if kind in ("book_snapshot", "book_delta"):
            book = self.books[event.symbol]
            self.history[event.symbol].append((book.sequence, book.levels()))

    def _check_ticker(self, symbol: str, ticker: md.Ticker) -> None:
        """The ticker against the book as it stands at this event (no book yet: nothing to check)."""
        if symbol not in self.books:
            return
        bid, ask = self.books[symbol].best()
        sequence = self.books[symbol].sequence
        assert bid == (ticker.best_bid, ticker.best_bid_size), (
            f"{symbol}: best bid at sequence {sequence} is not the engine's"
        )
        assert ask == (ticker.best_ask, ticker.best_ask_size), (
            f"{symbol}: best ask at sequence {sequence} is not the engine's"
        )
        self.ticker_checks += 1

    def at(self, symbol: str, sequence: int) -> Levels | None:
        """The book of the symbol as it was at `sequence`, if still remembered."""
        for seen, levels in self.history[symbol]:
            if seen == sequence:
                return levels
        return None

    async def follow(self, call: Any, until_checks: int = 0, timeout_s: float = CALL_TIMEOUT_S) -> None:
        """Read the stream until `until_checks` ticker checks passed (or forever with 0)."""
        deadline = time.monotonic() + timeout_s
        while until_checks == 0 or self.ticker_checks < until_checks:
            if until_checks and time.monotonic() > deadline:
                pytest.fail(f"only {self.ticker_checks} ticker checks within {timeout_s} s")
            self.on_message(await next_batch(call))


def metric_samples(text: str, name: str) -> dict[str, float]:
    """Prometheus text format: the samples of one metric, keyed by their label text."""
    found: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            key, _, value = line.rpartition(" ")
            found[key[len(name) :]] = float(value)
    return found


async def scrape(venue: Venue) -> str:
    """The venue's /metrics page."""
    return await metrics_page(venue.metrics_port)


async def metrics_page(port: int) -> str:
    """The /metrics page a service serves on `port` (127.0.0.1)."""

    def get() -> str:
        url = f"http://127.0.0.1:{port}/metrics"
        with urllib.request.urlopen(url, timeout=CALL_TIMEOUT_S) as response:
            body: bytes = response.read()
        return body.decode()

    return await asyncio.to_thread(get)


async def listening_executions(stubs: Stubs) -> Executions:
    """An executions stream the venue already counts as open (so no execution is missed)."""
    executions = Executions(stubs)
    await until(lambda: open_streams(stubs, 1), CALL_TIMEOUT_S, what="the executions stream")
    return executions


async def open_order_ids(stubs: Stubs) -> list[str]:
    listed = await stubs.tf.ListOpenOrders(tf.ListOpenOrdersRequest(), timeout=CALL_TIMEOUT_S)
    return [o.order_id for o in listed.orders]


class ClosesOnFirstBytes(socketserver.BaseRequestHandler):
    """A peer that reads a client's first bytes and hangs up: a server of no protocol the client knows."""

    def handle(self) -> None:
        self.request.recv(64)


def tcp_server(handler: type[socketserver.BaseRequestHandler]) -> Iterator[int]:
    """A threaded TCP server on a free local port, `handler` for each connection, for a fixture to
    `yield from`: its port, the server shut down after."""
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()
