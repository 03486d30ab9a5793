"""The regime classifier's settings: frozen, every threshold a field, checked when made.

A bad value raises InvalidArgument naming the field ("regime.adx_enter"), worded as every config
file's ranges are (trademesh.core.platform.config.schema.words). Each condition has an entry and an exit
threshold (a band: the hysteresis of docs/overwatch.md), so the pairs are checked against each
other too: a band whose exit lies beyond its entry would flap."""

from __future__ import annotations

from dataclasses import dataclass

from trademesh.core.platform.config.schema.words import range_problem
from trademesh.core.platform.errors import FieldViolation, InvalidArgument

__all__ = ["ClassifierConfig"]

_BOUNDS: dict[str, tuple[float, float]] = {
    "adx_period": (2, 200),
    "adx_enter": (1.0, 100.0),
    "adx_exit": (0.0, 100.0),
    "vol_window": (2, 1_000),
    "vol_long_bars": (10, 100_000),
    "vol_enter": (1.0, 100.0),
    "vol_exit": (1.0, 100.0),
    "volume_window": (1, 1_000),
    "volume_long_bars": (10, 100_000),
    "thin_enter": (0.0, 1.0),
    "thin_exit": (0.0, 1.0),
    "confirm_bars": (1, 1_000),
    "warmup_bars": (1, 100_000),
}
_WHOLE: tuple[str, ...] = ("adx_period", "vol_window", "vol_long_bars", "volume_window")
_WHOLE += ("volume_long_bars", "confirm_bars", "warmup_bars")


@dataclass(frozen=True)
class ClassifierConfig:
    """Defaults suit 1m..1h bars; every window is in bars of the market's own timeframe."""

    adx_period: int = 14  # Wilder's period for +DI, -DI and ADX
    adx_enter: float = 30.0  # ADX at or above this starts a trend ...
    adx_exit: float = 25.0  # ... and a trend lasts until ADX falls below this
    vol_window: int = 20  # short window (bars) of the realised volatility (std of log returns)
    vol_long_bars: int = 500  # memory (bars) of the long-run volatility level it is compared to
    vol_enter: float = 1.8  # short / long-run volatility at or above this is high volatility ...
    vol_exit: float = 1.4  # ... which lasts until the ratio falls below this
    volume_window: int = 20  # short window (bars) of the mean volume
    volume_long_bars: int = 500  # memory (bars) of the long-run volume level
    thin_enter: float = 0.35  # short / long-run volume at or below this is thin liquidity ...
    thin_exit: float = 0.6  # ... which lasts until the ratio rises above this
    confirm_bars: int = 5  # a new regime must be the candidate this many bars in a row
    warmup_bars: int = 100  # bars before the first regime (at least the indicators' own need)

    def __post_init__(self) -> None:
        bad = [
            FieldViolation(f"regime.{name}", problem)
            for name, (low, high) in _BOUNDS.items()
            if (problem := range_problem(getattr(self, name), low, high)) is not None
        ]
        bad += self._integers() if not bad else []
        bad += self._pairs() if not bad else []
        if bad:
            raise InvalidArgument(bad)

    def _integers(self) -> list[FieldViolation]:
        names = _WHOLE
        return [
            FieldViolation(f"regime.{name}", "must be a whole number of bars")
            for name in names
            if not isinstance(getattr(self, name), int) or isinstance(getattr(self, name), bool)
        ]

    def _pairs(self) -> list[FieldViolation]:
        bad = []
        if self.adx_exit > self.adx_enter:
            bad.append(FieldViolation("regime.adx_exit", "must be at most regime.adx_enter"))
        if self.vol_exit > self.vol_enter:
            bad.append(FieldViolation("regime.vol_exit", "must be at most regime.vol_enter"))
        if self.thin_exit < self.thin_enter:
            bad.append(FieldViolation("regime.thin_exit", "must be at least regime.thin_enter"))
        if self.vol_long_bars < self.vol_window:
            bad.append(FieldViolation("regime.vol_long_bars", "must be at least regime.vol_window"))
        if self.volume_long_bars < self.volume_window:
            bad.append(FieldViolation("regime.volume_long_bars", "must be at least regime.volume_window"))
        if self.warmup_bars < self.indicator_bars:
            need = f"must be at least {self.indicator_bars} (2 x adx_period, vol_window + 1, volume_window)"
            bad.append(FieldViolation("regime.warmup_bars", need))
        return bad

    @property
    def indicator_bars(self) -> int:
        """Bars before every indicator has a value: ADX needs 2 x period (period bars for the
        first smoothed DI, period more for the first ADX average)."""
        return max(2 * self.adx_period, self.vol_window + 1, self.volume_window)
