"""Parameter sweeps, the pure parts: the space of a strategy's parameters (a grid, or N points
sampled from it with a seed), a point applied to the strategy, and the trials' results ranked
by a metric. Running the trials is trademesh.core.backtest.trial and trademesh.core.backtest.runners'.

A parameter is named "module.param" (`fast.period`: the `period` of the module `fast`). Its
values are a list (`[8, 12, 16]`), or a range `(low, high)` to sample from (whole numbers when
both ends are, else uniform). A grid is every combination of the lists, the first parameter
varying slowest; a random sweep draws N distinct points with `random.Random(seed)`, each list
a choice and each range inclusive, so the same seed gives the same points.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from random import Random

from trademesh.core.backtest.results import Metrics
from trademesh.core.detector.replay import Catalog, Engine, Strategy, build_patches
from trademesh.core.platform.errors import InvalidArgument, shown

__all__ = [
    "MAX_POINTS",
    "METRICS",
    "ParamSpace",
    "Point",
    "Range",
    "TrialResult",
    "apply_point",
    "check_point",
    "parse_param",
    "parse_value",
    "ranked",
]

Scalar = int | float | bool | str

_NO_TIMER = 0
MAX_POINTS = 100_000  # a sweep bigger than this is a mistake, not a plan
_MAX_DRAWS = 100  # draws per wanted point before a random sweep gives up finding distinct ones

# The metrics a sweep ranks by: True when more is better.
METRICS: dict[str, bool] = {
    "total_return": True,
    "cagr": True,
    "sharpe": True,
    "sortino": True,
    "calmar": True,
    "win_rate": True,
    "profit_factor": True,
    "max_drawdown": False,
}


@dataclass(frozen=True)
class Range:
    """Values from `low` to `high`, both included: whole numbers when both are ints."""

    low: int | float
    high: int | float

    @property
    def whole(self) -> bool:
        return isinstance(self.low, int) and isinstance(self.high, int)

    def draw(self, rng: Random) -> int | float:
        if self.whole:
            return rng.randint(int(self.low), int(self.high))
        return rng.uniform(float(self.low), float(self.high))


Values = tuple[Scalar, ...] | Range


@dataclass(frozen=True)
class Point:
    """One set of parameter values, in the space's order."""

    values: tuple[tuple[str, Scalar], ...]

    def label(self) -> str:
        return " ".join(f"{name}={value}" for name, value in self.values) or "(the file's)"

    def as_dict(self) -> dict[str, Scalar]:
        return dict(self.values)


@dataclass(frozen=True)
class ParamSpace:
    params: tuple[tuple[str, Values], ...]

    def __post_init__(self) -> None:
        if not self.params:
            raise InvalidArgument.field("param", "name at least one parameter to vary")
        seen: set[str] = set()
        for name, values in self.params:
            _split(name)
            if name in seen:
                raise InvalidArgument.field(f"param.{name}", "given twice")
            seen.add(name)
            if isinstance(values, Range):
                _check_range(name, values)
            elif not values:
                raise InvalidArgument.field(f"param.{name}", "has no values")

    @classmethod
    def of(cls, params: Mapping[str, Sequence[Scalar] | Range]) -> ParamSpace:
        return cls(tuple((k, v if isinstance(v, Range) else tuple(v)) for k, v in params.items()))

    def grid(self) -> list[Point]:
        """Every combination of the lists (no range: a grid cannot enumerate one)."""
        lists: list[tuple[Scalar, ...]] = []
        for name, values in self.params:
            if isinstance(values, Range):
                raise InvalidArgument.field(
                    f"param.{name}", "a range is sampled (random = N), not a grid: list its values"
                )
            lists.append(values)
        size = math.prod(len(v) for v in lists)
        if size > MAX_POINTS:
            raise InvalidArgument.field("param", f"a grid of {size} points is more than {MAX_POINTS}")
        names = [name for name, _ in self.params]
        return [Point(tuple(zip(names, combo, strict=True))) for combo in itertools.product(*lists)]

    def random(self, count: int, seed: int) -> list[Point]:
        """`count` distinct points drawn with the seed (the same seed, the same points)."""
        if not 1 <= count <= MAX_POINTS:
            raise InvalidArgument.field("random", f"{count} is out of range: 1 to {MAX_POINTS}")
        rng = Random(seed)
        size = self._size()
        if size is not None:
            if count > size:
                raise InvalidArgument.field("random", f"{count} is more than the space's {size} points")
            return [self._nth(index) for index in rng.sample(range(size), count)]
        points: list[Point] = []
        seen: set[Point] = set()
        for _ in range(count * _MAX_DRAWS):
            point = self._draw(rng)
            if point not in seen:
                seen.add(point)
                points.append(point)
                if len(points) == count:
                    return points
        raise InvalidArgument.field("random", f"found only {len(points)} distinct points of {count}")

    def _size(self) -> int | None:
        """The number of points when every parameter is countable (lists, whole ranges)."""
        size = 1
        for _, values in self.params:
            if isinstance(values, Range):
                if not values.whole:
                    return None
                size *= int(values.high) - int(values.low) + 1
            else:
                size *= len(values)
        return size

    def _nth(self, index: int) -> Point:
        """The point at `index` of the countable space, the last parameter varying fastest."""
        chosen: list[tuple[str, Scalar]] = []
        for name, values in reversed(self.params):
            if isinstance(values, Range):
                width = int(values.high) - int(values.low) + 1
                index, offset = divmod(index, width)
                chosen.append((name, int(values.low) + offset))
            else:
                index, offset = divmod(index, len(values))
                chosen.append((name, values[offset]))
        return Point(tuple(reversed(chosen)))

    def _draw(self, rng: Random) -> Point:
        return Point(
            tuple(
                (name, values.draw(rng) if isinstance(values, Range) else rng.choice(values))
                for name, values in self.params
            )
        )


