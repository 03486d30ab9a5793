"""`trademesh data coverage [VENUE] [SYMBOL]`: what the recorder's bars table holds per venue,
symbol and timeframe: its range, bars, and holes (each missing range listed, up to --holes)."""

from __future__ import annotations

import argparse
import json
from typing import Any

__all__ = ["add_parser", "coverage_lines"]

_HEADER = (
    f"{'venue':<12} {'symbol':<16} {'tf':<4} {'from':<20} {'to':<20} {'bars':>10} {'holes':>6} {'missing':>9}"
)


def add_parser(tools: Any) -> None:
    parser = tools.add_parser(
        "coverage",
        help="list the bars held per venue, symbol and timeframe: range, row count and holes",
        description=__doc__,
    )
    parser.add_argument("venue", nargs="?", help="only this venue")
    parser.add_argument("symbol", nargs="?", help="only this canonical symbol (BTC/USDT)")
    parser.add_argument("--timeframe", help="only this timeframe")
    parser.add_argument("--holes", type=int, default=20, help="holes listed per series (default 20; all: -1)")
    parser.add_argument("--json", action="store_true", help="one JSON object per series")
    parser.add_argument("--database-url", help="the recorder's database (default: $DATABASE_URL)")
    parser.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> None:
    import asyncio

    from core.foundations.errors import NotFound

    found = asyncio.run(_read(args))
    if not found:
        named = " ".join(part for part in (args.venue, args.symbol, args.timeframe) if part)
        raise NotFound(f"no bars are held{' for ' + named if named else ''}")
    if args.json:
        for series in found:
            print(json.dumps(_json(series)))
        return
    for line in coverage_lines(found, args.holes):
        print(line)


async def _read(args: argparse.Namespace) -> list[Any]:
    from core.history.coverage import read_coverage
    from core.history.database import connected

    async with connected(args.database_url) as conn:
        return await read_coverage(conn.fetch, args.venue, args.symbol, args.timeframe)


def coverage_lines(found: list[Any], holes_shown: int) -> list[str]:
    from core.history.coverage import iso_ns

    lines = [_HEADER]
    for s in found:
        lines.append(
            f"{s.venue:<12} {s.symbol:<16} {s.timeframe:<4} {iso_ns(s.first_ns):<20} {iso_ns(s.end_ns):<20} "
            f"{s.bars:>10,} {s.hole_count:>6,} {s.missing_bars:>9,}"
        )
        listed = s.holes if holes_shown < 0 else s.holes[:holes_shown]
        for hole in listed:
            lines.append(
                f"  hole {iso_ns(hole.start_ns)} .. {iso_ns(hole.end_ns)} ({hole.bars(s.step_ns):,} bars)"
            )
        if len(listed) < s.hole_count:
            lines.append(f"  ... {s.hole_count - len(listed):,} more holes")
    return lines


def _json(series: Any) -> dict[str, Any]:
    from core.history.coverage import iso_ns

    return {
        "venue": series.venue,
        "symbol": series.symbol,
        "timeframe": series.timeframe,
        "from": iso_ns(series.first_ns),
        "to": iso_ns(series.end_ns),
        "first_ns": series.first_ns,
        "end_ns": series.end_ns,
        "bars": series.bars,
        "hole_count": series.hole_count,
        "missing_bars": series.missing_bars,
        "holes": [{"start_ns": h.start_ns, "end_ns": h.end_ns} for h in series.holes],
    }
