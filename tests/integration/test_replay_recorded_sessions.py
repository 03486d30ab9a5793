"""Real sessions recorded by cryptofeed years apart replay as recorded, or are refused saying why.

The sessions are in fixtures/exchange-captures/other-recorders (README.md names each one's
cryptofeed commit): OKX's API v5 under the old okex.com hosts (its instruments recorded from
www.okex.com), sessions of APIs no stand-in speaks (OKEx v3, Coinbase Pro, Bybit v2), which
used to start an empty venue that said RUNNING (issue 15), and Binance spot with its depth
snapshots at the old /api/v1/depth address (issue 14). Expected values are read from the
files' text.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest

from tests.forked_services import run_command
from tests.integration.other_sessions import session_files, summary_of
from tests.integration.replay import CAPTURES, collect, instruments, start_replay_venue
from tests.integration.support import Venue, stop_venue
from tests.integration.test_venue_integrity import binance_reconstruction
from trademesh.admin.v1 import admin_pb2 as admin
from trademesh.marketdata.v1 import marketdata_pb2 as md

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # not in the fast tier (./dev test --fast)

D = Decimal


def venue_command(name: str, files: list[Path]) -> tuple[int, str, str]:
    """`trademesh venue NAME --replay FILES` to its end: (exit code, stdout, stderr); the
    deadline is against a hang."""
    command = ["venue", name, "--port", "0", "--metrics-port", "0", "--replay", *map(str, files)]
    done = run_command(command, {**os.environ, "TRADEMESH_TOKEN": "t"}, timeout_s=90)
    return done.returncode, done.stdout, done.stderr


@pytest.mark.parametrize(
    ("venue", "session", "says"),
    [
        ("okx", "OKEX_V3", "recorded from OKEx's API v3 (wss://real.okex.com:8443/ws/v3)"),
        ("okx-swap", "OKEX_V3", "recorded from OKEx's API v3 (wss://real.okex.com:8443/ws/v3)"),
        ("coinbase", "COINBASE_PRO", "recorded from Coinbase Pro's API (wss://ws-feed.pro.coinbase.com)"),
        ("bybit", "BYBIT_V2", "recorded from Bybit's API v2 (wss://stream.bybit.com/realtime_public)"),
    ],
)
def test_a_session_of_an_api_the_stand_in_does_not_speak_is_refused_in_one_line(
    venue: str, session: str, says: str
) -> None:
    code, stdout, stderr = venue_command(venue, session_files(session))
    lines = stderr.strip().splitlines()
    assert code == 2, stderr
    assert len(lines) == 1 and lines[0].startswith("trademesh: replay: "), stderr
    assert says in lines[0] and "does not speak" in lines[0]
    assert stdout == "", "it never served"


def test_a_session_with_no_market_data_the_stand_in_knows_is_refused_in_one_line() -> None:
    """OKX's frames to the Deribit stand-in: none is Deribit market data."""
    code, _, stderr = venue_command("deribit", sorted(CAPTURES.glob("OKX.*")))
    lines = stderr.strip().splitlines()
    assert code == 2 and len(lines) == 1, stderr
    assert "none of the capture's 160 received frames is market data this stand-in serves" in lines[0]
    assert "unrecognized 160" in lines[0]


@pytest.fixture
async def okex_v5(tmp_path: Path) -> AsyncIterator[Venue]:
    venue, log = start_replay_venue(tmp_path, "okx", session_files("OKEX_V5"))
    try:
        yield venue
    finally:
        await stop_venue(venue, log)


def recorded_spot_instruments(files: list[Path]) -> dict[str, dict[str, str]]:
    """instId -> the recorded SPOT instrument, from the session's REST lines."""
    found: dict[str, dict[str, str]] = {}
    for path in files:
        for line in path.read_text().splitlines():
            url, arrow, rest = line.partition(" -> ")
            if arrow and "instType=SPOT" in url:
                found.update({i["instId"]: i for i in json.loads(rest.split(": ", 1)[1])["data"]})
    return found