def _split(name: str) -> tuple[str, str]:
    module, _, param = name.rpartition(".")
    if not module or not param:
        raise InvalidArgument.field("param", f"{shown(name)} is not module.param (e.g. fast.period)")
    return module, param


def _check_range(name: str, values: Range) -> None:
    for end in (values.low, values.high):
        if isinstance(end, bool) or not isinstance(end, int | float) or not math.isfinite(end):
            raise InvalidArgument.field(f"param.{name}", f"{shown(str(end))} is not a finite number")
    if values.low > values.high:
        raise InvalidArgument.field(f"param.{name}", f"{values.low}..{values.high}: low is above high")


def parse_value(text: str) -> Scalar:
    """A value as written on the command line: true/false, a whole number, a number, or text."""
    text = text.strip()
    if text in ("true", "false"):
        return text == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text


def parse_param(text: str) -> tuple[str, Values]:
    """`fast.period=8,12,16` (values) or `fast.period=8..20` (a range to sample)."""
    name, sign, given = text.partition("=")
    name = name.strip()
    if not sign or not given.strip():
        raise InvalidArgument.field("param", f"{shown(text)} is not module.param=v1,v2,... or =low..high")
    _split(name)
    if ".." in given:
        low_text, _, high_text = given.partition("..")
        low, high = parse_value(low_text), parse_value(high_text)
        for end in (low, high):
            if isinstance(end, bool) or not isinstance(end, int | float):
                raise InvalidArgument.field(f"param.{name}", f"{shown(str(end))} is not a number")
        span = Range(low, high)  # type: ignore[arg-type]
        _check_range(name, span)
        return name, span
    return name, tuple(parse_value(v) for v in given.split(",") if v.strip())


def apply_point(strategy: Strategy, point: Point) -> Strategy:
    """The strategy with the point's values in its modules' params (InvalidArgument naming a
    module the strategy does not have; the values themselves are checked by check_point)."""
    modules = {decl.id: decl for decl in strategy.modules}
    changes: dict[str, dict[str, object]] = {}
    for name, value in point.values:
        module, param = _split(name)
        if module not in modules:
            raise InvalidArgument.field(
                f"param.{name}",
                f"strategy {strategy.id!r} has no module {module!r} (modules: {', '.join(sorted(modules))})",
            )
        changes.setdefault(module, dict(modules[module].params))[param] = value
    decls = tuple(
        dataclasses.replace(decl, params=changes[decl.id]) if decl.id in changes else decl
        for decl in strategy.modules
    )
    return dataclasses.replace(strategy, modules=decls)


def check_point(strategy: Strategy, point: Point) -> Strategy:
    """`apply_point`, and the result built once as the detector builds it: a value a module
    refuses (or a parameter it does not have) is an InvalidArgument naming it and the point."""
    applied = apply_point(strategy, point)
    first = dataclasses.replace(applied, venues=applied.venues[:1], symbols=applied.symbols[:1])
    try:
        build_patches(Engine(Catalog.builtin(), timer=lambda: _NO_TIMER), first, 0)
    except InvalidArgument as exc:
        raise InvalidArgument(
            [
                dataclasses.replace(v, description=f"{v.description} (point {point.label()})")
                for v in exc.violations
            ]
        ) from None
    return applied


@dataclass(frozen=True)
class TrialResult:
    """One point's run: its metrics per strategy and "total", and the events it read."""

    index: int  # the point's position in the sweep
    point: Point
    metrics: Mapping[str, Metrics]
    events: int


def _score(result: TrialResult, metric: str, of: str) -> float:
    if of not in result.metrics:
        raise InvalidArgument.field(
            "of", f"{shown(of)} is not a strategy of the run ({', '.join(result.metrics)})"
        )
    value = getattr(result.metrics[of], metric)
    if value is None:  # profit factor without a losing round trip: ranked last
        return -math.inf
    score = float(value)
    return score if METRICS[metric] else -score


def ranked(results: Sequence[TrialResult], metric: str = "sharpe", of: str = "total") -> list[TrialResult]:
    """Best first by `metric` of `of` ("total": the account); ties keep the sweep's order."""
    if metric not in METRICS:
        raise InvalidArgument.field("metric", f"{shown(metric)} is not one of {', '.join(METRICS)}")
    return sorted(results, key=lambda r: (-_score(r, metric, of), r.index))
