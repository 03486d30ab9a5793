"""A screen, defined in TOML like a strategy (trademesh.core.detector.strategy_file):

    name = "momentum"
    description = "..."
    venue = "binance"
    cadence_s = 60            # evaluated every 60 s (at multiples of 60 s since the epoch)
    top = 10                  # the ranked list's first 10 are the screen's symbols
    max_age_s = 300           # optional: inputs older than this are missing (metrics.py)
    min_hold_s = 900          # optional: the membership's hold (membership.py); default 5 cadences
    show = ["funding_rate"]   # optional: metrics reported where known, not needed nor ranked by
    filters = ["volume_24h >= 1e6", "spread_bps <= 5"]

    [universe]                # optional: which of the venue's instruments are scanned
    quote_assets = ["USDT"]   # empty or left out: any
    kinds = ["perpetual"]     # spot, perpetual, future, option; empty: any
    symbols = []              # only these (empty: all)
    exclude = ["USDC/USDT"]

    [bars]                    # optional: the bars volatility, momentum and bar_volume read
    timeframe = "1h"
    momentum = 24             # bars back
    volatility = 24           # log returns
    volume = 24               # bars summed

    [score]
    normalise = "rank"        # or "zscore", across the instruments that passed the filters
    weights = { momentum = 1.0, spread_bps = -0.5 }

The keys are Screen's (and its tables'), read by trademesh.core.platform.config.schema: a bad file is
refused with one InvalidArgument whose fields name the keys (`filters[1]`,
`score.weights.momentum`, `bars.timeframe`) and whose texts name the file. Pure: `parse_screen`
takes the text; the shell reads the file (trademesh.core.screener.screen_file).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, cast

from trademesh.core.domain.model import InstrumentKind, Timeframe
from trademesh.core.platform.config.file import parse_toml
from trademesh.core.platform.config.schema import (
    NOT_A_KEY,
    NOT_EMPTY,
    Items,
    Matches,
    OneOf,
    Parse,
    Reading,
    Within,
)
from trademesh.core.platform.config.schema.words import in_file, not_a, one_of, out_of_range
from trademesh.core.platform.errors import FieldViolation, InvalidArgument
from trademesh.core.platform.text import unstorable_values
from trademesh.core.screener.engine.filters import Filter, read_filters
from trademesh.core.screener.engine.metrics import METRICS, Meter

__all__ = ["NORMALISATIONS", "BarWindows", "Score", "Screen", "Universe", "parse_screen"]

_NAME = Matches(r"[a-z0-9][a-z0-9_-]{0,63}", "a screen name (a-z, 0-9, _ and -)")
NORMALISATIONS = ("rank", "zscore")
MAX_WEIGHT = 1000.0
_MAX_BARS = 10_000
_DEFAULT_HOLDS = 5  # cadences a member is held when the file sets no min_hold_s


def _timeframe(raw: Any, path: str) -> Timeframe:
    if not isinstance(raw, str):
        raise InvalidArgument.field(path, not_a(raw, 'a timeframe label ("1h")'))
    return Timeframe.from_label(raw)  # its field "timeframe" reads as `path`


def _weights(raw: Any, path: str) -> dict[str, float]:
    """`score.weights`: metric -> a finite, non-zero number of at most MAX_WEIGHT either way."""
    if not isinstance(raw, Mapping) or not raw:
        raise InvalidArgument.field(path, not_a(raw, "a table of metric = weight (momentum = 1.0)"))
    weights, bad = {}, []
    for metric, weight in raw.items():
        problem = _weight_problem(metric, weight)
        if problem:
            bad.append(FieldViolation(f"{path}.{metric}", problem))
        else:
            weights[metric] = float(weight)
    if bad:
        raise InvalidArgument(bad)
    return weights


def _weight_problem(metric: str, weight: Any) -> str | None:
    if metric not in METRICS:
        return f"{one_of(metric, METRICS)} (the metrics)"
    if isinstance(weight, bool) or not isinstance(weight, int | float) or not math.isfinite(weight):
        return not_a(weight, "a finite number")
    if weight == 0:
        return "must not be 0 (leave the metric out)"
    if abs(weight) > MAX_WEIGHT:
        return out_of_range(weight, -MAX_WEIGHT, MAX_WEIGHT)
    return None


def _metric_names(raw: Any, path: str) -> tuple[str, ...]:
    if not isinstance(raw, list):
        raise InvalidArgument.field(path, not_a(raw, "a list of metrics"))
    bad = [
        FieldViolation(f"{path}[{index}]", f"{one_of(name, METRICS)} (the metrics)")
        for index, name in enumerate(raw)
        if name not in METRICS
    ]
    if bad:
        raise InvalidArgument(bad)
    return tuple(raw)


@dataclass(frozen=True, kw_only=True)
class Universe:
    """Which of the venue's active instruments are scanned (an empty list: no limit)."""

    quote_assets: Annotated[tuple[str, ...], Items(0, 100)] = ()
    kinds: Annotated[tuple[InstrumentKind, ...], Items(0, 4)] = ()
    symbols: Annotated[tuple[str, ...], Items(0, 10_000)] = ()
    exclude: Annotated[tuple[str, ...], Items(0, 10_000)] = ()


