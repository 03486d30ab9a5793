"""trademesh.history.v1.History from the recorder's database (GetCoverage: trademesh.core.history.coverage,
its bars and, when asked, its trades;
GetBars: trademesh.core.history.held_bars): the gateway serves it on its gRPC port (and so over gRPC-web),
reading `bars` through a pool with a deadline on every query
(trademesh.core.tools.recorded: its errors are FailedPrecondition before the recorder made its tables,
Unavailable while PostgreSQL is away)."""

from __future__ import annotations

from trademesh.core.history.coverage import (
    MAX_HOLES,
    Series,
    TradeSeries,
    read_coverage,
    read_trades_coverage,
)
from trademesh.core.history.held_bars import bars_range, read_bars
from trademesh.core.platform.errors import InvalidArgument, shown
from trademesh.core.platform.rpc.context import Context
from trademesh.core.platform.rpc.server import Service
from trademesh.core.tools.recorded import RecorderDatabase
from trademesh.history.v1 import history_pb2 as pb
from trademesh.history.v1 import history_pb2_grpc as pb_grpc

__all__ = [
    "DEFAULT_HOLES",
    "HISTORY_SERVICE",
    "HistoryServicer",
    "coverage_message",
    "history_service",
    "trades_message",
]

HISTORY_SERVICE = "trademesh.history.v1.History"
DEFAULT_HOLES = 100
_MAX_NAME = 64


class HistoryServicer(pb_grpc.HistoryServicer):
    def __init__(self, database: RecorderDatabase) -> None:
        self._database = database

    async def GetCoverage(
        self, request: pb.GetCoverageRequest, context: Context[pb.GetCoverageRequest, pb.GetCoverageResponse]
    ) -> pb.GetCoverageResponse:
        holes = request.max_holes or DEFAULT_HOLES
        if holes > MAX_HOLES:
            raise InvalidArgument.field("max_holes", f"{holes} is more than {MAX_HOLES}")
        for name in ("venue", "symbol", "timeframe"):
            value = getattr(request, name)
            if len(value) > _MAX_NAME or "\x00" in value:  # PostgreSQL's text holds no NUL
                raise InvalidArgument.field(name, f"{shown(value)} is not a {name}")
        found = await read_coverage(
            self._fetch, request.venue or None, request.symbol or None, request.timeframe or None
        )
        trades: list[TradeSeries] = []
        if request.trades and not request.timeframe:  # trades have no timeframe
            trades = await read_trades_coverage(
                self._fetch_trades, request.venue or None, request.symbol or None
            )
        return pb.GetCoverageResponse(
            series=[coverage_message(series, holes) for series in found],
            trades=[trades_message(held) for held in trades],
        )

    async def GetBars(
        self, request: pb.GetBarsRequest, context: Context[pb.GetBarsRequest, pb.GetBarsResponse]
    ) -> pb.GetBarsResponse:
        wanted = bars_range(
            request.venue, request.symbol, request.timeframe, request.start_ns, request.end_ns, request.limit
        )
        bars, next_start = await read_bars(self._fetch, wanted)
        return pb.GetBarsResponse(bars=bars, next_start_ns=next_start)

    async def _fetch(self, sql: str, *args: object) -> list[object]:
        return list(await self._database.fetch(sql, *args, table="bars"))

    async def _fetch_trades(self, sql: str, *args: object) -> list[object]:
        return list(await self._database.fetch(sql, *args, table="trades"))


def coverage_message(series: Series, max_holes: int = DEFAULT_HOLES) -> pb.Coverage:
    return pb.Coverage(
        venue=series.venue,
        symbol=series.symbol,
        timeframe=series.timeframe,
        start_ns=series.first_ns,
        end_ns=series.end_ns,
        bars=series.bars,
        hole_count=series.hole_count,
        missing_bars=series.missing_bars,
        holes=[pb.Hole(start_ns=h.start_ns, end_ns=h.end_ns) for h in series.holes[:max_holes]],
        step_ns=series.step_ns,
    )


def trades_message(held: TradeSeries) -> pb.TradesCoverage:
    return pb.TradesCoverage(
        venue=held.venue, symbol=held.symbol, first_ns=held.first_ns, last_ns=held.last_ns, trades=held.trades
    )


def history_service(database: RecorderDatabase) -> Service:
    return Service(HISTORY_SERVICE, HistoryServicer(database), pb_grpc.add_HistoryServicer_to_server)
