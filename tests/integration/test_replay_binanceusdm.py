"""Binance USD-M perpetuals against their recorded session: every message normalized, a gap survived.

Expected values are computed here from the capture's own text (independently of the
venue's replay adapter) and compared with what a gRPC subscriber receives. The session's mark
price and 24h ticker streams (BINANCE_FUTURES.ws.2.0, written from Binance's docs) give the
funding rates and the tickers' 24h volume.
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
    Collected,
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
    Venue,
    limit_order,
    listening_executions,
    stream_status,
    until,
)
from trademesh.admin.v1 import admin_pb2 as admin
from trademesh.common.v1 import common_pb2 as common
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

pytestmark = [pytest.mark.integration, pytest.mark.slow]

FILES = capture_files("BINANCE_FUTURES")
D = Decimal
Book = tuple[dict[D, D], dict[D, D]]


class Expected:
    """What the capture says, per native symbol."""

    def __init__(self, files: list[Path]) -> None:
        self.trades: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
        self.tickers: dict[str, list[tuple[Any, ...]]] = defaultdict(list)  # of the bookTickers
        self.volumes: dict[str, list[tuple[Any, ...]]] = defaultdict(list)  # of the 24hrTickers
        self.funding: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
        self.candles: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
        self.books: dict[str, Book] = {}
        self.snapshots: dict[str, Book] = {}  # the recorded depth snapshots, before any update
        self.rows: dict[str, dict[int, tuple[D, ...]]] = defaultdict(dict)
        self.sent: dict[tuple[str, int], tuple[Any, ...]] = {}
        nonce: dict[str, int] = {}
        for url, body in self.rest(files):
            if "/fapi/v1/depth?" in url:
                symbol = url.split("symbol=")[1].split("&")[0]
                self.books[symbol] = (
                    {D(p): D(q) for p, q in body["bids"]},
                    {D(p): D(q) for p, q in body["asks"]},
                )
                nonce[symbol] = body["lastUpdateId"]
        for symbol, (bids, asks) in self.books.items():
            self.snapshots[symbol] = (dict(bids), dict(asks))
        for data in self.frames(files):
            symbol, event = data["s"], data.get("e")
            if event == "aggTrade":
                side = common.SIDE_SELL if data["m"] else common.SIDE_BUY
                self.trades[symbol].append((str(data["a"]), D(data["p"]), D(data["q"]), side, data["T"]))
            elif event == "kline":
                self.kline(symbol, data["k"])
            elif event == "depthUpdate":
                # Binance's futures rule: events up to the snapshot's lastUpdateId are in it already.
                if symbol in nonce and data["u"] > nonce[symbol]:
                    nonce[symbol] = data["u"]
                    self.apply(self.books[symbol], data)
            elif event == "bookTicker":
                self.tickers[symbol].append((D(data["b"]), D(data["B"]), D(data["a"]), D(data["A"])))
            elif event == "24hrTicker":
                self.volumes[symbol].append((D(data["v"]), D(data["q"])))
            elif event == "markPriceUpdate":
                rate, mark, index = D(data["r"]), D(data["p"]), D(data["i"])
                self.funding[symbol].append((rate, data["T"] * 1_000_000, mark, index, data["E"]))

    def kline(self, symbol: str, k: dict[str, Any]) -> None:
        """A candle comes out whenever its values or its closed flag change; a candle is closed
        once a newer one has opened (an update equal to the last one sent adds nothing)."""
        rows = self.rows[symbol]
        rows[k["t"]] = (D(k["o"]), D(k["h"]), D(k["l"]), D(k["c"]), D(k["v"]))
        latest = max(rows)
        for open_time in sorted(rows):
            candle = (open_time, *rows[open_time], open_time < latest)
            if self.sent.get((symbol, open_time)) != candle:
                self.sent[(symbol, open_time)] = candle
                self.candles[symbol].append(candle)

    @staticmethod
    def rest(files: list[Path]) -> list[tuple[str, dict[str, Any]]]:
        answers = []
        for path in files:
            for line in path.read_text().splitlines():
                url, arrow, rest = line.partition(" -> ")
                if arrow and url.startswith("https://"):
                    answers.append((url, json.loads(rest.split(": ", 1)[1])))
        return answers

    @staticmethod
    def frames(files: list[Path]) -> list[dict[str, Any]]:
        """Every connection's frames, in the order they were received (a stable sort by time)."""
        frames = []
        for path in files:
            for line in path.read_text().splitlines():
                head, _, text = line.partition(": ")
                if head.replace(".", "").isdigit() and text.startswith('{"stream"'):
                    frames.append((float(head), json.loads(text)["data"]))
        return [data for _, data in sorted(frames, key=lambda frame: frame[0])]

    @staticmethod
    def apply(book: Book, data: dict[str, Any]) -> None:
        for side, levels in zip(book, (data["b"], data["a"]), strict=True):
            for price, size in levels:
                if D(size) == 0:
                    side.pop(D(price), None)
                else:
                    side[D(price)] = D(size)


