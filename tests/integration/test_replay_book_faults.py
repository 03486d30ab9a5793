"""Lost, repeated and reordered book frames never stall a venue (issue 13).

Every venue with a book sequence or checksum replays its session twice at once, through
`trademesh venue <name> --replay`: as recorded, and with book frames dropped (`gap`), sent twice
(`repeat`) and held back behind their topic's next frame (`reorder`), one fault in each stretch
of the session, at positions a seeded sweep picks. Two sessions recorded by cryptofeed from OKX
(fixtures/exchange-captures/other-recorders) are replayed too: books-l2-tbt on one connection,
where a single lost frame used to hang the venue, and the same streams recorded on three
connections at once, where every frame comes three times, interleaved (it hung with no fault;
compared with one connection's recording). While the faulted replay plays, Admin/GetStatus is
asked again and again and must answer within STATUS_BOUND_S each time (a venue whose watch
loop spun on a failed ccxt future answered nothing for 20 s and more); each of its books must
end as the recorded replay's does, or be marked (its last book event a notice: the subscriber
was told the book is in doubt); SIGTERM must then end the process on its own.

What "as the recorded replay's" covers is what the venue's integrity data can vouch for:
- every level, for a sequenced book (OKX seqId, Bybit u, Coinbase sequence_num, Deribit
  change_id, Binance U/u);
- Binance's books start from a REST snapshot cut at 1,000 levels, and a resync starts them from
  another: both books are published inside their own known range (docs/connector.md, "Book
  integrity"), compared inside the range they share;
- a book with a checksum of its best N levels and no sequence (Kraken: 10; OKX's channels
  before seqId: 25): a lost update of a deeper level is not detectable by the venue (nor by
  any client of the exchange), so the best N are compared.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import pytest

from tests.integration.other_sessions import session_files
from tests.integration.replay import SESSIONS, Collected, collect, instruments, start_replay_venue
from tests.integration.support import Stubs, Venue, stop_venue
from trademesh.admin.v1 import admin_pb2 as admin
from trademesh.marketdata.v1 import marketdata_pb2 as md

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # not in the fast tier (./dev test --fast)

D = Decimal
Side = dict[D, D]
Book = tuple[Side, Side]

KINDS = ("gap", "repeat", "reorder")
FAULTS = 6  # faults a run by default: two of each kind, at positions spread over the session
STATUS_BOUND_S = 5.0  # the longest a GetStatus may take (a loaded 2-core machine answers in < 0.2 s)
STATUS_EVERY_S = 0.1
STOP_BOUND_S = 10.0  # SIGTERM to exit (the process's own grace is 5 s)
COLLECT_S = 60.0  # the longest a replay and the books' recovery may take
# The faulted venue's streams watch again after 50 ms, not the default 0.5 s (a wait all the
# same: no failing watch can hold the event loop): each fault's resubscription, which playback
# waits for, costs that much less.
FAULTED_CONFIG = "backoff_initial_s = 0.05\n"
_FRAME = re.compile(r"^\d+(?:\.\d+)?: ")


@dataclass(frozen=True)
class Compared:
    """How much of a book the venue's own integrity data vouches for (see the module docstring)."""

    best: int | None = None  # levels a side: a checksum over the best N; None: every level
    ranged: bool = False  # a depth-limited REST snapshot: inside the range both books share


@dataclass(frozen=True)
class Case:
    """A session replayed with `faults` faults and as recorded (`recorded`: another recording of
    the same streams to compare with; None: the same files)."""

    venue: str
    files: tuple[Path, ...]
    compared: Compared = Compared()
    recorded: tuple[Path, ...] | None = None
    faults: int = FAULTS


def own(name: str, compared: Compared = Compared()) -> Case:
    return Case(name, tuple(SESSIONS[name].files()), compared)


OKX_CHECKSUM = Compared(best=25)  # a book channel without seqId (2021-2022): OKX's checksum only
CASES = {
    "okx": own("okx"),
    "okx-swap": own("okx-swap"),
    "kraken": own("kraken", Compared(best=10)),
    "binance": own("binance", Compared(ranged=True)),
    "binanceusdm": own("binanceusdm", Compared(ranged=True)),
    "bybit": own("bybit"),
    "coinbase": own("coinbase"),
    "deribit": own("deribit"),
    # Recorded by cryptofeed from OKX: books-l2-tbt, one connection (where a lost frame hung it).
    "okx-books-l2-tbt": Case("okx", tuple(session_files("OKX_TBT")), OKX_CHECKSUM, faults=12),
    # The same streams recorded on three connections at once, merged by time: every frame three
    # times, the copies interleaved (it hung with no fault at all); compared with one of them.
    "okx-three-connections": Case(
        "okx",
        tuple(session_files("OKEX_V5")),
        OKX_CHECKSUM,
        recorded=tuple(session_files("OKEX_V5")[:2]),
        faults=0,
    ),
}


def sweep(name: str, case: Case) -> list[str]:
    """The faults of one run, seeded by the case's name: one in each of `case.faults` equal
    stretches of the session's received frames, the kinds in turn."""
    if not case.faults:
        return []
    frames = sum(1 for path in case.files for line in path.read_text().splitlines() if _FRAME.match(line))
    rng = random.Random(f"book-faults/{name}")
    stretch = frames // case.faults
    return [f"{KINDS[i % len(KINDS)]}@{i * stretch + rng.randrange(stretch)}" for i in range(case.faults)]


