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
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from trademesh.core.domain.model import Candle
from trademesh.core.domain.regime.config import ClassifierConfig
from trademesh.core.domain.regime.indicators import RESUM, Dmi, LongRun, RollingStats
from trademesh.core.platform.errors import InvalidArgument

__all__ = [
    "BarInputs",
    "Classifier",
    "ClassifierReading",
    "Features",
    "Regime",
    "Step",
    "bar_inputs",
    "step_of",
]


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
class ClassifierReading:
    """The classifier's answer after one closed bar."""

    regime: Regime
    since_ns: int  # open time of the first bar of the regime (of the first bar seen: unknown)
    candidate: Regime  # what this bar alone says (after the bands), before confirm_bars
    features: Features
    bar_open_ns: int
    bars: int  # bars seen
    changed: bool  # this bar changed the regime


_ZERO = Decimal(0)  # a bar's Decimals compared with it: the int 0's answers, without its conversion
# What the classifier reads of a closed bar: its open time, high, low, close and volume.
BarInputs = tuple[int, float, float, float, float]


def bar_inputs(bar: Candle) -> BarInputs:
    """A closed bar as the classifier reads it, checked but for its order (which is the
    classifier's state): one still open, priced at or below zero, with its high below its low
    or a negative volume is refused (InvalidArgument naming the field). A pure function of the
    bar: a reader that reads the same bar again may keep it."""
    if not bar.closed:
        raise InvalidArgument.field("closed", "the regime is read from closed bars only")
    high, low, close = bar.high, bar.low, bar.close
    if not (high > _ZERO and low > _ZERO and close > _ZERO):
        for name in ("high", "low", "close"):
            if not getattr(bar, name) > 0:
                raise InvalidArgument.field(name, f"must be above 0, not {getattr(bar, name)}")
    if high < low:
        raise InvalidArgument.field("high", f"{high} is below the low {low}")
    if bar.volume < _ZERO:
        raise InvalidArgument.field("volume", f"must be at least 0, not {bar.volume}")
    return bar.open_time_ns, float(high), float(low), float(close), float(bar.volume)


# A bar as the classifier steps it after the bar before it: the bar's inputs, the inputs of the
# bar before it (None: none), and what the pair makes: the log return and its square, the true
# range, +DM and -DM, and the volume's square.
Step = tuple[BarInputs, BarInputs | None, float, float, float, float, float, float]
# A step whose pair is not made: the classifier makes it after the bar it took last.
_UNMADE: BarInputs = tuple([0, 0.0, 0.0, 0.0, 0.0])  # type: ignore[assignment]  # an object of its own


def step_of(before: BarInputs | None, bar: BarInputs) -> Step:
    """The bar's step after `before` (the classifier's RollingStats, Dmi steps' inputs). A pure function
    of the two bars: a reader that steps several classifiers over the same bars (the advisor's,
    one per anchor) makes each step once and hands it to each (Classifier.update_steps)."""
    _, high, low, close, volume = bar
    if before is None:
        return bar, None, 0.0, 0.0, 0.0, 0.0, 0.0, volume * volume
    _, p_high, p_low, p_close, _ = before
    value = math.log(close / p_close)
    tr = high - low  # max(high - low, |high - p_close|, |low - p_close|) as max compares
    gap = abs(high - p_close)
    if gap > tr:
        tr = gap
    gap = abs(low - p_close)
    if gap > tr:
        tr = gap
    up, down = high - p_high, p_low - low
    plus = up if up > down and up > 0 else 0.0
    minus = down if down > up and down > 0 else 0.0
    return bar, before, value, value * value, tr, plus, minus, volume * volume


