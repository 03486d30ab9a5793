"""`trademesh data coverage [VENUE] [SYMBOL]`: what the recorder's bars table holds per venue,
symbol and timeframe: its range, bars, and holes (each missing range listed, up to --holes);
then what its trades table holds per venue and symbol: the first and last trade, their count
(not with --timeframe: trades have none)."""

from __future__ import annotations

import argparse
import json
from typing import Any

__all__ = ["add_parser", "coverage_lines", "trades_lines"]

_HEADER = (
    f"{'venue':<12} {'symbol':<16} {'tf':<4} {'from':<20} {'to':<20} {'bars':>10} {'holes':>6} {'missing':>9}"
)
_TRADES_HEADER = f"{'venue':<12} {'symbol':<16} {'first trade':<24} {'last trade':<24} {'trades':>14}"


def add_parser(tools: Any) -> None:
    parser = tools.add_parser(
        "coverage",
        help="list the bars held per venue, symbol and timeframe (range, row count, holes) and the "
        "trades held per venue and symbol (first, last, count)",
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

    from trademesh.core.platform.errors import NotFound

    found, trades = asyncio.run(_read(args))
    if not found and not trades:
        named = " ".join(part for part in (args.venue, args.symbol, args.timeframe) if part)
        raise NotFound(f"no bars or trades are held{' for ' + named if named else ''}")
    if args.json:
        for series in found:
            print(json.dumps(_json(series)))
        for held in trades:
            print(json.dumps({"table": "trades", **held.as_json()}))
        return
    lines = coverage_lines(found, args.holes) if found else []
    if trades:
        lines += [""] if lines else []
        lines += trades_lines(trades)
    for line in lines:
        print(line)


async def _read(args: argparse.Namespace) -> tuple[list[Any], list[Any]]:
    from trademesh.core.history.coverage import read_coverage, read_trades_coverage
    from trademesh.core.history.database import connected

    async with connected(args.database_url) as conn:
        found = await read_coverage(conn.fetch, args.venue, args.symbol, args.timeframe)
        if args.timeframe is not None:  # bars of a timeframe asked for: trades have none
            return found, []
        return found, await read_trades_coverage(conn.fetch, args.venue, args.symbol)


def trades_lines(trades: list[Any]) -> list[str]:
    from trademesh.core.history.coverage import iso_ns

    lines = [_TRADES_HEADER]
    for t in trades:
        lines.append(
            f"{t.venue:<12} {t.symbol:<16} {iso_ns(t.first_ns):<24} {iso_ns(t.last_ns):<24} {t.trades:>14,}"
        )
    return lines


def coverage_lines(found: list[Any], holes_shown: int) -> list[str]:
    from trademesh.core.history.coverage import iso_ns

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
    from trademesh.core.history.coverage import iso_ns

    return {
        "table": "bars",
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
