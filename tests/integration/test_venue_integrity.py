"""Book and stream integrity of the live venues, against recorded sessions through the stand-in.

Each test replays a session (or a variant of one, tests/integration/capture_variants.py)
through `trademesh venue <name> --replay` and checks what a gRPC subscriber and Admin see
against what the capture itself says, computed here with Decimal (a test that only reads a
whole session as recorded reads its shared replay venue's, tests/integration/replay.py):
- book checksums (OKX, Kraken): a lost update is caught, announced (RESYNC) and counted;
- stream health: quiet streams leave the venue RUNNING, a stream that stops is STALE;
- trades sent again by the venue go out once;
- a subscriber's first book is the venue's, never an empty placeholder;
- a book started from a depth-limited REST snapshot (Binance) has no holes;
- Deribit's 0.0 best bid/ask is no level.
"""

from __future__ import annotations

import contextlib
import json
import zlib
from collections.abc import AsyncIterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.integration import capture_variants
from tests.integration.replay import (
    Collected,
    ReplaySessions,
    capture_files,
    collect,
    instruments,
    start_replay_venue,
)
from tests.integration.support import CALL_TIMEOUT_S, Venue, stop_venue
from trademesh.admin.v1 import admin_pb2 as admin
from trademesh.marketdata.v1 import marketdata_pb2 as md

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # not in the fast tier (./dev test --fast)

D = Decimal
Book = tuple[dict[D, D], dict[D, D]]
OKX = {"okx": ("OKX", "BTC/USDT"), "okx-swap": ("OKX_SWAP", "BTC/USDT:USDT")}
# A faulted venue's streams watch again 50 ms after a failure, not the default 0.5 s: a stream
# rebuilt after the fault (which the reading waits for) is back that much sooner.
FAST_RETRY = "backoff_initial_s = 0.05\n"


@contextlib.asynccontextmanager
async def replayed(tmp_path: Path, name: str, files: Sequence[Path], **options: Any) -> AsyncIterator[Venue]:
    venue, log = start_replay_venue(tmp_path, name, files, **options)
    try:
        yield venue
    finally:
        await stop_venue(venue, log)


async def status(venue: Venue) -> admin.GetStatusResponse:
    return await venue.stubs().admin.GetStatus(admin.GetStatusRequest(), timeout=CALL_TIMEOUT_S)


def stream(answer: admin.GetStatusResponse, symbol: str, channel: int) -> admin.StreamStatus:
    return next(s for s in answer.streams if s.symbol == symbol and s.channel == channel)


def books_after_each_event(collected: Collected, symbol: str) -> list[Book]:
    """The subscriber's book after every book event (sequence checked), as Decimals."""
    books: list[Book] = []
    bids: dict[D, D] = {}
    asks: dict[D, D] = {}
    sequence = None
    for event in collected.events:
        if event.symbol != symbol or event.WhichOneof("payload") not in ("book_snapshot", "book_delta"):
            continue
        book = event.book_snapshot if event.HasField("book_snapshot") else event.book_delta
        if event.HasField("book_snapshot"):
            bids, asks = {}, {}
        else:
            assert sequence is not None and book.sequence == sequence + 1, "sequence gap"
        sequence = book.sequence
        for side, levels in ((bids, book.bids), (asks, book.asks)):
            for level in levels:
                if D(level.size) == 0:
                    side.pop(D(level.price), None)
                else:
                    side[D(level.price)] = D(level.size)
        books.append((dict(bids), dict(asks)))
    return books


def resynced(collected: Collected) -> bool:
    """For `collect(until=...)`: a resync notice came (a fault's outcome)."""
    return bool(collected.notices(md.NOTICE_KIND_RESYNC))


def assert_never_crossed(books: list[Book]) -> None:
    for bids, asks in books:
        assert not bids or not asks or max(bids) < min(asks), "the published book is crossed"


# ---- 18. book checksums


