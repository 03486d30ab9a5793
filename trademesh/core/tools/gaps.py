"""Gap markers of a symbol's trades from the recorder's `notices` table (docs/recorder.md), and
whether each is still open: what the advisor's quality gate and an agent read to know how far
the recent bars can be trusted.

A GAP notice on the trades channel says that trades of its symbol between `since_ns` (the last
one seen before; unknown: the notice's own time) and the notice's `ts_event_ns` may be missing,
so the bars over that span may be short of trades. Notices of other channels (the book, tickers)
say nothing about bars and are left out. A venue-wide notice (no symbol) counts for each symbol.

**The open rule.** A gap is *repaired* once the recorder holds a repaired bar, of the timeframe
asked, for the bar interval holding the notice's `ts_event_ns`; until then it is *open*. The bar
aggregator rebuilds a gap's bars from the venue's candles, from the bar of its start up to the
first trade after the notice, all in one repair, so that last bar is repaired with the rest; and
it was still open when the notice was written, so no earlier repair can have marked it. A venue
that serves no candles of the timeframe (most have no 1s history) never repairs the gap: it
stays open for as long as it is asked about (callers ask about a window of recent bars).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from trademesh.core.domain.model import Timeframe
from trademesh.core.tools.recorded import RecorderDatabase
from trademesh.core.tools.render import iso_time

__all__ = ["GapNotice", "GapStore", "gap_marker", "last_bar_open_ns"]

# Newest first; ts_event_ns is the table's partition key, so `since` prunes partitions.
_GAPS = """
SELECT symbol, ts_event_ns, since_ns, reason
FROM notices
WHERE venue = $1 AND (symbol = $2 OR symbol = '') AND kind = 'gap' AND channel = 'trades'
  AND ts_event_ns >= $3
ORDER BY ts_event_ns DESC LIMIT $4
"""
# Point lookups on the bars' primary key (venue, symbol, timeframe, open_time_ns).
_REPAIRED = """
SELECT open_time_ns FROM bars
WHERE venue = $1 AND symbol = $2 AND timeframe = $3 AND open_time_ns = ANY($4::bigint[]) AND repaired
"""


@dataclass(frozen=True, slots=True)
class GapNotice:
    """One recorded GAP notice of a symbol's trades."""

    ts_event_ns: int  # when it was written: trades up to here may be missing
    since_ns: int | None  # the last trade seen before it; None when unknown
    reason: str

    @property
    def start_ns(self) -> int:
        return self.ts_event_ns if self.since_ns is None else min(self.since_ns, self.ts_event_ns)


def last_bar_open_ns(notice: GapNotice, timeframe: Timeframe) -> int:
    """The open time of the bar holding the notice's time: the one whose repair closes the gap."""
    return timeframe.open_time_ns(notice.ts_event_ns)


def gap_marker(notice: GapNotice, timeframe: Timeframe, repaired_opens: frozenset[int]) -> dict[str, Any]:
    """The notice as the tool answers it: its span, the bars it touches and whether it is open."""
    first = timeframe.open_time_ns(notice.start_ns)
    last = last_bar_open_ns(notice, timeframe)
    return {
        "time": iso_time(notice.ts_event_ns),
        "ts_event_ns": notice.ts_event_ns,
        "since_ns": notice.since_ns,
        "start_ns": notice.start_ns,
        "end_ns": notice.ts_event_ns,
        "bars": (last - first) // timeframe.ns + 1,
        "reason": notice.reason,
        "open": last not in repaired_opens,
    }


def _notice(row: asyncpg.Record) -> GapNotice:
    return GapNotice(int(row["ts_event_ns"]), row["since_ns"], str(row["reason"]))


class GapStore:
    def __init__(self, database: RecorderDatabase) -> None:
        self._db = database

    async def markers(
        self, venue: str, symbol: str, timeframe: Timeframe, since_ns: int, limit: int
    ) -> list[dict[str, Any]]:
        """Up to `limit` gaps written at or after `since_ns`, newest first, each open or repaired."""
        rows = await self._db.fetch(_GAPS, venue, symbol, since_ns, limit, table="notices")
        notices = [_notice(row) for row in rows]
        lasts = [last_bar_open_ns(n, timeframe) for n in notices]
        repaired = await self._repaired(venue, symbol, timeframe.label, lasts)
        return [gap_marker(n, timeframe, repaired) for n in notices]

    async def _repaired(
        self, venue: str, symbol: str, timeframe: str, opens: Sequence[int]
    ) -> frozenset[int]:
        """Which of the bars opening at `opens` the recorder holds repaired."""
        if not opens:
            return frozenset()
        rows = await self._db.fetch(_REPAIRED, venue, symbol, timeframe, sorted(set(opens)), table="bars")
        return frozenset(int(row["open_time_ns"]) for row in rows)
