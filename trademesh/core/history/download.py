"""`trademesh data download`'s work: the ranges to fetch, the pages fetched from a venue over the
MarketData contract, and their rows written into the recorder's tables, a page a transaction.

The download speaks the venue contract, not the exchanges (docs/history.md, "Download"): every
venue (live, sim, paper, node-ref, an external one) serves its history through GetCandles
(paged here by time, up to 1000 candles a call; a live venue pages its exchange behind it with
the exchange's rate limits) and GetTrades (paged by the venue's token). The source is anything
with `candles` and `trades` (trademesh.core.history.download_venue's gRPC client).

Rows are the ones the bar service and the recorder write: bars as the bar service stores a bar
rebuilt from the venue's candle (trademesh.core.bars.repair.candle_bar: `repaired` true, the VWAP from the
candle's quote volume by the bars' rule, none for a candle with no volume: no trades, no bar;
`ts_publish_ns` the download's time), trades as recorded;
idempotent on the tables' natural keys (ON CONFLICT DO NOTHING: a bar the bar service recorded
live is kept as it is). A page commits alone: an interrupted run loses at most a page, and the
next run fetches what the range does not hold: bars where none is held (before the first held,
the holes between, after the last: trademesh.core.history.coverage.missing_ranges), trades from the last
one held.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

from trademesh.common.v1 import common_pb2 as common
from trademesh.core.domain.bar import vwap_text
from trademesh.core.domain.model import Timeframe
from trademesh.core.history.coverage import Hole, missing_ranges
from trademesh.core.platform.errors import Corrupt, InvalidArgument, TrademeshError, shown
from trademesh.core.recorder.partitions import Partitions
from trademesh.core.recorder.schema import BARS, TRADES, Table
from trademesh.marketdata.v1 import marketdata_pb2 as md

__all__ = [
    "PAGE_CANDLES",
    "PAGE_TRADES",
    "Fetched",
    "HistorySource",
    "HistoryStore",
    "Job",
    "bar_records",
    "bars_between",
    "candle_range",
    "download_candles",
    "download_trades",
    "fetch_spans",
    "parse_time",
    "parse_timeframes",
]

# Candles asked a GetCandles call (the contract's default page; a venue serves up to 5000).
PAGE_CANDLES = 1000
PAGE_TRADES = 1000
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_SIDES = {common.SIDE_BUY: "buy", common.SIDE_SELL: "sell"}


# ---- the plan


def parse_time(text: str, what: str) -> int:
    """A date (2024-01-01: its midnight UTC) or an ISO 8601 time (UTC unless it says its offset)
    as ns since the epoch; InvalidArgument naming `what` and the value."""
    try:
        if _DATE.fullmatch(text):
            moment = dt.datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=dt.UTC)
        else:
            moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=dt.UTC)
    except ValueError:
        raise InvalidArgument.field(
            what, f"{shown(text)} is not a date (2024-01-01) or an ISO time (2024-01-01T12:00:00Z)"
        ) from None
    delta = moment - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    ns = (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000
    if ns < 0:
        raise InvalidArgument.field(what, f"{shown(text)} is before 1970")
    return ns


def parse_timeframes(text: str) -> tuple[Timeframe, ...]:
    """`1m,1h` as timeframes, each once, finest first; InvalidArgument (`timeframes`) naming a bad one."""
    found: list[Timeframe] = []
    for label in (part.strip() for part in text.split(",")):
        try:
            timeframe = Timeframe.from_label(label)
        except InvalidArgument as exc:
            raise InvalidArgument.field("timeframes", exc.violations[0].description) from None
        if timeframe not in found:
            found.append(timeframe)
    return tuple(sorted(found, key=lambda tf: tf.ns))


def candle_range(since_ns: int, until_ns: int, timeframe: Timeframe, now_ns: int) -> tuple[int, int]:
    """The open times [start, end) of the bars of [since, until) to fetch: from the first bar
    opening at or after `since`, up to the bar still open now (left out: it may change)."""
    start = timeframe.open_time_ns(since_ns)
    if start < since_ns:
        start += timeframe.ns
    return start, max(start, min(until_ns, timeframe.open_time_ns(now_ns)))


def bars_between(start_ns: int, end_ns: int, timeframe: Timeframe) -> int:
    """Bars opening in [start, end), `start` on the grid."""
    return max(0, -(-(end_ns - start_ns) // timeframe.ns))


# ---- what a download reads and writes


class HistorySource(Protocol):
    """A venue's history over the MarketData contract (rate limits waited out inside: what
    comes out is the venue's answer or its refusal, a TrademeshError)."""

    async def candles(
        self, symbol: str, timeframe: Timeframe, start_ns: int, end_ns: int, limit: int
    ) -> Sequence[md.Candle]: ...

    async def trades(
        self, symbol: str, start_ns: int, end_ns: int, limit: int, token: str
    ) -> tuple[Sequence[md.HistoricalTrade], str]: ...