@dataclass(frozen=True, kw_only=True)
class BarWindows:
    timeframe: Annotated[Timeframe, Parse(_timeframe)] = Timeframe.H1
    momentum: Annotated[int, Within(1, _MAX_BARS)] = 24
    volatility: Annotated[int, Within(2, _MAX_BARS)] = 24
    volume: Annotated[int, Within(1, _MAX_BARS)] = 24


@dataclass(frozen=True, kw_only=True)
class Score:
    normalise: Annotated[str, OneOf(NORMALISATIONS)] = "rank"
    weights: Annotated[dict[str, float], Parse(_weights)]


@dataclass(frozen=True, kw_only=True)
class Screen:
    name: Annotated[str, _NAME]
    description: str = ""
    venue: Annotated[str, NOT_EMPTY]
    cadence_s: Annotated[int, Within(1, 86_400)] = 60
    top: Annotated[int, Within(1, 1000)] = 10
    max_age_s: Annotated[int, Within(1, 86_400)] = 300
    min_hold_s: Annotated[int | None, Within(0, 7 * 86_400)] = None
    show: Annotated[tuple[str, ...], Parse(_metric_names)] = ()
    filters: Annotated[tuple[Filter, ...], Parse(read_filters)] = ()
    universe: Universe = field(default_factory=Universe)
    bars: BarWindows = field(default_factory=BarWindows)
    score: Score
    source: Annotated[str, NOT_A_KEY] = ""  # the file it came from

    @property
    def cadence_ns(self) -> int:
        return self.cadence_s * 1_000_000_000

    @property
    def hold_ns(self) -> int:
        """The membership's minimum hold: the file's, or five cadences."""
        seconds = self.min_hold_s if self.min_hold_s is not None else _DEFAULT_HOLDS * self.cadence_s
        return seconds * 1_000_000_000

    @property
    def needed(self) -> tuple[str, ...]:
        """The metrics every ranked instrument must have (the filters' and the score's), in
        METRICS' order."""
        used = {f.metric for f in self.filters} | set(self.score.weights)
        return tuple(name for name in METRICS if name in used)

    @property
    def measured(self) -> tuple[str, ...]:
        """The metrics computed: the needed ones and `show`'s, in METRICS' order."""
        used = set(self.needed) | set(self.show)
        return tuple(name for name in METRICS if name in used)

    def meter(self) -> Meter:
        return Meter(
            timeframe=self.bars.timeframe,
            momentum_bars=self.bars.momentum,
            volatility_bars=self.bars.volatility,
            volume_bars=self.bars.volume,
            max_age_ns=self.max_age_s * 1_000_000_000,
        )

    def next_due_ns(self, now_ns: int) -> int:
        """The first evaluation time after `now_ns`: the next multiple of the cadence since the
        epoch (so a live run and a backtest evaluate at the same instants)."""
        return now_ns - now_ns % self.cadence_ns + self.cadence_ns


def parse_screen(text: str, source: str) -> Screen:
    """The screen in `text` (from `source`, for errors); InvalidArgument naming every bad key."""
    data = parse_toml(text, "file", source)
    found = unstorable_values(data, "")
    if found:
        raise InvalidArgument([FieldViolation(where, in_file(why, source)) for where, why in found])
    reading = Reading(source)
    values = reading.values(Screen, data)
    screen = None if values is None else reading.make(Screen, {**values, "source": source})
    reading.done()
    return cast(Screen, screen)
