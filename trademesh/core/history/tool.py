"""The MCP tool history_coverage: what `trademesh data coverage` and History/GetCoverage say,
from the same query (trademesh.core.history.coverage), as JSON a model reads."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from trademesh.core.history.coverage import Series, iso_ns, read_coverage, read_trades_coverage
from trademesh.core.tools.recorded import RecorderDatabase

__all__ = ["HistoryTools"]

Json = dict[str, Any]
_HOLES = 20

VenueName = Annotated[str, Field(description="only this venue (e.g. binance); empty: every venue")]
SymbolName = Annotated[str, Field(description="only this canonical symbol (e.g. BTC/USDT); empty: every one")]
WithTrades = Annotated[
    bool, Field(description="also list the trades held per venue and symbol (not with a timeframe)")
]
TimeframeName = Annotated[
    str, Field(description="only this timeframe (1s, 1m, 5m, 15m, 1h, 4h, 1d); empty: all")
]


class HistoryTools:
    def __init__(self, database: RecorderDatabase) -> None:
        self._db = database

    async def history_coverage(
        self,
        venue: VenueName = "",
        symbol: SymbolName = "",
        timeframe: TimeframeName = "",
        trades: WithTrades = False,
    ) -> Json:
        """What history the recorder holds for backtests, per venue, symbol and timeframe: the range
        of bars held (from: the first bar's open, to: the last bar's close, ISO UTC and ns), the
        number of bars, and the holes (ranges of missing bars, the first 20 listed, with their
        total count and the bars missing). Recorded live, downloaded from venues or imported from
        exchange archives. With trades: also the trades held per venue and symbol (first and last
        trade, count)."""
        found = await read_coverage(self._fetch, venue or None, symbol or None, timeframe or None)
        out: Json = {"series": [_series(series) for series in found]}
        if trades and not timeframe:
            held = await read_trades_coverage(self._fetch_trades, venue or None, symbol or None)
            out["trades"] = [series.as_json() for series in held]
        return out

    async def _fetch(self, sql: str, *args: object) -> list[object]:
        return list(await self._db.fetch(sql, *args, table="bars"))

    async def _fetch_trades(self, sql: str, *args: object) -> list[object]:
        return list(await self._db.fetch(sql, *args, table="trades"))


def _series(series: Series) -> Json:
    return {
        "venue": series.venue,
        "symbol": series.symbol,
        "timeframe": series.timeframe,
        "from": iso_ns(series.first_ns),
        "to": iso_ns(series.end_ns),
        "start_ns": series.first_ns,
        "end_ns": series.end_ns,
        "bars": series.bars,
        "hole_count": series.hole_count,
        "missing_bars": series.missing_bars,
        "holes": [
            {"from": iso_ns(h.start_ns), "to": iso_ns(h.end_ns), "bars": h.bars(series.step_ns)}
            for h in series.holes[:_HOLES]
        ],
    }