def okx_books(files: Sequence[Path]) -> list[Book]:
    """OKX's `books` channel applied from the capture text: the book after each frame (checksums checked)."""
    bids: dict[D, list[str]] = {}
    asks: dict[D, list[str]] = {}
    books: list[Book] = []
    for _, frame in capture_variants.market_lines(files):
        if frame["arg"]["channel"] != "books":
            continue
        for data in frame["data"]:
            if frame.get("action") == "snapshot":
                bids, asks = {}, {}
            for side, levels in ((bids, data["bids"]), (asks, data["asks"])):
                for level in levels:
                    if D(level[1]) == 0:
                        side.pop(D(level[0]), None)
                    else:
                        side[D(level[0])] = level
            assert okx_crc(bids, asks) == data["checksum"]
            books.append(({p: D(lv[1]) for p, lv in bids.items()}, {p: D(lv[1]) for p, lv in asks.items()}))
    return books


def assert_only_venue_books(published: list[Book], venue_books: list[Book]) -> None:
    """Every book the subscriber held was one the venue had at some point: none went wrong."""
    held = {_frozen(book) for book in venue_books}
    wrong = [i for i, book in enumerate(published) if _frozen(book) not in held]
    assert not wrong, f"{len(wrong)} of {len(published)} published books were never the venue's"


def _frozen(book: Book) -> tuple[tuple[tuple[D, D], ...], ...]:
    return tuple(sorted(book[0].items())), tuple(sorted(book[1].items()))


def okx_crc(bids: dict[D, list[str]], asks: dict[D, list[str]]) -> int:
    top_bids = [bids[p] for p in sorted(bids, reverse=True)][:25]
    top_asks = [asks[p] for p in sorted(asks)][:25]
    fields = []
    for i in range(25):
        for side in (top_bids, top_asks):
            if i < len(side):
                fields += side[i][:2]
    value = zlib.crc32(":".join(fields).encode())
    return value - 2**32 if value >= 2**31 else value


@pytest.mark.parametrize("name", list(OKX))
async def test_okx_lost_update_on_its_own_session_resyncs_to_the_capture_book(
    tmp_path: Path, name: str
) -> None:
    """OKX numbers its books (prevSeqId): the lost update breaks the chain and forces a resync."""
    prefix, symbol = OKX[name]
    files = capture_files(prefix)
    async with replayed(tmp_path, name, files, faults=["gap@40"], config=FAST_RETRY) as venue:
        collected = await collect(
            venue.stubs(), [symbol], [md.CHANNEL_BOOK], quiet_s=4.0, played=venue.log_path
        )
        assert collected.notices(md.NOTICE_KIND_RESYNC), "the lost update is announced"
        published, venue_books = books_after_each_event(collected, symbol), okx_books(files)
        assert_never_crossed(published)
        assert_only_venue_books(published, venue_books)
        assert collected.book(symbol) == venue_books[-1]
        assert stream(await status(venue), symbol, md.CHANNEL_BOOK).resyncs >= 1


@pytest.mark.parametrize("name", list(OKX))
async def test_okx_checksum_catches_a_lost_update_the_sequence_cannot_show(tmp_path: Path, name: str) -> None:
    """Without seqId/prevSeqId only the checksum tells: RESYNC, a counter, the capture's book."""
    prefix, symbol = OKX[name]
    files = capture_variants.without_book_sequence(capture_files(prefix), tmp_path / "session")
    async with replayed(tmp_path, name, files, faults=["gap@40"], config=FAST_RETRY) as venue:
        collected = await collect(
            venue.stubs(), [symbol], [md.CHANNEL_BOOK], quiet_s=4.0, played=venue.log_path, until=resynced
        )
        resyncs = collected.notices(md.NOTICE_KIND_RESYNC)
        published, venue_books = books_after_each_event(collected, symbol), okx_books(files)
        assert_only_venue_books(published, venue_books)
        assert resyncs and "ChecksumError" in resyncs[0].notice.reason
        assert_never_crossed(published)
        assert collected.book(symbol) == venue_books[-1]
        book = stream(await status(venue), symbol, md.CHANNEL_BOOK)
        assert book.checksum_mismatches >= 1 and book.resyncs >= book.checksum_mismatches


