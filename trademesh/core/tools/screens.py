"""The screen tool: a screen's latest result from the Screener
(trademesh.screener.v1.Screener/GetResults; docs/screener.md). Read only.

The name is checked against the Screener's own list (ListScreens) before asking for its result:
a name not loaded is an InvalidArgument naming the tool's argument `name` and the screens there
are, rather than the Screener's request field.
"""

from __future__ import annotations

from typing import Any

from trademesh.core.platform.errors import InvalidArgument, shown
from trademesh.core.tools.render import iso_time
from trademesh.core.tools.upstream import Upstream
from trademesh.screener.v1 import screener_pb2 as sc

__all__ = ["SCREENER", "ScreenTools", "screen_result"]

SCREENER = "trademesh.screener.v1.Screener"
Json = dict[str, Any]
_DIGITS = 6  # a score is a weighted sum of normalised ranks: six decimals say all it means


def _ranked(item: sc.RankedInstrument) -> Json:
    return {
        "rank": item.rank,
        "symbol": item.symbol,
        "score": round(item.score, _DIGITS),
        "metrics": {m.metric: m.value for m in item.metrics},
        "as_of": iso_time(item.as_of_ns),
        "as_of_ns": item.as_of_ns,
    }


def screen_result(result: sc.ScreenResult) -> Json:
    return {
        "screen": result.screen,
        "venue": result.venue,
        "computed": iso_time(result.computed_ns),
        "computed_ns": result.computed_ns,
        "top_n": result.top_n,
        "ranked": [_ranked(item) for item in result.ranked],
        "universe": result.universe,
        "left_out": result.left_out,
        "missing": dict(sorted(result.missing.items())),
        "stale": result.stale,
        "filtered_out": result.filtered_out,
    }


class ScreenTools:
    def __init__(self, upstream: Upstream) -> None:
        self._up = upstream

    async def screen(self, name: str) -> Json:
        """The latest result of the screen `name` (e.g. momentum): every instrument of its venue
        that passed its filters, best first, with its `rank`, `score` and metric values (decimal
        strings; volumes and depths in the quote asset), and the counts of the universe, of those
        left out for a missing metric (`missing`, per metric; `stale`: an input too old) and of
        those a filter refused. `top_n`: the first that many are the screen's symbols. `result`
        is null while the screen has not been evaluated yet. `screens`: every screen loaded."""
        listed = await self._up.unary(SCREENER, None, "ListScreens", sc.ListScreensRequest(),
                                      sc.ListScreensResponse)  # fmt: skip
        names = [s.name for s in listed.screens]
        if name not in names:
            known = ", ".join(names) or "none"
            raise InvalidArgument.field("name", f"{shown(name)} is not a screen loaded (loaded: {known})")
        got = await self._up.unary(SCREENER, None, "GetResults", sc.GetResultsRequest(screen=name),
                                   sc.GetResultsResponse)  # fmt: skip
        return {"screens": names, "result": screen_result(got.result) if got.HasField("result") else None}