def compared(book: Book, other: Book, how: Compared) -> tuple[Book, Book]:
    """Both books cut to what `how` compares."""
    (bids, asks), (other_bids, other_asks) = book, other
    if how.ranged and bids and other_bids and asks and other_asks:
        floor, ceiling = max(min(bids), min(other_bids)), min(max(asks), max(other_asks))
        bids, other_bids = _above(bids, floor), _above(other_bids, floor)
        asks, other_asks = _below(asks, ceiling), _below(other_asks, ceiling)
    if how.best is not None:
        bids, other_bids = _best(bids, how.best, True), _best(other_bids, how.best, True)
        asks, other_asks = _best(asks, how.best, False), _best(other_asks, how.best, False)
    return (bids, asks), (other_bids, other_asks)


def _above(side: Side, floor: D) -> Side:
    return {p: q for p, q in side.items() if p >= floor}


def _below(side: Side, ceiling: D) -> Side:
    return {p: q for p, q in side.items() if p <= ceiling}


def _best(side: Side, n: int, descending: bool) -> Side:
    return {p: side[p] for p in sorted(side, reverse=descending)[:n]}


def marked(collected: Collected, symbol: str) -> bool:
    """The symbol's last book event is a notice: its subscriber was told the book is in doubt."""
    kinds = ("book_snapshot", "book_delta", "notice")
    events = [e for e in collected.events if e.symbol == symbol and e.WhichOneof("payload") in kinds]
    return bool(events) and events[-1].HasField("notice")


@dataclass
class StatusProbe:
    """Admin/GetStatus asked every STATUS_EVERY_S until stopped; the slowest answer and any failure."""

    stubs: Stubs
    slowest_s: float = 0.0
    asked: int = 0
    failures: list[str] = field(default_factory=list)
    _task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            started = time.monotonic()
            try:
                await self.stubs.admin.GetStatus(admin.GetStatusRequest(), timeout=STATUS_BOUND_S)
            except Exception as exc:  # a deadline: the venue did not answer within the bound
                self.failures.append(f"{type(exc).__name__}: {str(exc)[:120]}")
            self.slowest_s = max(self.slowest_s, time.monotonic() - started)
            self.asked += 1
            await asyncio.sleep(STATUS_EVERY_S)


async def books_of(
    venue: Venue, until: Callable[[Collected], bool] | None = None, probe: StatusProbe | None = None
) -> tuple[list[str], Collected]:
    """Subscribe to every book of the venue (which starts its replay) and read until it is played."""
    stubs = venue.stubs()
    symbols = sorted((await instruments(stubs)).values())
    if probe is not None:
        probe.start()
    collected = await collect(
        stubs,
        symbols,
        [md.CHANNEL_BOOK],
        quiet_s=3.0,
        timeout_s=COLLECT_S,
        played=venue.log_path,
        until=until,
    )
    return symbols, collected


async def terminated(venue: Venue) -> tuple[int, float]:
    """SIGTERM: the exit code (-9: it had to be killed) and how long it took."""
    await venue.close_channels()
    started = time.monotonic()
    code = await asyncio.to_thread(venue.service.terminate)
    return code, time.monotonic() - started


@pytest.mark.parametrize("name", list(CASES))
async def test_lost_repeated_and_reordered_book_frames_never_stall_the_venue(
    tmp_path: Path, name: str
) -> None:
    case = CASES[name]
    faults = sweep(name, case)
    (tmp_path / "recorded").mkdir()
    (tmp_path / "faulted").mkdir()
    recorded, recorded_log = start_replay_venue(
        tmp_path / "recorded", case.venue, case.recorded or case.files
    )
    faulted, faulted_log = start_replay_venue(
        tmp_path / "faulted", case.venue, case.files, faults=faults, config=FAULTED_CONFIG
    )
    expected: dict[str, Book] = {}
    how = case.compared

    def settled(collected: Collected) -> bool:
        """Every book as recorded (what `how` compares), or marked; known once the recorded replay is read."""
        return bool(expected) and all(
            marked(collected, symbol) or _equal(collected.book(symbol), book, how)
            for symbol, book in expected.items()
        )

    probe = StatusProbe(faulted.stubs())

    async def recorded_books() -> None:
        symbols, plain = await books_of(recorded)
        expected.update({symbol: plain.book(symbol) for symbol in symbols})

    try:
        _, (_, got) = await asyncio.gather(recorded_books(), books_of(faulted, until=settled, probe=probe))
        await probe.stop()
        code, took = await terminated(faulted)
    finally:
        await probe.stop()
        await stop_venue(faulted, faulted_log)
        await stop_venue(recorded, recorded_log)
    assert faulted.log().count("replay fault:") >= len(faults), f"the faults {faults} were played"
    assert probe.asked > 0 and not probe.failures, f"GetStatus failed under {faults}: {probe.failures[:3]}"
    assert probe.slowest_s < STATUS_BOUND_S
    assert any(bids and asks for bids, asks in expected.values()), "the recorded replay has books"
    for symbol, book in expected.items():
        assert marked(got, symbol) or _equal(got.book(symbol), book, how), (
            f"{symbol} under {faults}: neither as recorded nor marked"
        )
    assert code == 0 and took < STOP_BOUND_S, f"SIGTERM: exit code {code} after {took:.1f} s"


def _equal(book: Book, other: Book, how: Compared) -> bool:
    mine, theirs = compared(book, other, how)
    return mine == theirs
