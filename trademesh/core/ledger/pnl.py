"""GetPnl: profit and loss per strategy, and the equity curves.

Realised PnL, fees and funding of the period are the sums of their transfers (the store's
series, bucketed); unrealised PnL is each open position (quantity and cost basis, from the
core's balances) valued at the latest mark: the newest trade of its symbol on the bus
(trademesh.core.ledger.marks). Each line is in one asset (a fee paid in BNB is its own line); the
total, and its curve, are in the books' main asset (the one most lines are in).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from trademesh.core.domain.decimals import format_decimal
from trademesh.core.ledger.engine.chart import AccountCode
from trademesh.core.ledger.engine.core import LedgerCore
from trademesh.core.ledger.engine.model import ZERO, LedgerId
from trademesh.core.ledger.engine.reports import PositionView, positions
from trademesh.core.ledger.engine.trips import count_trips, round_trips, settlement_assets
from trademesh.core.ledger.marks import latest_marks
from trademesh.core.ledger.store import LedgerStore, PnlPoint
from trademesh.core.platform.bus.redis import BusRedis
from trademesh.ledger.v1 import ledger_pb2 as lg

__all__ = ["PnlQuery", "pnl_report"]

_POINTS = 200  # the most points a curve has when no bucket is asked for
_LAST_NS = 2**63 - 1
_MIN_BUCKET_NS = 1_000_000_000
_PART = {LedgerId.REALISED_PNL: "realised", LedgerId.FEES: "fees", LedgerId.FUNDING_PNL: "funding"}
_PNL_CODES = frozenset(
    {AccountCode.REALISED_PNL, AccountCode.FEES_PAID, AccountCode.LIQUIDATION_FEES, AccountCode.FUNDING_PNL}
)


@dataclass(frozen=True)
class PnlQuery:
    strategy: str = ""  # "": every strategy
    venue: str = ""
    since_ns: int = 0
    until_ns: int = 0
    bucket_ns: int = 0
    round_trips: bool = False  # count the period's round trips and winners (a read of the fills)


@dataclass
class _Line:
    strategy: str
    asset: str
    realised: Decimal = ZERO
    fees: Decimal = ZERO
    funding: Decimal = ZERO
    unrealised: Decimal = ZERO
    fills: int = 0
    round_trips: int = 0
    winners: int = 0

    @property
    def total(self) -> Decimal:
        return self.realised + self.fees + self.funding + self.unrealised


async def pnl_report(
    store: LedgerStore, core: LedgerCore, redis: BusRedis, query: PnlQuery
) -> lg.GetPnlResponse:
    open_positions = [p for p in positions(core.accounts, core.balances) if p.quantity and _wanted(p, query)]
    marks = await latest_marks(redis, {(p.venue, p.symbol) for p in open_positions})
    since, until = await _period(store, query)
    bucket = query.bucket_ns or max(_MIN_BUCKET_NS, -(-(until - since) // _POINTS))
    lines: dict[tuple[str, str], _Line] = {}
    curves: dict[tuple[str, str], list[tuple[int, Decimal]]] = {}
    for strategy in _strategies(core, query):
        series = await store.pnl_series(
            strategy, bucket, codes=sorted(_PNL_CODES), since_ns=query.since_ns or None,
            until_ns=query.until_ns or None, venue=query.venue or None,
        )  # fmt: skip
        _add_series(lines, strategy, series)
        for asset in {p.asset for p in series}:
            curves[(strategy, asset)] = _curve([p for p in series if p.asset == asset])
    for view in open_positions:
        mark = marks.get((view.venue, view.symbol))
        if mark is not None:
            _line(lines, view.strategy, view.quote).unrealised += view.unrealised(mark.price)
    for strategy, count in (await _fills(store, query, since, until)).items():
        for line in lines.values():
            if line.strategy == strategy:
                line.fills = count
    if query.round_trips:
        await _count_trips(store, core, query, lines, (since, until))
    return _response(lines, curves, marks.values())


async def _count_trips(
    store: LedgerStore,
    core: LedgerCore,
    query: PnlQuery,
    lines: dict[tuple[str, str], _Line],
    period: tuple[int, int],
) -> None:
    """Each line's round trips closed in the period, and its winners."""
    since, until = period
    transfers = await store.fill_transfers(query.strategy, until)
    trips = round_trips(transfers, core.accounts, settlement_assets(core.accounts.values()))
    wanted = [t for t in trips if not query.venue or t.venue == query.venue]
    for (strategy, asset), count in count_trips(wanted, since).items():
        line = _line(lines, strategy, asset)
        line.round_trips, line.winners = count.round_trips, count.winners


def _wanted(view: PositionView, query: PnlQuery) -> bool:
    return (not query.venue or view.venue == query.venue) and (
        not query.strategy or view.strategy == query.strategy
    )


def _strategies(core: LedgerCore, query: PnlQuery) -> list[str]:
    found = {
        a.key.strategy
        for a in core.accounts.values()
        if a.key.code in _PNL_CODES and (not query.venue or a.key.venue == query.venue)
    }
    return sorted(s for s in found if not query.strategy or s == query.strategy)


