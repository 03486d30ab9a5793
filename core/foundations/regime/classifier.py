"""The regime of one market (venue, symbol, timeframe), updated per closed bar in O(1).

Method (docs/overwatch.md, "Method"):
- trend: Wilder's ADX(period) with +DI / -DI. ADX at or above `adx_enter` is a trend, up when
  +DI > -DI, down otherwise; it stays a trend while ADX is at or above `adx_exit` and its
  side's DI still leads (a crossing inside the band ends it rather than flipping it).
- high volatility: the std of log returns over `vol_window` bars over its own long-run level
  (the geometric long-run mean of that std: a mean of its logarithm, so the bursts it is to
  find do not lift the level much): at or above `vol_enter`, staying until below `vol_exit`.
- thin liquidity: the mean volume over `volume_window` bars over its own long-run level: at or
  below `thin_enter`, staying until it is above `thin_exit`.
- precedence: thin_liquidity > high_volatility > trend_up / trend_down > range. Thin volume
  first: on a thin book neither prices nor their volatility say much, and what a strategy must
  know first is that it cannot trade size. High volatility before trend: a burst also lifts
  ADX, and the risk of the move matters more to a strategy than its direction.
- hysteresis, twice: the regime in force holds until its condition crosses its exit threshold
  (a band: enter / exit above), and a new regime is taken only when it passed its entry
  threshold `confirm_bars` closed bars in a row; `since_ns` is then the open time of the first
  of those bars (the regime held from there). Only the regime in force reads its exit: were
  every condition to keep its own band, a one-bar blip past an entry would ride the band
  through the confirmation (measured: docs/overwatch.md, "Hysteresis").
- unknown until `warmup_bars` bars came; the first regime after it is taken at once.

Prices and volumes come as Decimal (money) and are read as floats: a regime is not money.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

from core.foundations.errors import InvalidArgument
from core.foundations.model import Candle
from core.foundations.regime.config import ClassifierConfig
from core.foundations.regime.indicators import Dmi, LongRun, Window

__all__ = ["Classifier", "Features", "Reading", "Regime"]


class Regime(StrEnum):
    UNKNOWN = "unknown"  # warming up
    TREND_UP = "trend_up"
    TREND_DOWN = "trend_down"
    RANGE = "range"
    HIGH_VOLATILITY = "high_volatility"
    THIN_LIQUIDITY = "thin_liquidity"


@dataclass(frozen=True, slots=True)
class Features:
    """What a regime was read from, as of one bar (ratios are 1.0 while a level is unknown)."""

    adx: float
    di_plus: float
    di_minus: float
    vol_ratio: float  # short-window realised volatility / its long-run level
    volume_ratio: float  # short-window mean volume / its long-run level


@dataclass(frozen=True, slots=True)
class Reading:
    """The classifier's answer after one closed bar."""

    regime: Regime
    since_ns: int  # open time of the first bar of the regime (of the first bar seen: unknown)
    candidate: Regime  # what this bar alone says (after the bands), before confirm_bars
    features: Features
    bar_open_ns: int
    bars: int  # bars seen
    changed: bool  # this bar changed the regime


