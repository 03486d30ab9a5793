"""Binance spot against its recorded session: every message normalized, faults survived, orders exact.

Expected values are computed here from the capture's own text (independently of the
venue's replay adapter) and compared with what a gRPC subscriber receives.
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.integration.replay import (
    SharedReplay,
    capture_files,
    collect,
    instruments,
    replay_venue_fixture,
    resync_done,
    shared_replay_fixture,
)
from tests.integration.support import (
    CALL_TIMEOUT_S,
    VENUE_ENV,
    Venue,
    limit_order,
    listening_executions,
    next_batch,
    stop_venue,
    stream_status,
    until,
)
from trademesh.admin.v1 import admin_pb2 as admin
from trademesh.common.v1 import common_pb2 as common
from trademesh.core.platform.service.process import start_service
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf
from trademesh.venues.binance.spec import SPEC
from trademesh.venues.replay.loader import open_standin
from trademesh.venues.replay.server import ReplayOptions

pytestmark = [pytest.mark.integration, pytest.mark.slow]

FILES = capture_files("BINANCE")
D = Decimal


class Expected:
    """What the capture says, per native symbol."""

    def __init__(self, files: list[Path]) -> None:
        self.trades: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
        self.tickers: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
        self.candles: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
        self.books: dict[str, tuple[dict[D, D], dict[D, D]]] = {}
        self.book_changes: dict[str, int] = defaultdict(int)
        nonce: dict[str, int] = {}
        for path in files:
            for line in path.read_text().splitlines():
                url, _, rest = line.partition(" -> ")
                if "/depth?" in url:
                    body = json.loads(rest.split(": ", 1)[1])
                    symbol = url.split("symbol=")[1].split("&")[0]
                    self.books[symbol] = (
                        {D(p): D(q) for p, q in body["bids"]},
                        {D(p): D(q) for p, q in body["asks"]},
                    )
                    nonce[symbol] = body["lastUpdateId"]
        for frame in self.frames(files):
            data = frame["data"]
            symbol = data["s"]
            if data.get("e") == "aggTrade":
                side = common.SIDE_SELL if data["m"] else common.SIDE_BUY
                self.trades[symbol].append((str(data["a"]), D(data["p"]), D(data["q"]), side, data["T"]))
            elif data.get("e") == "kline":
                k = data["k"]
                self.candles[symbol].append((k["t"], D(k["o"]), D(k["h"]), D(k["l"]), D(k["c"]), D(k["v"])))
            elif data.get("e") == "depthUpdate":
                if symbol in nonce and data["u"] > nonce[symbol]:
                    nonce[symbol] = data["u"]
                    self.book_changes[symbol] += self.apply(self.books[symbol], data)
            elif "u" in data and "b" in data:  # bookTicker has no event type
                self.tickers[symbol].append((D(data["b"]), D(data["B"]), D(data["a"]), D(data["A"])))

    @staticmethod
    def frames(files: list[Path]) -> list[dict[str, Any]]:
        frames = []
        for path in files:
            for line in path.read_text().splitlines():
                head, _, text = line.partition(": ")
                if head.replace(".", "").isdigit() and text.startswith('{"stream"'):
                    frames.append(json.loads(text))
        return frames

    @staticmethod
    def apply(book: tuple[dict[D, D], dict[D, D]], data: dict[str, Any]) -> int:
        changed = 0
        for side, levels in zip(book, (data["b"], data["a"]), strict=True):
            for price, size in levels:
                p, q = D(price), D(size)
                if side.get(p, D(0)) != q:
                    changed = 1
                    if q == 0:
                        side.pop(p, None)
                    else:
                        side[p] = q
        return changed


EXPECTED = Expected(FILES)


replay_venue = replay_venue_fixture("binance", FILES)
shared_replay = shared_replay_fixture("binance")


async def test_every_message_comes_out_normalized(shared_replay: SharedReplay) -> None:
    stubs = shared_replay.venue.stubs()
    symbols = await instruments(stubs)
    assert symbols == {"NKNUSDT": "NKN/USDT", "BLZETH": "BLZ/ETH", "LRCBTC": "LRC/BTC", "RUNEEUR": "RUNE/EUR"}
    collected = await shared_replay.collected()
    assert not collected.notices(), "a clean replay has no gaps or resyncs"
    for native, symbol in symbols.items():
        assert collected.trades(symbol) == EXPECTED.trades[native]
        assert collected.tickers(symbol) == EXPECTED.tickers[native]
        assert collected.candles(symbol) == EXPECTED.candles[native]
        bids, asks = collected.book(symbol)
        assert (bids, asks) == EXPECTED.books[native], f"{symbol} book differs from the capture's"
        assert len(collected.of(symbol, "book_delta")) == EXPECTED.book_changes[native]
    assert sum(len(v) for v in EXPECTED.tickers.values()) == 84  # the capture itself, as a sanity check
    assert EXPECTED.book_changes["NKNUSDT"] > 100


async def test_a_stand_in_in_another_process_serves_the_production_connector(tmp_path: Path) -> None:
    """The venue's config `replay_url` points a venue run without `--replay` at a stand-in served
    elsewhere (here, the test's own process): the same events as the capture's, and no stand-in
    in the venue's process."""
    server = open_standin(SPEC.standin, ReplayOptions(tuple(FILES)))
    url = await server.start()
    config = f'replay_url = "{url}"\nsymbols = ["NKN/USDT", "BLZ/ETH", "LRC/BTC", "RUNE/EUR"]\n'
    (tmp_path / "binance.toml").write_text(config)
    args = ["venue", "binance", "--port", "0", "--metrics-port", "0"]
    args += ["--config", str(tmp_path / "binance.toml")]
    log_path = tmp_path / "binance.log"
    log = log_path.open("w")
    try:
        # In a thread: the stand-in answers the venue's start (its markets) on this event loop.
        service = await asyncio.to_thread(start_service, args, env=VENUE_ENV, stderr=log, timeout_s=60)
        venue = Venue(service, log_path)
        try:
            stubs = venue.stubs()
            symbols = await instruments(stubs)
            assert sorted(symbols) == ["BLZETH", "LRCBTC", "NKNUSDT", "RUNEEUR"]

            async def subscribed() -> int | None:
                count = (await stream_status(stubs)).subscriber_count
                return count or None

            async def release() -> None:
                await until(subscribed, CALL_TIMEOUT_S, what="the test's subscription")
                server.release()

            releasing = asyncio.create_task(release())
            collected = await collect(stubs, list(symbols.values()), quiet_s=3.0, played=venue.log_path)
            await releasing
        finally:
            await stop_venue(venue, log)
    finally:
        await server.stop()
    assert server.exhausted and server.frames_sent > 0
    assert not collected.notices(), "a clean replay has no gaps or resyncs"
    for native, symbol in symbols.items():
        assert collected.trades(symbol) == EXPECTED.trades[native]
        assert collected.tickers(symbol) == EXPECTED.tickers[native]
        assert collected.candles(symbol) == EXPECTED.candles[native]
        assert collected.book(symbol) == EXPECTED.books[native], f"{symbol} book differs from the capture's"
        assert len(collected.of(symbol, "book_delta")) == EXPECTED.book_changes[native]
    text = log_path.read_text()
    assert "replay stand-in on port" not in text and "replay summary" not in text, "no stand-in inside"


@pytest.mark.replay(faults=["malformed@10", "gap@40", "ratelimit@1", "disconnect@180"])
async def test_faults_from_the_venue_are_survived(replay_venue: Venue) -> None:
    stubs = replay_venue.stubs()
    symbols = await instruments(stubs)
    collected = await collect(
        stubs, list(symbols.values()), quiet_s=4.0, played=replay_venue.log_path, until=resync_done
    )
    nkn = "NKN/USDT"
    kinds = {(e.symbol, e.notice.kind) for e in collected.notices()}
    assert (nkn, md.NOTICE_KIND_RESYNC) in kinds, "the dropped depth update forces a resync"
    assert (nkn, md.NOTICE_KIND_GAP) in kinds, "the disconnect is announced as a gap"
    # Snapshots follow the replay, so after the resync and the reconnect the book still ends right.
    assert collected.book(nkn) == EXPECTED.books["NKNUSDT"]
    streams = (await stream_status(stubs)).streams
    book = next(s for s in streams if s.symbol == nkn and s.channel == md.CHANNEL_BOOK)
    assert book.resyncs >= 1 and book.reconnects >= 1
    assert book.malformed_messages >= 1 and book.state == admin.STREAM_STATE_CONNECTED
    # The 429 answers whichever snapshot fetch comes first after playback starts.
    log = replay_venue.log()
    hits = {s.symbol: s.rate_limit_hits for s in streams if s.channel == md.CHANNEL_BOOK}
    assert sum(hits.values()) >= 1, f"no rate limit counted ({hits}); the venue's log ends:\n{log[-4000:]}"
    assert "rate limited, waiting" in log and "could not be understood" in log


async def test_a_book_stream_removed_and_added_back_starts_from_a_new_snapshot(replay_venue: Venue) -> None:
    """The book's frames bypass ccxt's handler (trademesh/venues/binance/wire.py): a book stream added back
    must make ccxt subscribe again and fetch the snapshot it starts from."""
    stubs = replay_venue.stubs()
    played = await collect(
        stubs, ["NKN/USDT"], [md.CHANNEL_BOOK], quiet_s=3.0, played=replay_venue.log_path
    )  # the whole session
    assert played.book("NKN/USDT") == EXPECTED.books["NKNUSDT"]
    nkn_book = [admin.Subscription(symbol="NKN/USDT", channel=md.CHANNEL_BOOK)]
    await stubs.admin.RemoveSubscriptions(
        admin.RemoveSubscriptionsRequest(subscriptions=nkn_book), timeout=CALL_TIMEOUT_S
    )
    await stubs.admin.AddSubscriptions(
        admin.AddSubscriptionsRequest(subscriptions=nkn_book), timeout=CALL_TIMEOUT_S
    )
    # After the removal's GAP, a new subscriber gets no book until the venue sends a new snapshot.
    call = stubs.md.Subscribe(md.SubscribeRequest(symbols=["NKN/USDT"], channels=[md.CHANNEL_BOOK]))
    try:

        async def snapshot() -> md.BookSnapshot | None:
            message = await next_batch(call)
            found = [e.book_snapshot for e in message.events if e.HasField("book_snapshot")]
            return found[0] if found else None

        rebuilt = await until(snapshot, CALL_TIMEOUT_S, what="the re-added book's snapshot")
    finally:
        call.cancel()
    bids = {D(level.price): D(level.size) for level in rebuilt.bids}
    asks = {D(level.price): D(level.size) for level in rebuilt.asks}
    assert (bids, asks) == EXPECTED.books["NKNUSDT"]


async def test_candle_history_pages_through_rest(shared_replay: SharedReplay) -> None:
    stubs = shared_replay.venue.stubs()
    (recorded,) = EXPECTED.candles["NKNUSDT"]
    minute = 60_000_000_000
    end_ns = recorded[0] * 1_000_000 + minute
    start_ns = end_ns - 1_200 * minute  # 1,200 one-minute candles: three pages of 500
    answer = await stubs.md.GetCandles(
        md.GetCandlesRequest(
            symbol="NKN/USDT",
            timeframe=common.TIMEFRAME_1_MINUTE,
            start_ns=start_ns,
            end_ns=end_ns,
            limit=5000,
        ),
        timeout=CALL_TIMEOUT_S,
    )
    opens = [c.open_time_ns for c in answer.candles]
    assert opens == list(range(start_ns, end_ns, minute)), "every minute once, oldest first, across pages"
    assert all(
        D(c.low) <= min(D(c.open), D(c.close)) <= max(D(c.open), D(c.close)) <= D(c.high)
        for c in answer.candles
    )
    last = answer.candles[-1]  # the candle the capture streamed, as it last stood
    assert (D(last.open), D(last.high), D(last.low), D(last.close), D(last.volume)) == recorded[1:]
    short = await stubs.md.GetCandles(
        md.GetCandlesRequest(
            symbol="NKN/USDT", timeframe=common.TIMEFRAME_1_MINUTE, start_ns=start_ns, end_ns=end_ns, limit=7
        ),
        timeout=CALL_TIMEOUT_S,
    )
    assert [c.open_time_ns for c in short.candles] == opens[:7]


SECRET = "replay-secret-value-7f3a"


@pytest.mark.replay(env={"TRADEMESH_BINANCE_API_KEY": "replay-key", "TRADEMESH_BINANCE_API_SECRET": SECRET})
async def test_orders_through_ccxt(replay_venue: Venue) -> None:
    stubs = replay_venue.stubs()
    executions = await listening_executions(stubs)
    order = limit_order("NKN/USDT", common.SIDE_BUY, "100", "0.3", client_order_id="tm-dup-1")
    first = await stubs.tf.PlaceOrder(order, timeout=CALL_TIMEOUT_S)
    assert first.order.status == tf.ORDER_STATUS_OPEN and first.order.client_order_id == "tm-dup-1"
    assert not first.duplicate
    again = await stubs.tf.PlaceOrder(order, timeout=CALL_TIMEOUT_S)
    assert again.duplicate and again.order.order_id == first.order.order_id
    listed = await stubs.tf.ListOpenOrders(tf.ListOpenOrdersRequest(), timeout=CALL_TIMEOUT_S)
    assert [o.order_id for o in listed.orders] == [first.order.order_id]
    balances = await stubs.tf.GetBalances(tf.GetBalancesRequest(), timeout=CALL_TIMEOUT_S)
    assert {b.asset: D(b.free) for b in balances.balances} == {"USDT": D(100000), "BTC": D(2)}

    # The dead-man switch: Binance spot has no cancel-after, so the venue's timer cancels all.
    second = await stubs.tf.PlaceOrder(
        limit_order("LRC/BTC", common.SIDE_SELL, "10", "0.001"), timeout=CALL_TIMEOUT_S
    )
    armed = await stubs.admin.Heartbeat(admin.HeartbeatRequest(ttl_ms=1_000), timeout=CALL_TIMEOUT_S)
    assert armed.dead_man.armed

    async def all_canceled() -> bool | None:
        listed = await stubs.tf.ListOpenOrders(tf.ListOpenOrdersRequest(), timeout=CALL_TIMEOUT_S)
        return True if not listed.orders else None

    await until(all_canceled, 10.0, what="cancel-all after the lapsed heartbeat")
    status = await stubs.admin.GetStatus(admin.GetStatusRequest(), timeout=CALL_TIMEOUT_S)
    assert status.dead_man.trips == 1
    fetched = await stubs.tf.GetOrder(
        tf.GetOrderRequest(order_id=second.order.order_id), timeout=CALL_TIMEOUT_S
    )
    assert fetched.order.status == tf.ORDER_STATUS_CANCELED
    for placed in (first, second):
        await executions.wait_for(placed.order.order_id, tf.ORDER_STATUS_OPEN)
        await executions.wait_for(placed.order.order_id, tf.ORDER_STATUS_CANCELED)
    assert SECRET not in replay_venue.log()


@pytest.mark.replay(
    env={"TRADEMESH_BINANCE_API_KEY": "replay-key", "TRADEMESH_BINANCE_API_SECRET": SECRET},
    faults=["slow@1"],
    config="request_timeout_s = 1\n",
)
async def test_an_order_whose_answer_times_out_is_found_not_placed_twice(replay_venue: Venue) -> None:
    stubs = replay_venue.stubs()
    order = limit_order("NKN/USDT", common.SIDE_BUY, "100", "0.3", client_order_id="tm-slow-1")
    # The venue takes the order but answers after 3 s, past the 1 s timeout: the connector
    # asks the venue for the order by its client id before retrying, and finds it.
    placed = await stubs.tf.PlaceOrder(order, timeout=CALL_TIMEOUT_S)
    assert placed.order.client_order_id == "tm-slow-1" and placed.order.status == tf.ORDER_STATUS_OPEN
    listed = await stubs.tf.ListOpenOrders(tf.ListOpenOrdersRequest(), timeout=CALL_TIMEOUT_S)
    assert [o.client_order_id for o in listed.orders] == ["tm-slow-1"], "exactly one order at the venue"
    assert "no clear answer" in replay_venue.log()


@pytest.mark.replay(env={"TRADEMESH_BINANCE_API_KEY": "replay-key", "TRADEMESH_BINANCE_API_SECRET": SECRET})
async def test_a_fill_comes_over_the_private_stream_once(replay_venue: Venue) -> None:
    stubs = replay_venue.stubs()
    executions = await listening_executions(stubs)
    # Far above the market: it crosses the recorded book and fills at its best ask at once.
    order = limit_order("LRC/BTC", common.SIDE_BUY, "10", "1", client_order_id="tm-fill-1")
    placed = await stubs.tf.PlaceOrder(order, timeout=CALL_TIMEOUT_S)
    assert placed.order.status == tf.ORDER_STATUS_FILLED

    async def the_fill() -> tf.Execution | None:
        return next((e for e in executions.of(placed.order.order_id) if e.HasField("fill")), None)

    execution = await until(the_fill, CALL_TIMEOUT_S, what="a fill on the private stream")
    fill = execution.fill
    assert (fill.client_order_id, fill.symbol, fill.side) == ("tm-fill-1", "LRC/BTC", common.SIDE_BUY)
    assert D(fill.size) == 10 and D(fill.price) == D(placed.order.average_fill_price) < 1
    # 0.1 % in the quote asset, to Binance's 8 decimals.
    assert D(fill.fee) == (D(fill.price) * 10 * D("0.001")).quantize(D("1e-8")) and fill.fee_asset == "BTC"
    assert fill.liquidity == tf.LIQUIDITY_TAKER and execution.order.status == tf.ORDER_STATUS_FILLED
    await asyncio.sleep(0.5)  # any late duplicate would have arrived by now
    fills = [e for e in executions.of(placed.order.order_id) if e.HasField("fill")]
    filled_states = [
        e for e in executions.of(placed.order.order_id) if e.order.status == tf.ORDER_STATUS_FILLED
    ]
    assert len(fills) == 1, "each fill once, though REST and the private stream both tell of it"
    assert len(filled_states) == 2, "the REST answer's FILLED, then the fill itself"


async def test_trading_without_credentials_is_refused(shared_replay: SharedReplay) -> None:
    stubs = shared_replay.venue.stubs()
    with pytest.raises(Exception) as failure:
        await stubs.tf.GetBalances(tf.GetBalancesRequest(), timeout=CALL_TIMEOUT_S)
    assert "TRADEMESH_BINANCE_API_KEY" in str(failure.value)
    assert "FAILED_PRECONDITION" in str(failure.value)