async def test_kraken_lost_update_is_a_counted_checksum_mismatch(tmp_path: Path) -> None:
    files = capture_files("KRAKEN")
    async with replayed(tmp_path, "kraken", files, faults=["gap@200"], config=FAST_RETRY) as venue:
        symbols = list((await instruments(venue.stubs())).values())
        collected = await collect(
            venue.stubs(), symbols, [md.CHANNEL_BOOK], quiet_s=4.0, played=venue.log_path, until=resynced
        )
        symbols_resynced = {e.symbol for e in collected.notices(md.NOTICE_KIND_RESYNC)}
        assert len(symbols_resynced) == 1
        book = stream(await status(venue), symbols_resynced.pop(), md.CHANNEL_BOOK)
        assert book.checksum_mismatches >= 1 and book.resyncs >= 1


async def test_a_sequence_break_of_a_venue_without_checksums_is_no_checksum_mismatch(tmp_path: Path) -> None:
    """ccxt reports Binance's broken U/u chain as a ChecksumError; Binance sends no checksum."""
    files = capture_files("BINANCE_FUTURES")
    async with replayed(tmp_path, "binanceusdm", files, faults=["gap@40"], config=FAST_RETRY) as venue:
        symbols = list((await instruments(venue.stubs())).values())
        collected = await collect(
            venue.stubs(), symbols, [md.CHANNEL_BOOK], quiet_s=4.0, played=venue.log_path, until=resynced
        )
        symbols_resynced = {e.symbol for e in collected.notices(md.NOTICE_KIND_RESYNC)}
        assert len(symbols_resynced) == 1
        book = stream(await status(venue), symbols_resynced.pop(), md.CHANNEL_BOOK)
        assert book.resyncs >= 1 and book.checksum_mismatches == 0


# ---- 20. stream health


async def test_quiet_streams_leave_the_venue_running(replay_sessions: ReplaySessions) -> None:
    """Deribit options: no trade in the whole session, and the venue is still RUNNING."""
    shared = replay_sessions.get("deribit")
    await shared.collected()  # the whole session played, to a subscriber of every stream
    answer = await status(shared.venue)
    trades = [s for s in answer.streams if s.channel == md.CHANNEL_TRADES]
    assert trades and all(s.events_total == 0 for s in trades), "the session holds no trade"
    assert {s.state for s in answer.streams} == {admin.STREAM_STATE_CONNECTED}
    assert answer.state == admin.VENUE_STATE_RUNNING


async def test_a_book_stream_that_stops_is_stale_and_its_subscribers_are_told(tmp_path: Path) -> None:
    """OKX's books end 9 s into the 20 s session while trades go on, played at twice the
    recorded pace: books for 4.5 s, then trades alone for 5 s.

    At that pace neither stays silent for a second (the session's longest silence is 1.9 s), so
    the sampler, a second at a time, learns a usual silence of about 1 s for both; with a factor
    of 1.5 and a floor of 2 s, the book is stale 2 to 3 s after its last update, trades never
    (they would have to stay silent for 2 s, twice as long as they ever do).
    """
    files = capture_variants.with_stream_stopping(capture_files("OKX"), tmp_path / "session", "books", 9.0)
    config = "stale_floor_s = 2\nstale_factor = 1.5\n"
    symbol = "BTC/USDT"
    async with replayed(tmp_path, "okx", files, speed=2.0, config=config) as venue:
        collected = await collect(
            venue.stubs(), [symbol], [md.CHANNEL_BOOK, md.CHANNEL_TRADES], quiet_s=3.0, played=venue.log_path
        )
        notices = collected.notices(md.NOTICE_KIND_GAP)
        gaps = [e.notice for e in notices]
        assert [(n.channel, n.reason.split(":")[0]) for n in gaps] == [(md.CHANNEL_BOOK, "stream stale")]
        assert gaps[0].since_ns > 0
        after_notice = collected.events[collected.events.index(notices[0]) :]
        assert [e for e in after_notice if e.symbol == symbol and e.HasField("trade")], (
            "trades went on after the book was stale"
        )
        answer = await status(venue)
        book = stream(answer, symbol, md.CHANNEL_BOOK)
        assert book.state == admin.STREAM_STATE_STALE and "no event for" in book.detail
        assert 0 < book.usual_silence_ms < 4000
        assert stream(answer, symbol, md.CHANNEL_TRADES).state == admin.STREAM_STATE_CONNECTED
        assert answer.state == admin.VENUE_STATE_DEGRADED
        # A subscriber arriving now hears at once that the book is stale: its first event.
        late = await collect(venue.stubs(), [symbol], [md.CHANNEL_BOOK], quiet_s=0.0, until=_heard)
        assert late.events[0].notice.kind == md.NOTICE_KIND_GAP
        assert late.events[0].notice.reason.startswith("stream stale")


