"""The bars the recorder's `bars` table holds of one venue, symbol and timeframe over a range of
open times, oldest first, a page at a time: History.GetBars (trademesh.core.history.servicer).

One index range scan of the primary key (venue, symbol, timeframe, open_time_ns), in its order,
stopped at the page's limit. Decimals go from NUMERIC to plain decimal strings (never a float).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from trademesh.core.domain.convert import TIMEFRAME_TO_PB
from trademesh.core.domain.decimals import format_decimal, format_optional
from trademesh.core.domain.model import Timeframe
from trademesh.core.history.coverage import Fetch
from trademesh.core.platform.errors import FieldViolation, InvalidArgument, shown
from trademesh.marketdata.v1 import marketdata_pb2 as md

__all__ = ["BARS_SQL", "DEFAULT_BARS", "MAX_BARS", "BarsRange", "bars_range", "read_bars"]

DEFAULT_BARS = 5000
MAX_BARS = 5000
_MAX_NAME = 64
# No end: past any open time an int64 holds.
_NO_END = 2**63 - 1

BARS_SQL = """
SELECT open_time_ns, open, high, low, close, volume, quote_volume, trade_count
FROM bars
WHERE venue = $1 AND symbol = $2 AND timeframe = $3 AND open_time_ns >= $4 AND open_time_ns < $5
ORDER BY open_time_ns
LIMIT $6
"""


@dataclass(frozen=True)
class BarsRange:
    """A checked GetBars request."""

    venue: str
    symbol: str
    timeframe: Timeframe
    start_ns: int
    end_ns: int  # exclusive; _NO_END when the request set none
    limit: int


def bars_range(venue: str, symbol: str, timeframe: str, start_ns: int, end_ns: int, limit: int) -> BarsRange:
    """The request checked: InvalidArgument with a violation for each bad field at once."""
    bad: list[FieldViolation] = []
    for name, value in (("venue", venue), ("symbol", symbol)):
        if not value:
            bad.append(FieldViolation(name, f"a {name} is required"))
        elif len(value) > _MAX_NAME or "\x00" in value:  # PostgreSQL's text holds no NUL
            bad.append(FieldViolation(name, f"{shown(value)} is not a {name}"))
    frame: Timeframe | None = None
    if not timeframe:
        bad.append(FieldViolation("timeframe", "a timeframe is required (1s, 1m, 5m, 15m, 1h, 4h, 1d, 1w)"))
    else:
        try:
            frame = Timeframe.from_label(timeframe)
        except InvalidArgument as exc:
            bad += exc.violations
    if start_ns < 0:
        bad.append(FieldViolation("start_ns", f"{start_ns} is before 1970: at least 0"))
    if end_ns != 0 and end_ns <= start_ns:
        bad.append(FieldViolation("end_ns", f"{end_ns} is not after start_ns {start_ns} (0: no end)"))
    if limit > MAX_BARS:
        bad.append(FieldViolation("limit", f"{limit} is more than {MAX_BARS}"))
    if bad or frame is None:
        raise InvalidArgument(bad)
    return BarsRange(venue, symbol, frame, start_ns, end_ns or _NO_END, limit or DEFAULT_BARS)


async def read_bars(fetch: Fetch, wanted: BarsRange) -> tuple[list[md.Candle], int]:
    """A page of bars, oldest first, and the next page's start_ns (0: the range is done)."""
    rows = await fetch(
        BARS_SQL,
        wanted.venue,
        wanted.symbol,
        wanted.timeframe.label,
        wanted.start_ns,
        wanted.end_ns,
        wanted.limit,
    )
    bars = [_candle(wanted.timeframe, row) for row in rows]
    full = len(bars) == wanted.limit and bars[-1].open_time_ns + 1 < wanted.end_ns
    return bars, (bars[-1].open_time_ns + 1 if full else 0)


def _candle(timeframe: Timeframe, row: Any) -> md.Candle:
    return md.Candle(
        timeframe=TIMEFRAME_TO_PB[timeframe],
        open_time_ns=row["open_time_ns"],
        open=format_decimal(row["open"]),
        high=format_decimal(row["high"]),
        low=format_decimal(row["low"]),
        close=format_decimal(row["close"]),
        volume=format_decimal(row["volume"]),
        quote_volume=format_optional(row["quote_volume"]),
        trade_count=row["trade_count"],
        closed=True,
    )
