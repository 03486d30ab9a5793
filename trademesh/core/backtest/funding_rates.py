"""The funding rates the recorder kept (its `funding` table: each venue's funding payments with
the rate applied, read by ingest; docs/recorder.md, "Funding"), for a backtest to pay.

For each perpetual of the run, the rates of the funding times in the run's range, widened by an
interval on each side (a funding time at the range's edge may take a rate recorded just
outside it: FundingTerms.rate_at takes the nearest within half an interval). A payment without
a rate (the venue did not say) is left out; so is a second row of one funding time (a venue
listing two payments of one market at one time: the first by funding id is taken).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from decimal import Decimal

import asyncpg

from trademesh.core.platform.errors import Unavailable
from trademesh.core.platform.logs.redact import redact_url

__all__ = ["load_funding_rates"]

_SQL = """
SELECT DISTINCT ON (symbol, funding_time_ns) symbol, funding_time_ns, rate
FROM funding
WHERE venue = $1 AND symbol = ANY($2::text[]) AND rate IS NOT NULL
  AND funding_time_ns >= $3 AND funding_time_ns < $4
ORDER BY symbol, funding_time_ns, funding_id
"""
_TIMEOUT_S = 60.0
_ERRORS = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)


async def load_funding_rates(
    database_url: str, venue: str, intervals_s: Mapping[str, int], start_ns: int, end_ns: int
) -> dict[str, list[tuple[int, Decimal]]]:
    """Each perpetual's (of `intervals_s`: its funding interval) recorded (funding time, rate)
    around [start_ns, end_ns), oldest first; a perpetual without any is left out."""
    if not intervals_s:
        return {}
    widest = max(intervals_s.values()) * 1_000_000_000
    try:
        connection = await asyncpg.connect(database_url, timeout=10.0)
    except _ERRORS as exc:
        raise Unavailable(f"funding rates: database {redact_url(database_url)} unreachable: {exc}") from exc
    try:
        rows = await connection.fetch(
            _SQL, venue, sorted(intervals_s), start_ns - widest, end_ns + widest, timeout=_TIMEOUT_S
        )
    except asyncpg.UndefinedTableError:
        return {}  # a recorder from before the funding table (migration 009): nothing recorded
    except _ERRORS as exc:
        raise Unavailable(f"funding rates: {exc}") from exc
    finally:
        await connection.close()
    return _by_symbol(rows)


def _by_symbol(rows: Collection[asyncpg.Record]) -> dict[str, list[tuple[int, Decimal]]]:
    rates: dict[str, list[tuple[int, Decimal]]] = {}
    for row in rows:
        rates.setdefault(row["symbol"], []).append((row["funding_time_ns"], row["rate"]))
    return rates
