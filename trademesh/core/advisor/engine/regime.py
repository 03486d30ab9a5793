"""Stage 5a, the market regime: Overwatch's classifier (trademesh.core.domain.regime, with the same
ClassifierConfig: the domain's default, the one Overwatch and a backtest's regimes run) over
the context's closed bars. For the same bars the advisor and Overwatch read the same regime, and
nothing is asked of Overwatch at decision time: a decision replays from its own bars.

The bars read (RegimeConfig): of the context's last `window_bars` (700), those from the anchor, the
first bar at or after a multiple of `restart_bars` (100) bars' time (counted from the epoch); all
of them while the context holds fewer than `window_bars`. So 600 to 700 bars once a market has
the history: the classifier's 100-bar warm-up and more than its 500-bar long-run memory.

Why an anchor and not simply the last 700 bars: a classifier over the last N bars must be made
anew for every new bar (N updates, about 5 ms at 700); one read from an anchor takes a new bar as
one more update (~7 µs) and is made anew only when the anchor moves, every 100 bars. Either way
the regime is a function of the bars alone, so a backtest holding the same bars reads the same
regime whenever it starts and whatever it decided before. A classifier per market fed since the
advisor started, as Overwatch keeps, would not be: its regime would hang on when the process
started and which signals it saw (a replica, a restart, a backtest starting elsewhere would each
read another). The reader keeps each market's classifier only to spare the work: a window whose
bars from the anchor are not those it read before is read from the anchor again.

A bar the classifier refuses (not after the last, a price at or below 0, ...) is skipped, as
Overwatch's shell skips it. Fewer than the classifier's warm-up bars read: `unknown`, which the
calibration answers with its fallback.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from operator import attrgetter

from trademesh.core.advisor.engine.config import RegimeConfig
from trademesh.core.domain.model import Candle
from trademesh.core.domain.regime import (
    BarInputs,
    Classifier,
    ClassifierConfig,
    ClassifierReading,
    Step,
    bar_inputs,
    step_of,
)
from trademesh.core.domain.regime import Regime as Label
from trademesh.core.platform.errors import InvalidArgument

__all__ = [
    "KEPT_MARKETS",
    "LEGACY_REGIMES",
    "REGIMES",
    "UNKNOWN",
    "AdvisorRegimeView",
    "RegimeReader",
    "anchor",
    "read_regime",
]

UNKNOWN = Label.UNKNOWN.value  # warming up: fewer bars than the classifier's warm-up
REGIMES: tuple[str, ...] = tuple(r.value for r in Label if r is not Label.UNKNOWN)
# The advisor's own labels before it read Overwatch's classifier (issue 42): old decisions and
# calibration artifacts carry them. An artifact keyed by them still loads; no decision reads them
# now, so its fallback serves every decision.
LEGACY_REGIMES: tuple[str, ...] = tuple(
    f"{t}.{v}" for t in ("up", "down", "range") for v in ("calm", "volatile")
)
_DIGITS = 6  # the features as the decision records them (a regime is not money)
# Markets whose classifier is kept (the most recently read): a run holds its 700 bars, and a
# market dropped is only read from its anchor again when it comes back.
KEPT_MARKETS = 256


@dataclass(frozen=True, slots=True)
class AdvisorRegimeView:
    label: str  # REGIMES, or UNKNOWN
    since_ns: int  # open time of the regime's first bar among those read (0: none read)
    bars: int  # bars read, from the anchor
    adx: float
    di_plus: float
    di_minus: float
    vol_ratio: float  # realised volatility over its long-run level
    volume_ratio: float  # mean volume over its long-run level


NO_REGIME = AdvisorRegimeView(UNKNOWN, 0, 0, 0.0, 0.0, 0.0, 1.0, 1.0)


def _regime(reading: ClassifierReading | None) -> AdvisorRegimeView:
    if reading is None:
        return NO_REGIME
    f = reading.features
    figures = (round(v, _DIGITS) for v in (f.adx, f.di_plus, f.di_minus, f.vol_ratio, f.volume_ratio))
    return AdvisorRegimeView(reading.regime.value, reading.since_ns, reading.bars, *figures)


def anchor(window: Sequence[Candle], cfg: RegimeConfig) -> int:
    """The index in `window` (the last window_bars at most, oldest first) of the first bar read."""
    if len(window) < cfg.window_bars:
        return 0
    span = cfg.restart_bars * window[0].timeframe.ns
    at = -(-window[0].open_time_ns // span) * span  # the first multiple at or after the first bar
    return bisect.bisect_left(window, at, key=_OPEN_TIME)


_OPEN_TIME = attrgetter("open_time_ns")  # a bar's open time, without a Python call


class _Run:
    """A classifier read from one anchor, the bars it read, and each one's step (None: a bar the
    classifier refuses). The next anchor's run takes the steps of the bars the two share
    (`successor`): each bar is converted and stepped once, though the runs of the 7 anchors in
    a window each read it."""

    __slots__ = ("before", "classifier", "read", "reading", "steps")

    def __init__(self, config: ClassifierConfig) -> None:
        self.classifier = Classifier(config)
        self.read: tuple[Candle, ...] = ()
        self.steps: list[Step | None] = []  # of the bars read, in their order
        self.before: BarInputs | None = None  # the inputs of the last bar read (not refused)
        self.reading: ClassifierReading | None = None

    def follows(self, bars: tuple[Candle, ...]) -> bool:
        """Whether `bars` (from an anchor) begin with the bars read: then only the rest is new."""
        read = self.read
        return len(bars) >= len(read) and (not read or bars[: len(read)] == read)

    def take(self, bars: tuple[Candle, ...]) -> None:
        """The bars after those read (`bars` follows them)."""
        before, steps, taken = self.before, self.steps, []
        for bar in bars[len(self.read) :]:
            inputs = _inputs(bar)
            if inputs is None:  # a bar the classifier refuses is skipped, as Overwatch's shell skips it
                steps.append(None)
                continue
            step = step_of(before, inputs)
            steps.append(step)
            taken.append(step)
            before = inputs
        self._update(taken)
        self.read, self.before = bars, before

    def successor(self, config: ClassifierConfig, bars: tuple[Candle, ...]) -> _Run:
        """A run over `bars` (from a later anchor) that has read the bars it shares with this one,
        from their steps: each after the bar before it, as made, but the first, read after none."""
        run, read = _Run(config), self.read
        first = bisect.bisect_left(read, bars[0].open_time_ns, key=_OPEN_TIME) if bars else len(read)
        shared = len(read) - first
        if shared <= 0 or len(bars) < shared or read[first:] != bars[:shared]:
            return run  # nothing shared (a gap repaired, a market back): read from the anchor
        steps = self.steps[first:]
        for at, step in enumerate(steps):
            if step is not None:  # the first bar the classifier takes from the anchor
                steps[at] = step_of(None, step[0])
                break
        taken = [step for step in steps if step is not None]
        run._update(taken)
        run.read, run.steps, run.before = bars[:shared], steps, taken[-1][0] if taken else None
        return run

    def _update(self, taken: list[Step]) -> None:
        reading = self.classifier.update_steps(taken)
        if reading is not None:
            self.reading = reading


def _inputs(bar: Candle) -> BarInputs | None:
    try:
        return bar_inputs(bar)
    except InvalidArgument:
        return None


class RegimeReader:
    """Each market's regime of its context's bars; a market's classifier kept between calls so
    that a window one bar on is one update (the answer is the same as read_regime's)."""

    def __init__(self, config: RegimeConfig, classifier: ClassifierConfig | None = None) -> None:
        self.config = config
        self.classifier = classifier or ClassifierConfig()
        self._runs: dict[tuple[str, str], _Run] = {}

    def read(self, market: tuple[str, str], bars: Sequence[Candle]) -> AdvisorRegimeView:
        window = tuple(bars[-self.config.window_bars :])
        if not window:
            return NO_REGIME
        read = window[anchor(window, self.config) :]
        run = self._runs.pop(market, None)  # put back last: the dict is in the order of use
        if run is None:
            run = _Run(self.classifier)
        elif not run.follows(read):
            run = run.successor(self.classifier, read)
        run.take(read)
        self._runs[market] = run
        if len(self._runs) > KEPT_MARKETS:
            del self._runs[next(iter(self._runs))]
        return _regime(run.reading)

    def __len__(self) -> int:
        """Markets whose classifier is kept."""
        return len(self._runs)


def read_regime(
    bars: Sequence[Candle], config: RegimeConfig, classifier: ClassifierConfig | None = None
) -> AdvisorRegimeView:
    """The regime of these closed bars (oldest first), read from scratch."""
    return RegimeReader(config, classifier).read(("", ""), bars)
