"""The regimes tool: Overwatch's board (trademesh.overwatch.v1.Overwatch/GetBoard), the market
regime of every venue and symbol it reads bars of (docs/overwatch.md). Read only.

The venue and symbol are checked here, both named in one InvalidArgument when bad, before the
call: Overwatch would refuse them too, but naming its request's fields (`filter.venues[0]`),
not the tool's arguments.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from trademesh.common.v1 import common_pb2 as common
from trademesh.core.domain.convert import TIMEFRAME_FROM_PB
from trademesh.core.platform.bus.names import venue_name
from trademesh.core.platform.errors import FieldViolation, InvalidArgument
from trademesh.core.tools.inputs import canonical_symbol
from trademesh.core.tools.render import enum_word, iso_time
from trademesh.core.tools.upstream import Upstream
from trademesh.overwatch.v1 import overwatch_pb2 as ow

__all__ = ["OVERWATCH", "RegimeTools", "market_regime"]

OVERWATCH = "trademesh.overwatch.v1.Overwatch"
Json = dict[str, Any]
# The features are a classifier's readings, not money: four decimals say all they mean.
_DIGITS = 4


def _timeframe(value: common.Timeframe.ValueType) -> str:
    found = TIMEFRAME_FROM_PB.get(value)
    return str(value) if found is None else found.label


def _features(item: ow.Features) -> Json:
    return {
        "adx": round(item.adx, _DIGITS),
        "di_plus": round(item.di_plus, _DIGITS),
        "di_minus": round(item.di_minus, _DIGITS),
        "vol_ratio": round(item.vol_ratio, _DIGITS),
        "volume_ratio": round(item.volume_ratio, _DIGITS),
    }


def market_regime(item: ow.MarketRegime) -> Json:
    return {
        "venue": item.venue,
        "symbol": item.symbol,
        "timeframe": _timeframe(item.timeframe),
        "regime": enum_word(ow.Regime.Name, item.regime, "REGIME_"),
        "since": iso_time(item.since_ns),
        "since_ns": item.since_ns,
        "features": _features(item.features),
        "bars": item.bars,
        "last_bar": iso_time(item.last_bar_ns),
        "last_bar_ns": item.last_bar_ns,
        "updated": iso_time(item.updated_ns),
        "updated_ns": item.updated_ns,
    }


def _filter(venue: str | None, symbol: str | None) -> ow.MarketFilter:
    """The board's filter; one InvalidArgument naming every bad argument."""
    bad: list[FieldViolation] = []

    def checked(value: str | None, check: Callable[[str], str]) -> list[str]:
        if value is None or value == "":
            return []
        try:
            return [check(value)]
        except InvalidArgument as exc:
            bad.extend(exc.violations)
            return []

    venues, symbols = checked(venue, venue_name), checked(symbol, canonical_symbol)
    if bad:
        raise InvalidArgument(bad)
    return ow.MarketFilter(venues=venues, symbols=symbols)


class RegimeTools:
    def __init__(self, upstream: Upstream) -> None:
        self._up = upstream

    async def regimes(self, venue: str | None = None, symbol: str | None = None) -> Json:
        """The market regime of every venue and symbol Overwatch reads bars of (its board; 1m bars),
        optionally of one `venue` (e.g. sim) and/or one `symbol` (canonical, e.g. BTC/USDT). Per
        market: `regime` (trend_up, trend_down, range, high_volatility, thin_liquidity; unknown
        while it warms up on its first 100 bars), `since` (the open time of the regime's first
        bar: it has held since then), the `features` it was read from (adx, di_plus, di_minus
        0-100; vol_ratio and volume_ratio, realised volatility and mean volume over their
        long-run levels: 1.0 while not yet known), `bars` read, and the last bar's open time and
        close (`updated`). Markets in (venue, symbol, timeframe) order; `as_of`: when the board
        was taken. No market matching: an empty list, not an error."""
        request = ow.GetBoardRequest(filter=_filter(venue, symbol))
        got = await self._up.unary(OVERWATCH, None, "GetBoard", request, ow.GetBoardResponse)
        return {
            "as_of": iso_time(got.board.as_of_ns),
            "as_of_ns": got.board.as_of_ns,
            "markets": [market_regime(m) for m in got.board.markets],
        }
