"""What the recorder's `bars` table holds per venue, symbol and timeframe: the first and last
bar, the number of bars, and the holes (bars missing between two held ones), in one query; and
what its `trades` table holds per venue and symbol (first, last, count: TRADES_SQL).

The series are found by a loose index scan of the primary key (venue, symbol, timeframe,
open_time_ns): a recursive query that seeks from one series to the next, one index probe each,
never reading the bars between. Each series wanted (the filters apply to the series) is then read
alone, in its key's order: lead() gives each bar's next one, and a next more than a step away
makes a hole. So asking for the 1m series reads the 1m bars only, not the 1s ones beside them.
A hole is [start, end): the first missing bar's open time, and the open time of the next bar
held. A series with many holes returns the first MAX_HOLES of them and their total count and
missing bars.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from trademesh.core.domain.model import Timeframe

__all__ = [
    "COVERAGE_SQL",
    "MAX_HOLES",
    "MISSING_ENDS_SQL",
    "MISSING_SQL",
    "TRADES_SQL",
    "Fetch",
    "Hole",
    "Series",
    "TradeSeries",
    "coverage_args",
    "iso_ns",
    "missing_ranges",
    "read_coverage",
    "read_trades_coverage",
    "series_of",
]

MAX_HOLES = 1000

Fetch = Callable[..., Awaitable[Sequence[Any]]]

COVERAGE_SQL = """
WITH RECURSIVE series (venue, symbol, timeframe) AS (
    (SELECT venue, symbol, timeframe FROM bars
     WHERE ($3::text IS NULL OR venue = $3) ORDER BY venue, symbol, timeframe LIMIT 1)
    UNION ALL
    SELECT following.* FROM series, LATERAL (
        SELECT venue, symbol, timeframe FROM bars
        WHERE (venue, symbol, timeframe) > (series.venue, series.symbol, series.timeframe)
          AND ($3::text IS NULL OR venue = $3)
        ORDER BY venue, symbol, timeframe LIMIT 1
    ) following
),
steps (timeframe, step) AS (SELECT * FROM unnest($1::text[], $2::bigint[]))
SELECT series.venue, series.symbol, series.timeframe, step, held.*
FROM series JOIN steps USING (timeframe)
CROSS JOIN LATERAL (
    SELECT count(*) AS bars, min(open_time_ns) AS first_ns, max(open_time_ns) AS last_ns,
           count(*) FILTER (WHERE gap) AS holes,
           coalesce(sum((next_ns - open_time_ns) / step - 1) FILTER (WHERE gap), 0) AS missing,
           (array_agg(open_time_ns + step ORDER BY open_time_ns) FILTER (WHERE gap))[1:$6] AS hole_starts,
           (array_agg(next_ns ORDER BY open_time_ns) FILTER (WHERE gap))[1:$6] AS hole_ends
    FROM (
        SELECT open_time_ns, next_ns, next_ns - open_time_ns > step AS gap
        FROM (
            SELECT open_time_ns, lead(open_time_ns) OVER (ORDER BY open_time_ns) AS next_ns
            FROM bars
            WHERE venue = series.venue AND symbol = series.symbol AND timeframe = series.timeframe
        ) ordered
    ) marked
) held
WHERE ($4::text IS NULL OR series.symbol = $4) AND ($5::text IS NULL OR series.timeframe = $5)
ORDER BY series.venue, series.symbol, step
"""


@dataclass(frozen=True)
class Hole:
    start_ns: int  # the first missing bar's open time
    end_ns: int  # the next held bar's open time

    def bars(self, step_ns: int) -> int:
        return (self.end_ns - self.start_ns) // step_ns


@dataclass(frozen=True)
class Series:
    venue: str
    symbol: str
    timeframe: str
    step_ns: int
    bars: int
    first_ns: int  # the first bar's open time
    last_ns: int  # the last bar's open time
    hole_count: int
    missing_bars: int
    holes: tuple[Hole, ...]  # the first MAX_HOLES

    @property
    def end_ns(self) -> int:
        """The held range's end: the last bar's close."""
        return self.last_ns + self.step_ns


def coverage_args(
    venue: str | None, symbol: str | None, timeframe: str | None, max_holes: int = MAX_HOLES
) -> tuple[Any, ...]:
    """COVERAGE_SQL's parameters; InvalidArgument (`timeframe`) for an unknown timeframe."""
    if timeframe is not None:
        timeframe = Timeframe.from_label(timeframe).label
    labels = [tf.label for tf in Timeframe]
    steps = [tf.ns for tf in Timeframe]
    return labels, steps, venue, symbol, timeframe, max_holes


def series_of(rows: Sequence[Any]) -> list[Series]:
    return [
        Series(
            row["venue"],
            row["symbol"],
            row["timeframe"],
            row["step"],
            row["bars"],
            row["first_ns"],
            row["last_ns"],
            row["holes"],
            int(row["missing"]),
            tuple(Hole(s, e) for s, e in zip(row["hole_starts"] or (), row["hole_ends"] or (), strict=True)),
        )
        for row in rows
    ]