def _heard(collected: Collected) -> bool:
    """For `collect(until=...)`: the subscriber has had its first event."""
    return bool(collected.events)


# ---- 21. trades sent again


async def test_the_latest_trade_pushed_again_on_resubscribing_goes_out_once(tmp_path: Path) -> None:
    at, symbol = 80, "BTC/USDT"
    original = capture_files("OKX")
    files = capture_variants.with_repeated_trade(original, tmp_path / "session", at)
    async with replayed(tmp_path, "okx", files, faults=[f"disconnect@{at}"], config=FAST_RETRY) as venue:
        collected = await collect(
            venue.stubs(), [symbol], [md.CHANNEL_TRADES], quiet_s=4.0, played=venue.log_path
        )
        assert collected.notices(md.NOTICE_KIND_GAP), "the disconnect happened"
        ids = [row[0] for row in collected.trades(symbol)]
        assert len(ids) == len(set(ids)), "a trade went out twice"
        recorded = [
            data["tradeId"]
            for _, frame in capture_variants.market_lines(original)
            if frame["arg"]["channel"] == "trades"
            for data in frame["data"]
        ]
        assert set(ids) <= set(recorded)
        assert stream(await status(venue), symbol, md.CHANNEL_TRADES).duplicate_trades >= 1


# ---- 22. the first book a subscriber gets


def first_book_events(collected: Collected) -> dict[str, md.MarketEvent]:
    first: dict[str, md.MarketEvent] = {}
    for event in collected.events:
        if event.WhichOneof("payload") in ("book_snapshot", "book_delta"):
            first.setdefault(event.symbol, event)
    return first


async def test_an_early_subscriber_gets_the_venues_first_book_not_an_empty_one(
    replay_sessions: ReplaySessions,
) -> None:
    """The shared replay's subscriber is in before playback starts (tests/integration/replay.py)."""
    files = capture_files("OKX")
    collected = await replay_sessions.get("okx").collected()
    first = first_book_events(collected)["BTC/USDT"]
    assert first.HasField("book_snapshot") and first.book_snapshot.sequence >= 1
    snapshot = next(f for _, f in capture_variants.market_lines(files) if f.get("action") == "snapshot")
    assert len(first.book_snapshot.bids) == len(snapshot["data"][0]["bids"])
    assert len(collected.of("BTC/USDT", "book_snapshot")) == 1


async def test_an_empty_venue_book_comes_as_one_real_empty_snapshot(replay_sessions: ReplaySessions) -> None:
    """Deribit's ETH-27AUG21-4000-P has no order at all: its snapshot is empty, but it is the venue's."""
    shared = replay_sessions.get("deribit")
    symbols = list((await instruments(shared.venue.stubs())).values())
    collected = await shared.collected()
    first = first_book_events(collected)
    assert set(first) == set(symbols)
    for symbol, event in first.items():
        assert event.HasField("book_snapshot") and event.book_snapshot.sequence >= 1, symbol
        assert len(collected.of(symbol, "book_snapshot")) == 1, symbol
    empty = first["ETH/USD:ETH-210827-4000-P"].book_snapshot
    assert not empty.bids and not empty.asks


# ---- 23. books started from a depth-limited REST snapshot