async def _period(store: LedgerStore, query: PnlQuery) -> tuple[int, int]:
    until = query.until_ns or time.time_ns()
    since = query.since_ns
    if not since:
        first = await store.pool.fetchval("SELECT min(ts_ns) FROM ledger_events")
        since = int(first) if first is not None else until - _MIN_BUCKET_NS
    # Never past the last ns an int64 holds: the period's bounds go to PostgreSQL as bigint.
    return since, min(max(until, since + 1), _LAST_NS)


def _line(lines: dict[tuple[str, str], _Line], strategy: str, asset: str) -> _Line:
    line = lines.get((strategy, asset))
    if line is None:
        line = lines[(strategy, asset)] = _Line(strategy, asset)
    return line


def _add_series(lines: dict[tuple[str, str], _Line], strategy: str, series: Iterable[PnlPoint]) -> None:
    for point in series:
        line = _line(lines, strategy, point.asset)
        part = _PART[point.ledger]
        setattr(line, part, getattr(line, part) + point.amount)


def _curve(series: list[PnlPoint]) -> list[tuple[int, Decimal]]:
    """Cumulative realised + fees + funding at the end of each bucket with a transfer."""
    latest: dict[LedgerId, Decimal] = {}
    points: list[tuple[int, Decimal]] = []
    for point in sorted(series, key=lambda p: p.bucket_ns):
        latest[point.ledger] = point.cumulative
        total = sum(latest.values(), ZERO)
        if points and points[-1][0] == point.bucket_ns:
            points[-1] = (point.bucket_ns, total)
        else:
            points.append((point.bucket_ns, total))
    return points


def _total_curve(curves: Iterable[list[tuple[int, Decimal]]]) -> list[tuple[int, Decimal]]:
    """The sum of several curves, each carried forward between its points."""
    events = sorted((ts, index, value) for index, curve in enumerate(curves) for ts, value in curve)
    current: dict[int, Decimal] = {}
    points: list[tuple[int, Decimal]] = []
    for ts, index, value in events:
        current[index] = value
        total = sum(current.values(), ZERO)
        if points and points[-1][0] == ts:
            points[-1] = (ts, total)
        else:
            points.append((ts, total))
    return points


async def _fills(store: LedgerStore, query: PnlQuery, since: int, until: int) -> dict[str, int]:
    # A fill id is its venue's (two accounts, two sims may both have a fill "1"): counted with
    # the venue of the accounts its transfers move (a fill's are all of its venue).
    rows = await store.pool.fetch(
        "SELECT t.strategy_id, count(DISTINCT (a.venue, t.fill_id)) AS fills FROM ledger_transfers t "
        "JOIN ledger_accounts a ON a.id = t.debit_account_id "
        "WHERE t.fill_id <> '' AND t.ts_ns >= $1 AND t.ts_ns <= $2 AND ($3::text = '' OR t.strategy_id = $3) "
        "AND ($4::text = '' OR a.venue = $4) "
        "GROUP BY t.strategy_id",
        since, until, query.strategy, query.venue,
    )  # fmt: skip
    return {row["strategy_id"]: int(row["fills"]) for row in rows}


def _points(curve: list[tuple[int, Decimal]]) -> list[lg.EquityPoint]:
    return [lg.EquityPoint(ts_ns=ts, pnl=format_decimal(value)) for ts, value in curve]


def _strategy_pb(line: _Line, curve: list[tuple[int, Decimal]]) -> lg.StrategyPnl:
    return lg.StrategyPnl(
        strategy_id=line.strategy,
        realised=format_decimal(line.realised),
        fees=format_decimal(line.fees),
        funding=format_decimal(line.funding),
        unrealised=format_decimal(line.unrealised),
        total=format_decimal(line.total),
        asset=line.asset,
        fills=line.fills,
        curve=_points(curve),
        round_trips=line.round_trips,
        winners=line.winners,
    )


def _response(
    lines: dict[tuple[str, str], _Line],
    curves: dict[tuple[str, str], list[tuple[int, Decimal]]],
    marks: Iterable[Any],
) -> lg.GetPnlResponse:
    answer = lg.GetPnlResponse(
        marks=[
            lg.Mark(venue=m.venue, symbol=m.symbol, price=format_decimal(m.price), ts_ns=m.ts_ns)
            for m in marks
        ]
    )
    for key, line in sorted(lines.items()):
        answer.strategies.append(_strategy_pb(line, curves.get(key, [])))
    counts = Counter(asset for _, asset in lines)
    if counts:
        main = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[0][0]
        total = _Line("", main)
        for (_, asset), line in lines.items():
            if asset == main:
                for part in ("realised", "fees", "funding", "unrealised", "fills", "round_trips", "winners"):
                    setattr(total, part, getattr(total, part) + getattr(line, part))
        mains = [curve for (_, asset), curve in curves.items() if asset == main]
        answer.total.CopyFrom(_strategy_pb(total, _total_curve(mains)))
    return answer