class HistoryStore:
    """The recorder's bars and trades tables over one connection (migrations applied: `prepare`)."""

    def __init__(self, conn: Any, publish_ns: int) -> None:
        self._conn = conn
        self._publish_ns = publish_ns
        self._partitions = Partitions()

    async def prepare(self) -> None:
        from trademesh.core.recorder.migrate import migrate

        await migrate(self._conn)
        await self._partitions.load(self._conn)

    async def missing(self, job: Job, timeframe: Timeframe) -> list[Hole]:
        """The ranges of the job's [start, end) holding no bar (trademesh.core.history.coverage)."""
        return await missing_ranges(
            self._conn.fetch, job.venue, job.symbol, timeframe, job.start_ns, job.end_ns
        )

    async def last_trade(self, venue: str, symbol: str, start_ns: int, end_ns: int) -> int | None:
        found: int | None = await self._conn.fetchval(
            "SELECT max(ts_event_ns) FROM trades WHERE venue = $1 AND symbol = $2 "
            "AND ts_event_ns >= $3 AND ts_event_ns < $4",
            venue, symbol, start_ns, end_ns,
        )  # fmt: skip
        return found

    async def write_bars(
        self, venue: str, symbol: str, timeframe: Timeframe, candles: Sequence[md.Candle]
    ) -> int:
        """The candles as bars (bar_records), in one transaction; the bars new in the table."""
        records = bar_records(venue, symbol, timeframe, candles, self._publish_ns)
        return await self._write(BARS, records, [record[3] for record in records])

    async def write_trades(self, venue: str, symbol: str, trades: Sequence[md.HistoricalTrade]) -> int:
        """The trades as recorded (ts_recv_ns: their time, as the importer's), in one transaction."""
        records = [
            (
                venue, symbol, t.ts_event_ns, t.ts_event_ns, t.trade.trade_id,
                _decimal(t.trade.price, "price", t.ts_event_ns),
                _decimal(t.trade.size, "size", t.ts_event_ns),
                _SIDES.get(t.trade.taker_side),
            )
            for t in trades
        ]  # fmt: skip
        return await self._write(TRADES, records, [t.ts_event_ns for t in trades])

    async def _write(self, table: Table, records: list[tuple[Any, ...]], times: list[int]) -> int:
        if not records:
            return 0
        columns = [name for name, _ in table.columns]
        stage = f"download_stage_{table.name}"
        try:
            async with self._conn.transaction():
                await self._partitions.cover_times(self._conn, table, times)
                await self._conn.execute(
                    f"CREATE TEMP TABLE IF NOT EXISTS {stage} (LIKE {table.name} INCLUDING DEFAULTS) "
                    "ON COMMIT DELETE ROWS"
                )
                await self._conn.copy_records_to_table(stage, records=records, columns=columns)
                names = ", ".join(columns)
                status = await self._conn.execute(
                    f"INSERT INTO {table.name} ({names}) SELECT {names} FROM {stage} ON CONFLICT DO NOTHING"
                )
        except BaseException:
            self._partitions.settle(committed=False)
            raise
        self._partitions.settle(committed=True)
        return int(status.rsplit(" ", 1)[-1])