EXPECTED = Expected(FILES)
SYMBOLS = {
    "SUSHIUSDT": "SUSHI/USDT:USDT",
    "AKROUSDT": "AKRO/USDT:USDT",
    "KEEPUSDT": "KEEP/USDT:USDT",
    "CTKUSDT": "CTK/USDT:USDT",
}


replay_venue = replay_venue_fixture("binanceusdm", FILES)
shared_replay = shared_replay_fixture("binanceusdm")


def runs(values: list[Any]) -> list[Any]:
    """The values with each run of equal neighbours as one (and no blank one)."""
    return [v for i, v in enumerate(values) if None not in v and (i == 0 or v != values[i - 1])]


def assert_tickers(collected: Collected, symbol: str, native: str) -> None:
    """A ticker per frame of either stream, holding the best bid and ask of the symbol's last
    bookTicker and the 24h volume of its last 24hrTicker: each stream's values in its order. The
    two streams come on two connections (ccxt's public and market ones), so how their frames
    interleave is the machine's, not the capture's."""
    tickers = collected.tickers(symbol, blank_as_none=True)
    assert len(tickers) == len(EXPECTED.tickers[native]) + len(EXPECTED.volumes[native])
    assert runs(tickers) == runs(EXPECTED.tickers[native])
    assert runs(collected.volumes(symbol)) == runs(EXPECTED.volumes[native])


def assert_book(collected: Collected, symbol: str, native: str, depth: int = 900) -> None:
    """The book ends as the capture's: the best `depth` levels exactly, deeper ones where both have them.

    ccxt keeps a side to the snapshot's 1000 levels (watchOrderBookLimit) and trims the
    worst ones whenever a watch returns, so the deepest few levels depend on timing.
    """
    got, expected = collected.book(symbol), EXPECTED.books[native]
    for side, (levels, want) in enumerate(zip(got, expected, strict=True)):
        best = sorted(want, reverse=side == 0)[:depth]
        assert {p: levels.get(p) for p in best} == {p: want[p] for p in best}, f"{symbol} book differs"
        assert len(sorted(levels, reverse=side == 0)[:depth]) == len(best)
        assert all(want.get(p, q) == q for p, q in levels.items()), f"{symbol}: a deep level differs"


async def test_every_message_comes_out_normalized(shared_replay: SharedReplay) -> None:
    stubs = shared_replay.venue.stubs()
    symbols = await instruments(stubs)
    assert symbols == SYMBOLS
    collected = await shared_replay.collected()
    assert not collected.notices(), "a clean replay has no gaps or resyncs"
    for native, symbol in symbols.items():
        assert collected.trades(symbol) == EXPECTED.trades[native]
        assert_tickers(collected, symbol, native)
        assert collected.candles(symbol, closed=True) == EXPECTED.candles[native]
        assert_book(collected, symbol, native)
    # The capture itself, as a sanity check: 613 bookTickers, 119 24hrTickers.
    assert sum(len(v) for v in EXPECTED.tickers.values()) == 613
    assert sum(len(v) for v in EXPECTED.volumes.values()) == 119
    assert sum(len(v) for v in EXPECTED.trades.values()) == 91
    assert (
        sum(len(v) for v in EXPECTED.candles.values()) == 68
    )  # the capture's 67 klines less 3 repeats, plus 4 closings


