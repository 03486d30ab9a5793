"""MarketData GetCandles: bad requests refused naming their field, and paging through the venue's
candle history."""

from __future__ import annotations

import time

import grpc

from trademesh.common.v1 import common_pb2 as common
from trademesh.core.venue_check.kit import Kit
from trademesh.core.venue_check.registry import check
from trademesh.core.venue_check.results import fail
from trademesh.core.venue_check.shapes import Timeframe, candle_problems
from trademesh.core.venue_check.wire import describe, field_violations, refusal
from trademesh.marketdata.v1 import marketdata_pb2 as md

_UNKNOWN = "VENUECHECK/NOSUCH"
_MINUTE_NS = 60_000_000_000
_SHOWN = 3


async def _candles(
    kit: Kit, timeframe: Timeframe, start_ns: int, end_ns: int, limit: int
) -> list[md.Candle] | None:
    """The candles, or None when the venue refuses the timeframe (INVALID_ARGUMENT, FAILED_PRECONDITION)."""
    request = md.GetCandlesRequest(
        symbol=kit.symbol, timeframe=timeframe, start_ns=start_ns, end_ns=end_ns, limit=limit
    )
    try:
        return list((await kit.mesh.md.GetCandles(request)).candles)
    except grpc.aio.AioRpcError as error:
        if error.code() in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION):
            return None
        fail(f"GetCandles of {kit.symbol} {common.Timeframe.Name(timeframe)} answered {describe(error)}")


def _range_problems(
    candles: list[md.Candle], timeframe: Timeframe, start_ns: int, end_ns: int, limit: int
) -> list[str]:
    found = []
    times = [c.open_time_ns for c in candles]
    if times != sorted(set(times)):
        found.append("candles not oldest first, each once")
    if any(not start_ns <= t < end_ns for t in times):
        found.append(f"a candle outside [{start_ns}, {end_ns})")
    if len(candles) > (limit or 1000):
        found.append(f"{len(candles)} candles for a limit of {limit or 'the default 1000'}")
    found += [p for c in candles for p in candle_problems(c, timeframe)]
    return found


@check(
    "candles.requests",
    "GetCandles refuses a bad request with INVALID_ARGUMENT naming the field: an end before the start, "
    "an unknown symbol, no timeframe",
)
async def candles_requests(kit: Kit) -> str:
    earlier, later = _MINUTE_NS, 2 * _MINUTE_NS
    minute = common.TIMEFRAME_1_MINUTE
    cases = [
        (md.GetCandlesRequest(symbol=kit.symbol, timeframe=minute, start_ns=later, end_ns=earlier),
         ("start_ns", "end_ns"), "with end_ns before start_ns"),
        (md.GetCandlesRequest(symbol=_UNKNOWN, timeframe=minute), ("symbol",), f"of {_UNKNOWN}"),
        (md.GetCandlesRequest(symbol=kit.symbol), ("timeframe",), "without a timeframe"),
    ]  # fmt: skip
    for request, fields, what in cases:
        error = await refusal(
            f"GetCandles {what}", kit.mesh.md.GetCandles(request), grpc.StatusCode.INVALID_ARGUMENT
        )
        if not any(f in fields for f, _ in field_violations(error)):
            fail(f"GetCandles {what} was refused without a field violation on {' or '.join(fields)}")
    return f"{len(cases)} bad requests refused, each naming its field"


@check(
    "candles.paging",
    "GetCandles: oldest first within [start, end), at most limit; the next page starts after the last "
    "candle, nothing skipped or repeated",
)
async def candles_paging(kit: Kit) -> str:
    end_ns = time.time_ns()
    chosen, full = common.TIMEFRAME_1_MINUTE, await _candles(kit, common.TIMEFRAME_1_MINUTE, 0, end_ns, 0)
    if full is None or len(full) < 4:
        seconds = await _candles(kit, common.TIMEFRAME_1_SECOND, 0, end_ns, 0)
        if seconds is not None and len(seconds) > len(full or []):
            chosen, full = common.TIMEFRAME_1_SECOND, seconds
    if full is None:
        fail(f"GetCandles of {kit.symbol} refused both 1-minute and 1-second candles")
    name = "1-second" if chosen == common.TIMEFRAME_1_SECOND else "1-minute"
    problems = _range_problems(full, chosen, 0, end_ns, 0)
    if problems:
        fail(f"GetCandles {name}: " + "; ".join(problems[:_SHOWN]))
    if len(full) < 4:
        return f"{len(full)} {name} candles of {kit.symbol} held, in order: too few to page"
    first = await _candles(kit, chosen, 0, end_ns, 2) or []
    second = await _candles(kit, chosen, first[-1].open_time_ns + 1 if first else 0, end_ns, 2) or []
    pages = [c.open_time_ns for c in first + second]
    expected = [c.open_time_ns for c in full[:4]]
    if pages != expected:
        fail(f"GetCandles {name} in pages of 2 gave open times {pages}; the whole range begins {expected}")
    return f"{len(full)} {name} candles in order; two pages of 2 follow on, nothing skipped or repeated"