class Classifier:
    """One market's regime; feed it that market's closed bars in time order."""

    __slots__ = (
        "_bars", "_candidate", "_candidate_since", "_cfg", "_dmi", "_last_open", "_prev_close",
        "_regime", "_run", "_since", "_vol", "_vol_long", "_volume",
        "_volume_long",
    )  # fmt: skip

    def __init__(self, cfg: ClassifierConfig | None = None) -> None:
        self._cfg = cfg = cfg or ClassifierConfig()
        self._dmi = Dmi(cfg.adx_period)
        self._vol, self._vol_long = Window(cfg.vol_window), LongRun(cfg.vol_long_bars)
        self._volume, self._volume_long = Window(cfg.volume_window), LongRun(cfg.volume_long_bars)
        self._prev_close: float | None = None
        self._last_open: int | None = None
        self._bars = 0
        self._regime, self._since = Regime.UNKNOWN, 0
        self._candidate, self._candidate_since, self._run = Regime.UNKNOWN, 0, 0

    @property
    def config(self) -> ClassifierConfig:
        return self._cfg

    def update(self, bar: Candle) -> Reading:
        """Take the next closed bar. A bar still open, not after the last one, priced at or
        below zero, with its high below its low or a negative volume is refused
        (InvalidArgument naming the field) and changes nothing."""
        self._check(bar)
        high, low, close = float(bar.high), float(bar.low), float(bar.close)
        std = 0.0
        if self._prev_close is not None:
            self._vol.update(math.log(close / self._prev_close))
            std = self._vol.std
            if self._vol.full and std > 0:  # a window without a move says nothing
                self._vol_long.update(math.log(std))
        self._prev_close, self._last_open = close, bar.open_time_ns
        self._dmi.update(high, low, close)
        volume = float(bar.volume)
        self._volume.update(volume)
        self._volume_long.update(volume)
        self._bars += 1
        features = self._features(std)
        candidate = self._classify(features) if self._bars >= self._cfg.warmup_bars else Regime.UNKNOWN
        changed = self._settle(candidate, bar.open_time_ns)
        return Reading(self._regime, self._since, candidate, features, bar.open_time_ns, self._bars, changed)

    def _check(self, bar: Candle) -> None:
        if not bar.closed:
            raise InvalidArgument.field("closed", "the regime is read from closed bars only")
        if self._last_open is not None and bar.open_time_ns <= self._last_open:
            raise InvalidArgument.field(
                "open_time_ns", f"{bar.open_time_ns} is not after the last bar's {self._last_open}"
            )
        for name in ("high", "low", "close"):
            if not getattr(bar, name) > 0:
                raise InvalidArgument.field(name, f"must be above 0, not {getattr(bar, name)}")
        if bar.high < bar.low:
            raise InvalidArgument.field("high", f"{bar.high} is below the low {bar.low}")
        if bar.volume < 0:
            raise InvalidArgument.field("volume", f"must be at least 0, not {bar.volume}")

    def _features(self, std: float) -> Features:
        long_vol = math.exp(self._vol_long.level) if self._vol_long.count else 0.0
        vol_ratio = std / long_vol if long_vol > 0 else 1.0
        long_volume = self._volume_long.level
        volume_ratio = self._volume.mean / long_volume if long_volume > 0 else 1.0
        dmi = self._dmi
        return Features(dmi.adx or 0.0, dmi.di_plus, dmi.di_minus, vol_ratio, volume_ratio)

    def _classify(self, f: Features) -> Regime:
        """The regime this bar says. Only the regime in force reads its exit threshold: a
        newcomer must pass its entry threshold on each of its confirm_bars bars, so a blip
        above an entry cannot ride an exit band through the confirmation."""
        cfg, now = self._cfg, self._regime
        thin = cfg.thin_exit if now is Regime.THIN_LIQUIDITY else cfg.thin_enter
        if f.volume_ratio <= thin:
            return Regime.THIN_LIQUIDITY
        volatile = cfg.vol_exit if now is Regime.HIGH_VOLATILITY else cfg.vol_enter
        if f.vol_ratio >= volatile:
            return Regime.HIGH_VOLATILITY
        side = Regime.TREND_UP if f.di_plus > f.di_minus else Regime.TREND_DOWN
        if f.adx >= (cfg.adx_exit if now is side else cfg.adx_enter):
            return side  # a DI crossing inside the band ends a trend rather than flipping it
        return Regime.RANGE

    def _settle(self, candidate: Regime, open_ns: int) -> bool:
        """Hysteresis in time: a candidate becomes the regime after confirm_bars bars in a row."""
        if self._bars == 1:
            self._since = self._candidate_since = open_ns
        if candidate != self._candidate:
            self._candidate, self._candidate_since, self._run = candidate, open_ns, 0
        self._run += 1
        if candidate == self._regime:
            return False
        if self._regime is not Regime.UNKNOWN and self._run < self._cfg.confirm_bars:
            return False
        self._regime, self._since = candidate, self._candidate_since
        return True