def binance_reconstruction(files: Sequence[Path], native: str, depth: int = 1000) -> tuple[Book, D, D]:
    """The book from the REST snapshot and every later diff; the snapshot's bid floor and ask ceiling."""
    answers = [
        json.loads(rest.split(": ", 1)[1])
        for path in files
        for url, arrow, rest in (line.partition(" -> ") for line in path.read_text().splitlines())
        if arrow and "/depth?" in url and f"symbol={native}&" in url
    ]
    body = answers[-1]
    bids = {D(p): D(q) for p, q in body["bids"]}
    asks = {D(p): D(q) for p, q in body["asks"]}
    floor = min(bids) if len(body["bids"]) >= depth else D(0)
    ceiling = max(asks) if len(body["asks"]) >= depth else D("Infinity")
    nonce = body["lastUpdateId"]
    for path in files:
        for line in path.read_text().splitlines():
            head, _, text = line.partition(": ")
            if not head.replace(".", "").isdigit() or not text.startswith('{"stream"'):
                continue
            data = json.loads(text)["data"]
            if data.get("e") != "depthUpdate" or data["s"] != native or data["u"] <= nonce:
                continue
            nonce = data["u"]
            for side, levels in ((bids, data["b"]), (asks, data["a"])):
                for price, size in levels:
                    if D(size) == 0:
                        side.pop(D(price), None)
                    else:
                        side[D(price)] = D(size)
    return (bids, asks), floor, ceiling


async def test_a_depth_limited_book_is_published_inside_its_known_range_without_holes(
    replay_sessions: ReplaySessions,
) -> None:
    """SUSHIUSDT's snapshot holds 1,000 levels a side; diffs then reach beyond them."""
    files = capture_files("BINANCE_FUTURES")
    symbol, native = "SUSHI/USDT:USDT", "SUSHIUSDT"
    (venue_bids, venue_asks), floor, ceiling = binance_reconstruction(files, native)
    beyond = [p for p in venue_bids if p < floor] + [p for p in venue_asks if p > ceiling]
    assert beyond, "the session's diffs reach beyond the snapshot (what this test is about)"
    collected = await replay_sessions.get("binanceusdm").collected()
    bids, asks = collected.book(symbol)
    assert min(bids) >= floor and max(asks) <= ceiling, "a level outside the snapshot's range"
    # Inside the range it publishes, the book is the venue's exactly: no hole, no extra level.
    assert bids == {p: q for p, q in venue_bids.items() if p >= min(bids)}
    assert asks == {p: q for p, q in venue_asks.items() if p <= max(asks)}
    assert len(bids) >= 900 and len(asks) >= 900


# ---- 24. Deribit's 0.0 best bid or ask


def deribit_tickers(files: Sequence[Path]) -> dict[str, list[tuple[str, str, str, str]]]:
    """(best bid, its amount, best ask, its amount) as decimals; a price of 0 is no level ("", "")."""
    found: dict[str, list[tuple[str, str, str, str]]] = {}
    for _, data in deribit_notifications(files, "ticker"):
        bid, ask = D(str(data["best_bid_price"])), D(str(data["best_ask_price"]))
        bid_size, ask_size = D(str(data["best_bid_amount"])), D(str(data["best_ask_amount"]))
        found.setdefault(data["instrument_name"], []).append(
            (
                plain(bid) if bid else "",
                plain(bid_size) if bid else "",
                plain(ask) if ask else "",
                plain(ask_size) if ask else "",
            )
        )
    return found


def deribit_notifications(files: Sequence[Path], kind: str) -> list[tuple[str, Any]]:
    found = []
    for path in files:
        for line in path.read_text().splitlines():
            head, _, text = line.partition(": ")
            if head.replace(".", "").isdigit() and '"method":"subscription"' in text:
                params = json.loads(text)["params"]
                if params["channel"].startswith(f"{kind}."):
                    found.append((params["channel"], params["data"]))
    return found


def plain(value: str | D) -> str:
    """A decimal in one spelling ("873.0" and "873" alike); "" stays "" (no value)."""
    return "" if value == "" else format(D(value).normalize(), "f")


async def test_a_zero_best_price_is_no_level(replay_sessions: ReplaySessions) -> None:
    files = capture_files("DERIBIT")
    expected = deribit_tickers(files)
    assert any(row[0] == "" for rows in expected.values() for row in rows), "the session has a 0.0 bid"
    shared = replay_sessions.get("deribit")
    natives = await instruments(shared.venue.stubs())
    collected = await shared.collected()
    for native, symbol in natives.items():
        got = [
            (plain(t.best_bid), plain(t.best_bid_size), plain(t.best_ask), plain(t.best_ask_size))
            for t in (e.ticker for e in collected.of(symbol, "ticker"))
        ]
        assert got == expected[native], symbol