async def test_instruments_recorded_under_the_okex_host_are_used_as_recorded(okex_v5: Venue) -> None:
    """ccxt asks www.okx.com; the session recorded them from www.okex.com (FUN-BTC: a minimum
    of 10, where made-up values said 0.00000001)."""
    files = session_files("OKEX_V5")
    assert all("www.okex.com" in p.read_text() for p in files if p.name == "OKEX_V5.0")
    recorded = recorded_spot_instruments(files)
    answer = await okex_v5.stubs().md.ListInstruments(md.ListInstrumentsRequest(), timeout=10)
    listed = {i.native_symbol: i for i in answer.instruments}
    assert set(listed) == set(recorded) == {"FUN-BTC", "ONT-USDT"}
    for native, instrument in listed.items():
        row = recorded[native]
        assert (D(instrument.min_size), D(instrument.lot_size), D(instrument.tick_size)) == (
            D(row["minSz"]),
            D(row["lotSz"]),
            D(row["tickSz"]),
        ), native
    assert D(listed["FUN-BTC"].min_size) == 10
    assert "the capture's answer for www.okex.com/api/v5/public/instruments serves" in okex_v5.log()
    await collect(okex_v5.stubs(), sorted(i.symbol for i in listed.values()), [md.CHANNEL_TRADES],
                  played=okex_v5.log_path)  # fmt: skip
    summary = await summary_of(okex_v5)
    assert "okx instruments" not in summary.synthesized, "nothing made up for the instruments"


# ---- Binance depth snapshots (issue 14)


@pytest.fixture
async def binance(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Venue]:
    """A binance venue replaying the session the test names (parametrized indirectly)."""
    venue, log = start_replay_venue(tmp_path, "binance", session_files(request.param))
    try:
        yield venue
    finally:
        await stop_venue(venue, log)


def book_streams(answer: admin.GetStatusResponse) -> dict[str, admin.StreamStatus]:
    return {s.symbol: s for s in answer.streams if s.channel == md.CHANNEL_BOOK}


@pytest.mark.parametrize("binance", ["BINANCE_V1"], indirect=True)
async def test_snapshots_recorded_at_the_old_api_v1_address_start_the_books(binance: Venue) -> None:
    """cryptofeed took them at www.binance.com/api/v1/depth; they used to be ignored ("the capture
    holds none"): each book started empty and held the session's few changed levels."""
    files = session_files("BINANCE_V1")
    assert all("/api/v1/depth?symbol=" in line for line in files[1].read_text().splitlines())
    stubs = binance.stubs()
    symbols = await instruments(stubs)
    assert symbols == {"ADARUB": "ADA/RUB", "GTOBTC": "GTO/BTC"}
    collected = await collect(stubs, list(symbols.values()), [md.CHANNEL_BOOK], played=binance.log_path)
    for native, symbol in symbols.items():
        (venue_bids, venue_asks), floor, ceiling = binance_reconstruction(files, native)
        bids, asks = collected.book(symbol)
        assert (max(bids), min(asks)) == (max(venue_bids), min(venue_asks)), f"{symbol}: best bid and ask"
        # Inside the range it publishes (the snapshot's, cut at 1,000 levels), the book is the venue's.
        assert min(bids) >= floor and max(asks) <= ceiling
        assert bids == {p: q for p, q in venue_bids.items() if p >= min(bids)}, symbol
        assert asks == {p: q for p, q in venue_asks.items() if p <= max(asks)}, symbol
        assert len(bids) > 100 and len(asks) > 100, f"{symbol}: the snapshot's depth"
    assert not collected.notices(), "the books are the venue's: no notice"
    streams = book_streams(await stubs.admin.GetStatus(admin.GetStatusRequest(), timeout=10))
    assert {s.state for s in streams.values()} == {admin.STREAM_STATE_CONNECTED}
    summary = await summary_of(binance)
    assert "binance depth snapshots" not in summary.synthesized and summary.refused == "none"


@pytest.mark.parametrize("binance", ["BINANCE_WS"], indirect=True)
async def test_a_book_the_capture_has_no_snapshot_of_is_marked_incomplete(binance: Venue) -> None:
    """A session of frames only: the stand-in starts each book empty (docs/venues.md), which the
    venue must not publish as the exchange's book."""
    stubs = binance.stubs()
    symbols = list((await instruments(stubs)).values())
    collected = await collect(stubs, symbols, [md.CHANNEL_BOOK], played=binance.log_path)
    for symbol in symbols:
        events = [e for e in collected.events if e.symbol == symbol]
        first = events[0]
        assert first.HasField("notice") and first.notice.kind == md.NOTICE_KIND_GAP, symbol
        assert first.notice.reason.startswith("stream incomplete: the capture holds no depth snapshot")
        assert any(e.HasField("book_snapshot") for e in events[1:]), "the book is still served"
    answer = await stubs.admin.GetStatus(admin.GetStatusRequest(), timeout=10)
    streams = book_streams(answer)
    assert set(streams) == set(symbols)
    for stream in streams.values():
        assert stream.state == admin.STREAM_STATE_INCOMPLETE
        assert stream.detail.startswith("the capture holds no depth snapshot of it")
    assert answer.state == admin.VENUE_STATE_DEGRADED