def bar_records(
    venue: str, symbol: str, timeframe: Timeframe, candles: Sequence[md.Candle], publish_ns: int
) -> list[tuple[Any, ...]]:
    """The candles as rows of `bars` (its columns' order), as the bar service stores a bar rebuilt
    from a venue's candle (trademesh.core.bars.repair.candle_bar), so a bar downloaded is the bar recorded
    live: the VWAP is the quote volume over the volume by the bars' rule (trademesh.core.domain.bar.
    vwap_text; none without a quote volume), and a candle with no volume (an interval without
    trades, which some venues write, flat at the last close) is no bar, as live."""
    records: list[tuple[Any, ...]] = []
    for c in candles:
        at = c.open_time_ns
        volume = _decimal(c.volume, "volume", at)
        if volume == 0:
            continue
        quote = None if c.quote_volume == "" else _decimal(c.quote_volume, "quote volume", at)
        vwap = None if quote is None else Decimal(vwap_text(quote, volume))
        records.append((
            venue, symbol, timeframe.label, at,
            _decimal(c.open, "open", at), _decimal(c.high, "high", at), _decimal(c.low, "low", at),
            _decimal(c.close, "close", at), volume, quote, c.trade_count, vwap, True, publish_ns,
        ))  # fmt: skip
    return records


def _decimal(text: str, what: str, ts_ns: int) -> Decimal:
    """A venue's decimal string exactly (never a float); Corrupt naming it when it is none."""
    try:
        value = Decimal(text)
    except InvalidOperation:
        value = Decimal("NaN")
    if not value.is_finite():
        raise Corrupt(f"the venue's {what} {shown(text)} at {ts_ns} ns is not a decimal")
    return value


# ---- the download of one series


@dataclass(frozen=True)
class Job:
    """One series to fetch: a symbol's bars of a timeframe (or its trades: timeframe None) over
    [start, end) of the time the rows are keyed by."""

    venue: str
    symbol: str
    timeframe: Timeframe | None
    start_ns: int
    end_ns: int

    @property
    def name(self) -> str:
        return f"{self.venue} {self.symbol} {'trades' if self.timeframe is None else self.timeframe.label}"


@dataclass
class Fetched:
    """What one series' download did so far (its progress reads it as it goes)."""

    job: Job
    resumed_ns: int  # where this run began: `start_ns`, or the first bar (after the last trade) not held
    expected: int | None  # bars the ranges fetched can hold (None for trades)
    rows: int = 0  # received from the venue
    added: int = 0  # new in the table
    pages: int = 0  # the venue's pages taken
    cursor_ns: int = 0  # the time fetched up to
    failure: str | None = None  # why the venue could not serve the rest of the range
    holes: int = 0  # ranges fetched before the last bar held (bars)
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None

    @property
    def seconds(self) -> float:
        return (self.finished or time.monotonic()) - self.started


Report = Callable[[Fetched], None]


