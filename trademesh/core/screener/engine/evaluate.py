"""A screen evaluated once: the universe's instruments measured, filtered, normalised, scored
and ranked (docs/screener.md, "Ranking").

1. The universe: active instruments of the screen's quote assets and kinds, its symbols if it
   names some, less `exclude`.
2. Each instrument's needed metrics (Screen.needed). One missing any (no input, too old, too
   few bars) is left out and counted, per metric; it is never scored as 0.
3. The filters, all of which must pass.
4. Each weighted metric normalised across the instruments that passed: `rank` (its percentile
   rank, 0 for the lowest to 1 for the highest, ties sharing their average rank) or `zscore`
   ((value - mean) / population stdev; 0 for all when they are all equal).
5. The score: the weighted sum of the normalised metrics, in the order the weights are written.
6. The order: score descending, then symbol ascending (by code point) - two instruments with
   the same score are always in the same order, whatever order their inputs came in.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from trademesh.core.screener.engine.definition import Screen
from trademesh.core.screener.engine.inputs import InstrumentInputs
from trademesh.core.screener.engine.metrics import STALE

__all__ = ["Ranked", "ScreenResult", "evaluate", "normalise"]


@dataclass(frozen=True, slots=True)
class Ranked:
    """One ranked instrument: its place (1 first), score, its metrics' values (the needed ones
    and those of `show` it has), and the event time of its oldest input used."""

    rank: int
    symbol: str
    score: float
    metrics: Mapping[str, float]
    as_of_ns: int


@dataclass(frozen=True, slots=True)
class ScreenResult:
    """One evaluation. `ranked` holds every instrument that passed the filters, in order; `top`
    the screen's first `top_n`. Counts: the universe's size, instruments left out for a
    missing metric (`left_out`; per metric in `missing`, an instrument missing two counted
    under both; `stale` of them had an input too old) and those a filter refused.
    `oldest_input_ns` / `newest_input_ns` span the inputs of the ranked instruments (0: none)."""

    screen: str
    venue: str
    computed_ns: int
    top_n: int
    ranked: tuple[Ranked, ...]
    universe: int
    left_out: int
    missing: Mapping[str, int]
    stale: int
    filtered_out: int
    oldest_input_ns: int
    newest_input_ns: int
    hold_ns: int = 0  # the screen's membership hold (Screen.hold_ns): a follower's default

    @property
    def top(self) -> tuple[Ranked, ...]:
        return self.ranked[: self.top_n]

    @property
    def symbols(self) -> tuple[str, ...]:
        """The top's symbols, in rank order (what a membership takes)."""
        return tuple(row.symbol for row in self.top)


@dataclass(slots=True)
class _Candidate:
    symbol: str
    values: dict[str, float]
    oldest_ns: int
    newest_ns: int
    score: float = 0.0


def in_universe(screen: Screen, inputs: InstrumentInputs) -> bool:
    universe = screen.universe
    return (
        inputs.active
        and (not universe.quote_assets or inputs.quote_asset in universe.quote_assets)
        and (not universe.kinds or inputs.kind in universe.kinds)
        and (not universe.symbols or inputs.symbol in universe.symbols)
        and inputs.symbol not in universe.exclude
    )


def evaluate(screen: Screen, instruments: Iterable[InstrumentInputs], now_ns: int) -> ScreenResult:
    """The screen's result at `now_ns` from each instrument's inputs (one per symbol: a
    symbol given twice is a caller's bug, ValueError)."""
    tally = _Tally(screen, now_ns)
    seen: set[str] = set()
    for inputs in instruments:
        if inputs.symbol in seen:
            raise ValueError(f"{inputs.symbol!r} is given twice")
        seen.add(inputs.symbol)
        if in_universe(screen, inputs):
            tally.add(inputs)
    candidates = tally.candidates
    return ScreenResult(
        screen=screen.name,
        venue=screen.venue,
        computed_ns=now_ns,
        top_n=screen.top,
        ranked=_rank(screen, candidates),
        universe=tally.universe,
        left_out=tally.left_out,
        missing=tally.missing,
        stale=tally.stale,
        filtered_out=tally.filtered_out,
        oldest_input_ns=min((c.oldest_ns for c in candidates), default=0),
        newest_input_ns=max((c.newest_ns for c in candidates), default=0),
        hold_ns=screen.hold_ns,
    )


class _Tally:
    """The instruments of one evaluation: measured, filtered, counted."""

    def __init__(self, screen: Screen, now_ns: int) -> None:
        self.screen, self.now_ns = screen, now_ns
        self.meter, self.needed, self.measured = screen.meter(), screen.needed, screen.measured
        self.missing = dict.fromkeys(self.needed, 0)
        self.candidates: list[_Candidate] = []
        self.universe = self.left_out = self.stale = self.filtered_out = 0

    def add(self, inputs: InstrumentInputs) -> None:
        self.universe += 1
        measured = self.meter.measure(inputs, self.now_ns, self.measured)
        lacking = [name for name in self.needed if name in measured.missing]
        if lacking:
            self.left_out += 1
            self.stale += any(measured.missing[name] == STALE for name in lacking)
            for name in lacking:
                self.missing[name] += 1
        elif all(f.passes(measured.values[f.metric]) for f in self.screen.filters):
            self.candidates.append(
                _Candidate(inputs.symbol, measured.values, measured.oldest_ns, measured.newest_ns)
            )
        else:
            self.filtered_out += 1


def _rank(screen: Screen, candidates: list[_Candidate]) -> tuple[Ranked, ...]:
    for metric, weight in screen.score.weights.items():
        normalised = normalise(screen.score.normalise, [c.values[metric] for c in candidates])
        for candidate, value in zip(candidates, normalised, strict=True):
            candidate.score += weight * value
    candidates.sort(key=lambda c: (-c.score, c.symbol))
    return tuple(
        Ranked(rank, c.symbol, c.score, c.values, c.oldest_ns) for rank, c in enumerate(candidates, start=1)
    )


def normalise(how: str, values: Sequence[float]) -> list[float]:
    """`values` normalised across themselves: "rank" or "zscore" (module docstring)."""
    if how == "rank":
        return _percentile_ranks(values)
    if how == "zscore":
        return _zscores(values)
    raise ValueError(f"no normalisation {how!r}")  # the definition reads only the known ones


def _percentile_ranks(values: Sequence[float]) -> list[float]:
    count = len(values)
    if count == 1:
        return [0.5]
    order = sorted(range(count), key=values.__getitem__)
    ranks = [0.0] * count
    start = 0
    while start < count:
        end = start
        while end + 1 < count and values[order[end + 1]] == values[order[start]]:
            end += 1
        shared = (start + end) / 2 / (count - 1)  # ties share their average rank
        for position in range(start, end + 1):
            ranks[order[position]] = shared
        start = end + 1
    return ranks


def _zscores(values: Sequence[float]) -> list[float]:
    if not values:
        return []
    mean = math.fsum(values) / len(values)
    spread = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / len(values))
    if spread == 0:
        return [0.0] * len(values)
    return [(v - mean) / spread for v in values]