class Classifier:
    """One market's regime; feed it that market's closed bars in time order."""

    __slots__ = (
        "_bars", "_candidate", "_candidate_now", "_candidate_since", "_cfg", "_changed", "_dmi",
        "_last_bar", "_last_open", "_prev_close", "_regime", "_run", "_since", "_vol", "_vol_long", "_volume",
        "_volume_long",
    )  # fmt: skip

    def __init__(self, cfg: ClassifierConfig | None = None) -> None:
        self._cfg = cfg = cfg or ClassifierConfig()
        self._dmi = Dmi(cfg.adx_period)
        self._vol, self._vol_long = RollingStats(cfg.vol_window), LongRun(cfg.vol_long_bars)
        self._volume, self._volume_long = RollingStats(cfg.volume_window), LongRun(cfg.volume_long_bars)
        self._prev_close: float | None = None
        self._last_open: int | None = None
        self._last_bar: BarInputs | None = None  # its inputs: a step made after them is this one's
        self._bars = 0
        self._regime, self._since = Regime.UNKNOWN, 0
        self._candidate, self._candidate_since, self._run = Regime.UNKNOWN, 0, 0
        self._candidate_now, self._changed = Regime.UNKNOWN, False  # the last bar's, for its reading

    @property
    def config(self) -> ClassifierConfig:
        return self._cfg

    def update(self, bar: Candle) -> ClassifierReading:
        """Take the next closed bar. A bar still open, not after the last one, priced at or
        below zero, with its high below its low or a negative volume is refused
        (InvalidArgument naming the field) and changes nothing."""
        if not bar.closed:
            raise InvalidArgument.field("closed", "the regime is read from closed bars only")
        if self._last_open is not None and bar.open_time_ns <= self._last_open:
            raise InvalidArgument.field(
                "open_time_ns", f"{bar.open_time_ns} is not after the last bar's {self._last_open}"
            )
        reading = self.update_all((bar_inputs(bar),))
        assert reading is not None  # the bar is after the last
        return reading

    def update_all(self, inputs: Iterable[BarInputs]) -> ClassifierReading | None:
        """`update` of each bar in turn, as `bar_inputs` read it (a bar it refuses is left out by
        the caller), those not after the last bar taken skipped (each changes nothing): the last
        bar's reading, None when none was taken. The same state and last reading as `update` of
        the same bars one by one, its refusals skipped; the readings before the last are not made."""
        return self.update_steps((bar, _UNMADE, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0) for bar in inputs)

    def update_steps(self, steps: Iterable[Step]) -> ClassifierReading | None:
        """`update_all` of the steps' bars, each step's pair taken as made (`step_of`) when it was
        made after the bar this classifier took last (the same inputs object), else made here.

        The indicators' steps (Dmi, RollingStats and LongRun's `update`), `_classify` and `_settle` are
        written out here on local variables, the same operations on the same floats in the same
        order (their own methods are the reference the tests hold this loop to, bit for bit): a
        reader of 700 bars from an anchor makes about 700 steps a decision. Only what a step's
        classification reads is computed (the long-run volatility's exp only past the volume's
        test), and each value once (the DIs of the ADX's step serve the classification)."""
        cfg, dmi, vol, vol_long = self._cfg, self._dmi, self._vol, self._vol_long
        volume_w, volume_long = self._volume, self._volume_long
        warmup, period, confirm = cfg.warmup_bars, dmi.period, cfg.confirm_bars
        keep, last_dx = dmi.period - 1, 2 * dmi.period - 1
        thin_enter, thin_exit, vol_enter, vol_exit = (
            cfg.thin_enter, cfg.thin_exit, cfg.vol_enter, cfg.vol_exit,
        )  # fmt: skip
        adx_enter, adx_exit = cfg.adx_enter, cfg.adx_exit
        vol_values, vol_size, vol_sum, vol_sq, vol_since = (
            vol._values, vol.size, vol._sum, vol._sum_sq, vol._since_resum,
        )  # fmt: skip
        vw_values, vw_size, vw_sum, vw_sq, vw_since = (
            volume_w._values, volume_w.size, volume_w._sum, volume_w._sum_sq, volume_w._since_resum,
        )  # fmt: skip
        vol_n, vw_n = len(vol_values), len(vw_values)
        # LongRun's weight 1 / min(count, bars): the same division once count has reached bars
        vl_bars, vl_count, vl_level = vol_long.bars, vol_long.count, vol_long.level
        ul_bars, ul_count, ul_level = volume_long.bars, volume_long.count, volume_long.level
        vl_weight, ul_weight = 1.0 / vl_bars, 1.0 / ul_bars
        n_tr, tr_s, dmp, dmm, dx_sum, adx = (
            dmi._n, dmi._tr, dmi._dm_plus, dmi._dm_minus, dmi._dx_sum, dmi._adx,
        )  # fmt: skip
        last, last_bar, bars = self._last_open, self._last_bar, self._bars
        regime, since, run = self._regime, self._since, self._run
        cand, cand_since = self._candidate, self._candidate_since
        candidate, changed = self._candidate_now, self._changed
        unknown, thin, burst = Regime.UNKNOWN, Regime.THIN_LIQUIDITY, Regime.HIGH_VOLATILITY
        up_side, down_side, ranging = Regime.TREND_UP, Regime.TREND_DOWN, Regime.RANGE
        log, sqrt, exp, fsum, resum = math.log, math.sqrt, math.exp, math.fsum, RESUM
        di_p = di_m = 0.0
        taken = False
        for bar, before, value, value_sq, tr, plus, minus, volume_sq in steps:
            open_ns = bar[0]
            if last is not None and open_ns <= last:
                continue
            if before is not last_bar:
                _, _, value, value_sq, tr, plus, minus, volume_sq = step_of(last_bar, bar)
            volume = bar[4]
            taken = True
            std = 0.0
            if last_bar is not None:
                # RollingStats.update of the log return, its std, and LongRun.update of its log
                if vol_n == vol_size:
                    old = vol_values[0]
                    vol_sum -= old
                    vol_sq -= old * old
                else:
                    vol_n += 1
                vol_values.append(value)
                vol_sum += value
                vol_sq += value_sq
                vol_since += 1
                if vol_since >= resum:
                    vol_since = 0
                    vol_sum = fsum(vol_values)
                    vol_sq = fsum(v * v for v in vol_values)
                mean = vol_sum / vol_n
                variance = vol_sq / vol_n - mean * mean
                if variance < 0.0:  # max(variance, 0.0): its -0.0 and NaN kept, as max keeps them
                    variance = 0.0
                std = sqrt(variance)
                if vol_n == vol_size and std > 0:
                    vl_count += 1
                    weight = 1.0 / vl_count if vl_count < vl_bars else vl_weight
                    vl_level += weight * (log(std) - vl_level)
                # Dmi.update (the true range, +DM and -DM: the step's)
                n_tr += 1
                if n_tr <= period:
                    tr_s += tr
                    dmp += plus
                    dmm += minus
                else:
                    tr_s += tr - tr_s / period
                    dmp += plus - dmp / period
                    dmm += minus - dmm / period
                di_p = 100.0 * dmp / tr_s if tr_s > 0 else 0.0
                di_m = 100.0 * dmm / tr_s if tr_s > 0 else 0.0
                if n_tr >= period:
                    total = di_p + di_m
                    dx = 100.0 * abs(di_p - di_m) / total if total > 0 else 0.0
                    if adx is not None:
                        adx = (adx * keep + dx) / period
                    else:
                        dx_sum += dx
                        if n_tr == last_dx:
                            adx = dx_sum / period
            last_bar, last = bar, open_ns
            # the volume's RollingStats and LongRun
            if vw_n == vw_size:
                old = vw_values[0]
                vw_sum -= old
                vw_sq -= old * old
            else:
                vw_n += 1
            vw_values.append(volume)
            vw_sum += volume
            vw_sq += volume_sq
            vw_since += 1
            if vw_since >= resum:
                vw_since = 0
                vw_sum = fsum(vw_values)
                vw_sq = fsum(v * v for v in vw_values)
            ul_count += 1
            weight = 1.0 / ul_count if ul_count < ul_bars else ul_weight
            ul_level += weight * (volume - ul_level)
            bars += 1
            # _classify (warm: the DIs are this bar's, as warmup_bars >= 2 x adx_period)
            if bars < warmup:
                candidate = unknown
            else:
                volume_ratio = (vw_sum / vw_n) / ul_level if ul_level > 0 else 1.0
                if volume_ratio <= (thin_exit if regime is thin else thin_enter):
                    candidate = thin
                else:
                    long_vol = exp(vl_level) if vl_count else 0.0
                    vol_ratio = std / long_vol if long_vol > 0 else 1.0
                    if vol_ratio >= (vol_exit if regime is burst else vol_enter):
                        candidate = burst
                    else:
                        side = up_side if di_p > di_m else down_side
                        # a DI crossing inside the band ends a trend rather than flipping it
                        trend = (adx or 0.0) >= (adx_exit if regime is side else adx_enter)
                        candidate = side if trend else ranging
            # _settle (the regimes are members: `is` is their ==)
            if bars == 1:
                since = cand_since = open_ns
            if candidate is not cand:
                cand, cand_since, run = candidate, open_ns, 0
            run += 1
            if candidate is regime or (regime is not unknown and run < confirm):
                changed = False
            else:
                regime, since, changed = candidate, cand_since, True
        vol._sum, vol._sum_sq, vol._since_resum = vol_sum, vol_sq, vol_since
        vol_long.count, vol_long.level = vl_count, vl_level
        volume_w._sum, volume_w._sum_sq, volume_w._since_resum = vw_sum, vw_sq, vw_since
        volume_long.count, volume_long.level = ul_count, ul_level
        dmi._n, dmi._tr, dmi._dm_plus, dmi._dm_minus = n_tr, tr_s, dmp, dmm
        dmi._dx_sum, dmi._adx = dx_sum, adx
        if taken:
            assert last_bar is not None
            _, high, low, close, _ = last_bar
            dmi._prev, self._prev_close = (high, low, close), close
        self._last_open, self._last_bar, self._bars = last, last_bar, bars
        self._regime, self._since, self._run = regime, since, run
        self._candidate, self._candidate_since = cand, cand_since
        self._candidate_now, self._changed = candidate, changed
        return self._reading() if taken else None

    def _reading(self) -> ClassifierReading:
        """The reading after the last bar taken."""
        assert self._last_open is not None  # a bar was taken
        features = Features(*self._figures())
        return ClassifierReading(
            self._regime, self._since, self._candidate_now, features, self._last_open, self._bars,
            self._changed,
        )  # fmt: skip

    def _figures(self) -> tuple[float, float, float, float, float]:
        """The features as of the last bar taken: adx, +DI, -DI, the volatility and volume
        ratios (the short window's std is 0 before a second bar: no return yet)."""
        vol_long = self._vol_long
        long_vol = math.exp(vol_long.level) if vol_long.count else 0.0
        vol_ratio = self._vol.std / long_vol if long_vol > 0 else 1.0
        long_volume = self._volume_long.level
        volume_ratio = self._volume.mean / long_volume if long_volume > 0 else 1.0
        dmi = self._dmi
        return dmi.adx or 0.0, dmi.di_plus, dmi.di_minus, vol_ratio, volume_ratio

    def _classify(
        self, adx: float, di_plus: float, di_minus: float, vol_ratio: float, volume_ratio: float
    ) -> Regime:
        """The regime this bar says. Only the regime in force reads its exit threshold: a
        newcomer must pass its entry threshold on each of its confirm_bars bars, so a blip
        above an entry cannot ride an exit band through the confirmation."""
        cfg, now = self._cfg, self._regime
        thin = cfg.thin_exit if now is Regime.THIN_LIQUIDITY else cfg.thin_enter
        if volume_ratio <= thin:
            return Regime.THIN_LIQUIDITY
        volatile = cfg.vol_exit if now is Regime.HIGH_VOLATILITY else cfg.vol_enter
        if vol_ratio >= volatile:
            return Regime.HIGH_VOLATILITY
        side = Regime.TREND_UP if di_plus > di_minus else Regime.TREND_DOWN
        if adx >= (cfg.adx_exit if now is side else cfg.adx_enter):
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
