"""Overwatch's values to and from the wire: a bus bar in, the board and changes out (pure)."""

from __future__ import annotations

from trademesh.common.v1 import common_pb2 as common
from trademesh.core.domain.convert import TIMEFRAME_TO_PB, candle_of
from trademesh.core.domain.model import Candle
from trademesh.core.domain.regime import Features, Regime
from trademesh.core.overwatch.engine import BoardEntry, RegimeBoard, RegimeChange
from trademesh.overwatch.v1 import overwatch_pb2 as ow

__all__ = ["REGIME_TO_PB", "board_to_pb", "candle_of", "change_to_pb", "close_time_ns", "entry_to_pb"]

REGIME_TO_PB = {
    Regime.UNKNOWN: ow.REGIME_UNKNOWN,
    Regime.TREND_UP: ow.REGIME_TREND_UP,
    Regime.TREND_DOWN: ow.REGIME_TREND_DOWN,
    Regime.RANGE: ow.REGIME_RANGE,
    Regime.HIGH_VOLATILITY: ow.REGIME_HIGH_VOLATILITY,
    Regime.THIN_LIQUIDITY: ow.REGIME_THIN_LIQUIDITY,
}
_LABEL_TO_PB = {timeframe.label: pb for timeframe, pb in TIMEFRAME_TO_PB.items()}
_NO_TIMEFRAME = common.TIMEFRAME_UNSPECIFIED


def close_time_ns(candle: Candle) -> int:
    """The time given to the engine with a bar: its close. The engine reads no clock, and a
    replay of the same bars must read the same regimes whenever it runs."""
    return candle.open_time_ns + candle.timeframe.ns


def _features(features: Features) -> ow.Features:
    return ow.Features(
        adx=features.adx,
        di_plus=features.di_plus,
        di_minus=features.di_minus,
        vol_ratio=features.vol_ratio,
        volume_ratio=features.volume_ratio,
    )


def _timeframe(label: str) -> common.Timeframe.ValueType:
    return _LABEL_TO_PB.get(label, _NO_TIMEFRAME)


def entry_to_pb(entry: BoardEntry) -> ow.MarketRegime:
    key = entry.key
    return ow.MarketRegime(
        venue=key.venue,
        symbol=key.symbol,
        timeframe=_timeframe(key.timeframe),
        regime=REGIME_TO_PB[entry.regime],
        since_ns=entry.since_ns,
        features=_features(entry.features),
        bars=entry.bars,
        last_bar_ns=entry.last_bar_ns,
        updated_ns=entry.updated_ns,
    )


def board_to_pb(board: RegimeBoard, entries: list[BoardEntry] | None = None) -> ow.Board:
    """The board; `entries`: only these of it (a filter's)."""
    chosen = board.entries if entries is None else entries
    return ow.Board(as_of_ns=board.as_of_ns, markets=[entry_to_pb(entry) for entry in chosen])


def change_to_pb(change: RegimeChange) -> ow.RegimeChange:
    key = change.key
    return ow.RegimeChange(
        venue=key.venue,
        symbol=key.symbol,
        timeframe=_timeframe(key.timeframe),
        previous=REGIME_TO_PB[change.previous],
        regime=REGIME_TO_PB[change.regime],
        since_ns=change.since_ns,
        at_bar_ns=change.at_bar_ns,
        at_ns=change.at_ns,
        features=_features(change.features),
    )