async def test_tickers_state_the_24h_volume_and_funding_rates_come_out_as_the_venue_states_them(
    shared_replay: SharedReplay,
) -> None:
    """bookTicker states no volume: each ticker holds the 24h volume of the symbol's last 24hrTicker;
    each markPriceUpdate is a funding rate with its next funding time, mark and index prices."""
    collected = await shared_replay.collected()
    for native, symbol in SYMBOLS.items():
        assert_tickers(collected, symbol, native)
        assert collected.funding(symbol) == EXPECTED.funding[native]
        assert len(collected.funding(symbol)) >= 29
    assert EXPECTED.funding["AKROUSDT"][0][0] < 0 < EXPECTED.funding["SUSHIUSDT"][0][0]  # a rate below zero
    stubs = shared_replay.venue.stubs()
    status = await stubs.admin.GetStatus(admin.GetStatusRequest(), timeout=CALL_TIMEOUT_S)
    funding = [s for s in status.streams if s.channel == md.CHANNEL_FUNDING]
    assert sorted(s.symbol for s in funding) == sorted(SYMBOLS.values())
    assert all(s.poll_interval_ms == 0 for s in funding), "streamed by the venue, not polled"


@pytest.mark.replay(config="funding_stream = false\nfunding_poll_s = 0.2\n")
async def test_funding_rates_polled_by_rest_are_the_venues_and_admin_says_they_are_polled(
    replay_venue: Venue,
) -> None:
    """With funding_stream = false the venue reads each perpetual's funding rate by REST (ccxt's
    fetch_funding_rate: GET /fapi/v1/premiumIndex, which the stand-in answers from the mark prices
    replayed) every funding_poll_s: each event is a state the venue stated, and the last is the
    session's last."""
    stubs = replay_venue.stubs()
    request = md.SubscribeRequest(symbols=list(SYMBOLS.values()), channels=[md.CHANNEL_FUNDING])
    call = stubs.md.Subscribe(request)
    seen: dict[str, list[tuple[Any, ...]]] = defaultdict(list)

    async def read() -> None:
        async for message in call:
            collected = Collected(list(message.events))
            assert all(event.HasField("funding_rate") for event in collected.events), collected.events
            for symbol in SYMBOLS.values():
                seen[symbol] += collected.funding(symbol)

    async def at_the_sessions_last() -> bool | None:
        done = all(seen[s] and seen[s][-1] == EXPECTED.funding[n][-1] for n, s in SYMBOLS.items())
        return True if done else None

    reader = asyncio.create_task(read())
    try:
        await until(at_the_sessions_last, timeout_s=30, what="each symbol's last funding rate polled")
    finally:
        call.cancel()
        reader.cancel()
    for native, symbol in SYMBOLS.items():
        assert set(seen[symbol]) <= set(EXPECTED.funding[native]), "each polled rate is one the venue stated"
    status = await stream_status(stubs)
    funding = [s for s in status.streams if s.channel == md.CHANNEL_FUNDING]
    assert len(funding) == len(SYMBOLS) and all(s.poll_interval_ms == 200 for s in funding)
    assert all(s.state == admin.STREAM_STATE_CONNECTED for s in funding)


@pytest.mark.replay(faults=["gap@40"])
async def test_a_dropped_depth_update_forces_a_resync(replay_venue: Venue) -> None:
    stubs = replay_venue.stubs()
    symbols = await instruments(stubs)
    collected = await collect(
        stubs, list(symbols.values()), quiet_s=4.0, played=replay_venue.log_path, until=resync_done
    )
    resynced = {e.symbol for e in collected.notices(md.NOTICE_KIND_RESYNC)}
    assert len(resynced) == 1, "one dropped depth update, one resync"
    # Snapshots follow the replay, so after the resync every book still ends right.
    for native, symbol in symbols.items():
        assert_book(collected, symbol, native)
    status = {(s.symbol, s.channel): s for s in (await stream_status(stubs)).streams}
    assert status[(resynced.pop(), md.CHANNEL_BOOK)].resyncs >= 1


SECRET = "replay-secret-value-usdm-41c9"


