"""OKX spot and swaps against their sessions (written from OKX's v5 docs): every message normalized.

Expected values are computed here from the capture text (independently of the venue's
replay adapter) with Decimal, and compared with what a gRPC subscriber receives.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.integration.replay import (
    ReplaySessions,
    SharedReplay,
    capture_files,
    collect,
    instruments,
    resync_done,
    running_replay_venue,
)
from tests.integration.support import CALL_TIMEOUT_S, Venue
from trademesh.admin.v1 import admin_pb2 as admin
from trademesh.common.v1 import common_pb2 as common
from trademesh.marketdata.v1 import marketdata_pb2 as md

pytestmark = [pytest.mark.integration, pytest.mark.slow]

D = Decimal
# venue name -> (capture prefix, native symbol, canonical symbol, candle volume column)
# ccxt reads an OKX candle's volume from `vol` for spot and from `volCcy` (base units) for contracts.
VENUES = {
    "okx": ("OKX", "BTC-USDT", "BTC/USDT", 5),
    "okx-swap": ("OKX_SWAP", "BTC-USDT-SWAP", "BTC/USDT:USDT", 6),
}


def frames(files: list[Path]) -> list[tuple[float, dict[str, Any]]]:
    """Received market frames of every connection, merged by receive time."""
    found = []
    for path in files:
        for line in path.read_text().splitlines():
            head, _, text = line.partition(": ")
            if head.replace(".", "").isdigit() and '"data"' in text:
                found.append((float(head), json.loads(text)))
    return sorted(found, key=lambda item: item[0])


def crc(bids: dict[D, list[str]], asks: dict[D, list[str]]) -> int:
    """OKX's documented checksum, computed independently of the generator and the adapter."""
    top_bids = [bids[p] for p in sorted(bids, reverse=True)][:25]
    top_asks = [asks[p] for p in sorted(asks)][:25]
    fields = []
    for i in range(25):
        for side in (top_bids, top_asks):
            if i < len(side):
                fields += [side[i][0], side[i][1]]
    value = zlib.crc32(":".join(fields).encode())
    return value - 2**32 if value >= 2**31 else value


class Expected:
    def __init__(self, files: list[Path], volume_column: int) -> None:
        self.trades: list[tuple[Any, ...]] = []
        self.tickers: list[tuple[Any, ...]] = []
        self.candles: list[tuple[Any, ...]] = []
        self.book_frames = 0
        self.checksums_ok = 0
        bids: dict[D, list[str]] = {}
        asks: dict[D, list[str]] = {}
        for _, frame in frames(files):
            channel = frame["arg"]["channel"]
            for data in frame["data"]:
                if channel == "trades":
                    side = common.SIDE_BUY if data["side"] == "buy" else common.SIDE_SELL
                    self.trades.append((data["tradeId"], D(data["px"]), D(data["sz"]), side, int(data["ts"])))
                elif channel == "tickers":
                    self.tickers.append(
                        (
                            D(data["bidPx"]),
                            D(data["bidSz"]),
                            D(data["askPx"]),
                            D(data["askSz"]),
                            D(data["last"]),
                        )
                    )
                elif channel == "candle1m":
                    self.candles.append((int(data[0]), *(D(v) for v in data[1:5]), D(data[volume_column])))
                elif channel == "books":
                    self.book_frames += 1
                    if frame["action"] == "snapshot":
                        bids, asks = {}, {}
                    for book_side, levels in ((bids, data["bids"]), (asks, data["asks"])):
                        for level in levels:
                            if D(level[1]) == 0:
                                book_side.pop(D(level[0]), None)
                            else:
                                book_side[D(level[0])] = level
                    assert max(bids) < min(asks), "the fixture's book is crossed"
                    self.checksums_ok += crc(bids, asks) == data["checksum"]
        self.book = ({p: D(lv[1]) for p, lv in bids.items()}, {p: D(lv[1]) for p, lv in asks.items()})