async def download_candles(
    source: HistorySource, store: HistoryStore, job: Job, report: Report, refetch: bool = False
) -> Fetched:
    """The job's bars, page by page over the ranges it does not hold (`refetch`: the whole range):
    before its first bar held, the holes between held bars, and after its last; a refusal of the
    venue (a TrademeshError) is kept in `failure`: the next series goes on."""
    assert job.timeframe is not None
    timeframe = job.timeframe
    whole = [Hole(job.start_ns, job.end_ns)] if job.start_ns < job.end_ns else []
    missing = whole if refetch else await store.missing(job, timeframe)
    spans = fetch_spans(missing, timeframe.ns * PAGE_CANDLES)
    first = spans[0].start_ns if spans else job.end_ns
    expected = sum(hole.bars(timeframe.ns) for hole in missing)
    holes = sum(1 for hole in missing if hole.end_ns < job.end_ns)
    done = Fetched(job, first, expected, cursor_ns=first, holes=holes)
    at, cursor = 0, first

    async def page() -> bool:
        nonlocal at, cursor
        if at >= len(spans):
            return False
        end = spans[at].end_ns
        answer = await source.candles(job.symbol, timeframe, cursor, end, PAGE_CANDLES)
        # A candle still open (the venue's clock past ours) waits for the next run.
        candles = [c for c in answer if cursor <= c.open_time_ns < end and c.closed]
        _check_grid(candles, timeframe)
        if candles:
            done.pages += 1
            done.added += await store.write_bars(job.venue, job.symbol, timeframe, candles)
            done.rows += len(candles)
            cursor = candles[-1].open_time_ns + timeframe.ns
        if not candles or cursor >= end:  # this span is done (the venue has no more of it)
            at += 1
            cursor = spans[at].start_ns if at < len(spans) else end
        done.cursor_ns = cursor
        return at < len(spans)

    return await _pages(page, done, report)


def fetch_spans(missing: Sequence[Hole], most_ns: int) -> list[Hole]:
    """The missing ranges grouped into the spans a download asks for: neighbouring ranges join
    while the span they make is at most `most_ns` long (a page of candles), so a series of many
    short holes (an illiquid market's minutes without trades, each asked again every run: the
    venue has no bar for them) costs a call a page, as a --refetch would, not a call a hole."""
    spans: list[Hole] = []
    for hole in missing:
        if spans and hole.end_ns - spans[-1].start_ns <= most_ns:
            spans[-1] = Hole(spans[-1].start_ns, hole.end_ns)
        else:
            spans.append(hole)
    return spans


async def download_trades(
    source: HistorySource, store: HistoryStore, job: Job, report: Report, refetch: bool = False
) -> Fetched:
    """The job's trades, page by page with the venue's token, from the last trade's time held
    (its trades of that time asked again: held ones are kept once)."""
    held = None if refetch else await store.last_trade(job.venue, job.symbol, job.start_ns, job.end_ns)
    start = job.start_ns if held is None else held
    done = Fetched(job, start, None, cursor_ns=start)
    token = ""

    async def page() -> bool:
        nonlocal token
        asked = token
        trades, token = await source.trades(job.symbol, start, job.end_ns, PAGE_TRADES, token)
        done.pages += 1
        if token and token == asked:  # a venue answering the same page again would be asked forever
            raise Corrupt(f"the venue's trades page token did not move after {done.rows:,} trades")
        kept = [t for t in trades if start <= t.ts_event_ns < job.end_ns]
        done.added += await store.write_trades(job.venue, job.symbol, kept)
        done.rows += len(kept)
        if kept:
            done.cursor_ns = kept[-1].ts_event_ns
        return token != ""

    return await _pages(page, done, report)


async def _pages(page: Callable[[], Awaitable[bool]], done: Fetched, report: Report) -> Fetched:
    report(done)
    try:
        while await page():
            report(done)
    except TrademeshError as exc:
        done.failure = str(exc)
    done.finished = time.monotonic()
    report(done)
    return done


def _check_grid(candles: Sequence[md.Candle], timeframe: Timeframe) -> None:
    previous = None
    for candle in candles:
        if timeframe.open_time_ns(candle.open_time_ns) != candle.open_time_ns:
            raise Corrupt(f"the venue's {timeframe.label} candle at {candle.open_time_ns} ns is off its grid")
        if previous is not None and candle.open_time_ns <= previous:
            raise Corrupt(f"the venue's candles are not in time order at {candle.open_time_ns} ns")
        previous = candle.open_time_ns