@pytest.mark.replay(
    env={"TRADEMESH_BINANCEUSDM_API_KEY": "replay-key", "TRADEMESH_BINANCEUSDM_API_SECRET": SECRET}
)
async def test_orders_through_ccxt(replay_venue: Venue) -> None:
    stubs = replay_venue.stubs()
    order = limit_order("SUSHI/USDT:USDT", common.SIDE_BUY, "10", "7.5", client_order_id="tm-usdm-1")
    first = await stubs.tf.PlaceOrder(order, timeout=CALL_TIMEOUT_S)
    assert first.order.status == tf.ORDER_STATUS_OPEN and first.order.client_order_id == "tm-usdm-1"
    again = await stubs.tf.PlaceOrder(order, timeout=CALL_TIMEOUT_S)
    assert again.duplicate and again.order.order_id == first.order.order_id
    listed = await stubs.tf.ListOpenOrders(tf.ListOpenOrdersRequest(), timeout=CALL_TIMEOUT_S)
    assert [o.order_id for o in listed.orders] == [first.order.order_id]
    balances = await stubs.tf.GetBalances(tf.GetBalancesRequest(), timeout=CALL_TIMEOUT_S)
    assert {b.asset: D(b.free) for b in balances.balances} == {"USDT": D(100000), "BNB": D(2)}
    positions = await stubs.tf.GetPositions(tf.GetPositionsRequest(), timeout=CALL_TIMEOUT_S)
    assert not positions.positions

    # The dead-man switch: no cancel-after in ccxt's binanceusdm, so the venue's timer cancels all.
    second = await stubs.tf.PlaceOrder(
        limit_order("CTK/USDT:USDT", common.SIDE_SELL, "10", "2"), timeout=CALL_TIMEOUT_S
    )
    armed = await stubs.admin.Heartbeat(admin.HeartbeatRequest(ttl_ms=1_000), timeout=CALL_TIMEOUT_S)
    assert armed.dead_man.armed

    async def all_canceled() -> bool | None:
        listed = await stubs.tf.ListOpenOrders(tf.ListOpenOrdersRequest(), timeout=CALL_TIMEOUT_S)
        return True if not listed.orders else None

    await until(all_canceled, 10.0, what="cancel-all after the lapsed heartbeat")
    fetched = await stubs.tf.GetOrder(
        tf.GetOrderRequest(order_id=second.order.order_id), timeout=CALL_TIMEOUT_S
    )
    assert fetched.order.status == tf.ORDER_STATUS_CANCELED
    assert SECRET not in replay_venue.log()


@pytest.mark.replay(
    env={"TRADEMESH_BINANCEUSDM_API_KEY": "replay-key", "TRADEMESH_BINANCEUSDM_API_SECRET": SECRET}
)
async def test_a_fill_comes_over_the_user_data_stream_once(replay_venue: Venue) -> None:
    stubs = replay_venue.stubs()
    executions = await listening_executions(stubs)
    # Nothing has been replayed (no market-data subscriber): the book is the recorded snapshot,
    # and a buy far above the market fills at once at its best ask.
    best_ask = min(EXPECTED.snapshots["SUSHIUSDT"][1])
    order = limit_order("SUSHI/USDT:USDT", common.SIDE_BUY, "10", "100", client_order_id="tm-usdm-fill")
    placed = await stubs.tf.PlaceOrder(order, timeout=CALL_TIMEOUT_S)
    assert placed.order.status == tf.ORDER_STATUS_FILLED

    async def the_fill() -> tf.Execution | None:
        return next((e for e in executions.of(placed.order.order_id) if e.HasField("fill")), None)

    # Futures REST answers carry no fills: a fill can only come from ORDER_TRADE_UPDATE.
    execution = await until(the_fill, CALL_TIMEOUT_S, what="a fill on the user data stream")
    fill = execution.fill
    assert (fill.client_order_id, fill.symbol, fill.side) == (
        "tm-usdm-fill",
        "SUSHI/USDT:USDT",
        common.SIDE_BUY,
    )
    assert (D(fill.price), D(fill.size)) == (best_ask, D(10))
    assert D(placed.order.average_fill_price) == best_ask
    # The stand-in's 0.1 % commission in USDT, to 8 decimals.
    assert D(fill.fee) == (best_ask * 10 * D("0.001")).quantize(D("1e-8")) and fill.fee_asset == "USDT"
    assert fill.liquidity == tf.LIQUIDITY_TAKER and execution.order.status == tf.ORDER_STATUS_FILLED
    await asyncio.sleep(0.5)  # any late duplicate would have arrived by now
    fills = [e for e in executions.of(placed.order.order_id) if e.HasField("fill")]
    filled = [e for e in executions.of(placed.order.order_id) if e.order.status == tf.ORDER_STATUS_FILLED]
    assert len(fills) == 1, "each fill once"
    assert len(filled) == 2, "the REST answer's FILLED, then the fill itself"
    assert SECRET not in replay_venue.log()