@pytest.fixture(params=list(VENUES))
async def replay_venue(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[tuple[str, Venue]]:
    name = request.param
    async with running_replay_venue(tmp_path, request, name, capture_files(VENUES[name][0])) as venue:
        yield name, venue


@pytest.fixture(params=list(VENUES))
def shared_replay(
    replay_sessions: ReplaySessions, request: pytest.FixtureRequest
) -> tuple[str, SharedReplay]:
    """The venue's shared replay, for the tests that only read it."""
    return request.param, replay_sessions.get(request.param)


def by_open_time(candles: list[tuple[Any, ...]]) -> dict[int, list[tuple[Any, ...]]]:
    grouped: dict[int, list[tuple[Any, ...]]] = {}
    for candle in candles:
        grouped.setdefault(candle[0], []).append(candle)
    return grouped


def test_fixture_checksums_follow_the_documented_algorithm() -> None:
    for prefix, _, _, column in VENUES.values():
        expected = Expected(capture_files(prefix), column)
        assert expected.book_frames > 40
        assert expected.checksums_ok == expected.book_frames


async def test_every_message_comes_out_normalized(shared_replay: tuple[str, SharedReplay]) -> None:
    name, shared = shared_replay
    prefix, native, symbol, column = VENUES[name]
    expected = Expected(capture_files(prefix), column)
    stubs = shared.venue.stubs()
    assert await instruments(stubs) == {native: symbol}
    collected = await shared.collected()
    assert not collected.notices(), "a clean replay has no gaps or resyncs"
    assert collected.trades(symbol) == expected.trades
    assert collected.tickers(symbol, last_price=True) == expected.tickers
    # Every update of each candle, in order; a candle's closing update may come out after the
    # next candle opened (the venue closes it by opening the next one), so compare per candle.
    assert by_open_time(collected.candles(symbol)) == by_open_time(expected.candles)
    assert collected.book(symbol) == expected.book
    assert len(collected.of(symbol, "book_delta")) == expected.book_frames - 1


@pytest.mark.replay(faults=["gap@40"])
async def test_a_lost_book_update_forces_a_resync(replay_venue: tuple[str, Venue]) -> None:
    name, venue = replay_venue
    prefix, _, symbol, column = VENUES[name]
    expected = Expected(capture_files(prefix), column)
    stubs = venue.stubs()
    await instruments(stubs)
    collected = await collect(stubs, [symbol], quiet_s=4.0, played=venue.log_path, until=resync_done)
    kinds = {(e.symbol, e.notice.kind) for e in collected.notices()}
    assert (symbol, md.NOTICE_KIND_RESYNC) in kinds, "the dropped books update forces a resync"
    # The stand-in answers the re-subscribe with a snapshot of the replay position: the book ends right.
    assert collected.book(symbol) == expected.book
    assert collected.trades(symbol) == expected.trades


async def test_every_candle_update_comes_out(shared_replay: tuple[str, SharedReplay]) -> None:
    name, shared = shared_replay
    prefix, _, symbol, column = VENUES[name]
    expected = Expected(capture_files(prefix), column)
    collected = await shared.collected()
    assert by_open_time(collected.candles(symbol)) == by_open_time(expected.candles)


@pytest.mark.replay(
    env={
        "TRADEMESH_OKX_API_KEY": "replay-key",
        "TRADEMESH_OKX_API_SECRET": "replay-secret",
        "TRADEMESH_OKX_PASSPHRASE": "replay-pass",
        "TRADEMESH_OKX_SWAP_API_KEY": "replay-key",
        "TRADEMESH_OKX_SWAP_API_SECRET": "replay-secret",
        "TRADEMESH_OKX_SWAP_PASSPHRASE": "replay-pass",
    }
)
async def test_a_heartbeat_arms_okxs_own_cancel_all_after(replay_venue: tuple[str, Venue]) -> None:
    _, venue = replay_venue
    stubs = venue.stubs()
    armed = await stubs.admin.Heartbeat(admin.HeartbeatRequest(ttl_ms=2_000), timeout=CALL_TIMEOUT_S)
    assert armed.dead_man.armed and armed.dead_man.ttl_ms == 2_000
    # OKX takes 10 to 120 s: a shorter ttl arms the venue's switch at 10 s as the backstop,
    # while the runtime's own timer keeps the 2 s ttl.
    assert "cancel-all-after timeOut=10" in venue.log()
    await stubs.admin.Heartbeat(admin.HeartbeatRequest(ttl_ms=0), timeout=CALL_TIMEOUT_S)
    assert "cancel-all-after timeOut=0" in venue.log()