async def read_coverage(
    fetch: Fetch, venue: str | None = None, symbol: str | None = None, timeframe: str | None = None
) -> list[Series]:
    """The series held (those of `venue`, `symbol`, `timeframe` when given), venue, symbol and
    timeframe ordered; `fetch(sql, *args)` runs the query (a connection's, or a pool's with deadlines)."""
    return series_of(await fetch(COVERAGE_SQL, *coverage_args(venue, symbol, timeframe)))


# The trades held per venue and symbol ($1, $2: only these when not NULL): the first and last
# trade's time and the count. The series by the same loose index scan of the primary key (venue,
# symbol, ts_event_ns, trade_id); each series' count reads its part of the key's index.
TRADES_SQL = """
WITH RECURSIVE series (venue, symbol) AS (
    (SELECT venue, symbol FROM trades WHERE ($1::text IS NULL OR venue = $1) ORDER BY venue, symbol LIMIT 1)
    UNION ALL
    SELECT following.* FROM series, LATERAL (
        SELECT venue, symbol FROM trades
        WHERE (venue, symbol) > (series.venue, series.symbol) AND ($1::text IS NULL OR venue = $1)
        ORDER BY venue, symbol LIMIT 1
    ) following
)
SELECT series.venue, series.symbol, held.*
FROM series CROSS JOIN LATERAL (
    SELECT count(*) AS trades, min(ts_event_ns) AS first_ns, max(ts_event_ns) AS last_ns
    FROM trades WHERE venue = series.venue AND symbol = series.symbol
) held
WHERE ($2::text IS NULL OR series.symbol = $2)
ORDER BY series.venue, series.symbol
"""


@dataclass(frozen=True)
class TradeSeries:
    """The trades held of one venue and symbol: no grid, so no holes; their range and count."""

    venue: str
    symbol: str
    trades: int
    first_ns: int  # the first trade's event time
    last_ns: int  # the last trade's

    def as_json(self) -> dict[str, object]:
        """As the CLI's --json and the MCP tool show it."""
        return {
            "venue": self.venue,
            "symbol": self.symbol,
            "first": iso_ns(self.first_ns),
            "last": iso_ns(self.last_ns),
            "first_ns": self.first_ns,
            "last_ns": self.last_ns,
            "trades": self.trades,
        }


async def read_trades_coverage(
    fetch: Fetch, venue: str | None = None, symbol: str | None = None
) -> list[TradeSeries]:
    """The trades held per venue and symbol (those of `venue`, `symbol` when given), ordered."""
    rows = await fetch(TRADES_SQL, venue, symbol)
    return [
        TradeSeries(row["venue"], row["symbol"], row["trades"], row["first_ns"], row["last_ns"])
        for row in rows
    ]


# The holes between the bars held of the series ($1, $2, $3) opening in [$4, $5), $6 its step:
# each [a held bar's open + step, the next held bar's open) where they are more than a step
# apart, in one index range scan in the key's order (no sort). MISSING_ENDS_SQL: the first and
# the last bar held in the range (two index probes).
MISSING_SQL = """
SELECT open_time_ns + $6::bigint AS start_ns, next_ns AS end_ns FROM (
    SELECT open_time_ns, lead(open_time_ns) OVER (ORDER BY open_time_ns) AS next_ns
    FROM bars
    WHERE venue = $1 AND symbol = $2 AND timeframe = $3 AND open_time_ns >= $4 AND open_time_ns < $5
) held
WHERE next_ns - open_time_ns > $6::bigint
ORDER BY open_time_ns
"""
MISSING_ENDS_SQL = """
SELECT min(open_time_ns) AS first_ns, max(open_time_ns) AS last_ns FROM bars
WHERE venue = $1 AND symbol = $2 AND timeframe = $3 AND open_time_ns >= $4 AND open_time_ns < $5
"""


async def missing_ranges(
    fetch: Fetch, venue: str, symbol: str, timeframe: Timeframe, start_ns: int, end_ns: int
) -> list[Hole]:
    """The ranges of [start, end) (on the timeframe's grid) where the series holds no bar,
    oldest first: before the first bar held there, the holes between held bars, and after the
    last (the whole range when it holds none): where a download fetches without --refetch."""
    args = (venue, symbol, timeframe.label, start_ns, end_ns)
    (ends,) = await fetch(MISSING_ENDS_SQL, *args)
    first, last = ends["first_ns"], ends["last_ns"]
    if first is None:
        return [Hole(start_ns, end_ns)] if start_ns < end_ns else []
    holes = [Hole(row["start_ns"], row["end_ns"]) for row in await fetch(MISSING_SQL, *args, timeframe.ns)]
    before = [Hole(start_ns, first)] if start_ns < first else []
    after = [Hole(last + timeframe.ns, end_ns)] if last + timeframe.ns < end_ns else []
    return [*before, *holes, *after]


def iso_ns(ns: int) -> str:
    """A time as ISO text in UTC to the second ("2024-01-01T00:00:00Z"); finer when it has more."""
    whole = datetime.fromtimestamp(ns // 10**9, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    fraction = ns % 10**9
    return f"{whole}Z" if not fraction else f"{whole}.{fraction:09d}".rstrip("0") + "Z"
