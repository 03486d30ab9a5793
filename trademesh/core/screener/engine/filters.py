"""A screen's filters: `"<metric> <operator> <number>"`, e.g. `"volume_24h >= 1e6"`.

The language is deliberately this small, read by one regular expression and never evaluated:
a metric from the fixed set (trademesh.core.screener.engine.metrics), one of four comparisons, and a
finite number (TOML's and Python's spelling: 5, -0.5, 1e6, 1_000_000). Equality is left out:
the metrics are floats, and `==` on them would pass by accident or not at all.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from trademesh.core.platform.config.schema.words import not_a, one_of, quoted
from trademesh.core.platform.errors import FieldViolation, InvalidArgument
from trademesh.core.screener.engine.metrics import METRICS

__all__ = ["OPERATORS", "Filter", "read_filters"]

OPERATORS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
}
MAX_FILTERS = 50
_SHAPE = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*([<>=!]+)\s*(\S+)\s*")
_NUMBER = re.compile(r"[+-]?(\d[\d_]*)?(\.\d*)?([eE][+-]?\d+)?")


@dataclass(frozen=True, slots=True)
class Filter:
    """One comparison an instrument's metric must pass to be ranked."""

    metric: str
    op: str
    value: float

    def passes(self, value: float) -> bool:
        return OPERATORS[self.op](value, self.value)

    def __str__(self) -> str:
        return f"{self.metric} {self.op} {self.value:g}"


def read_filters(raw: Any, path: str) -> tuple[Filter, ...]:
    """The `filters` key: a list of comparisons; InvalidArgument naming each bad one
    (`filters[1]`) and what is wrong with it."""
    if not isinstance(raw, list):
        raise InvalidArgument.field(path, not_a(raw, 'a list of comparisons ("volume_24h >= 1e6")'))
    if len(raw) > MAX_FILTERS:
        raise InvalidArgument.field(path, f"must list at most {MAX_FILTERS}, got {len(raw)}")
    found, bad = [], []
    for index, text in enumerate(raw):
        try:
            found.append(parse_filter(text))
        except ValueError as exc:
            bad.append(FieldViolation(f"{path}[{index}]", str(exc)))
    if bad:
        raise InvalidArgument(bad)
    return tuple(found)


def parse_filter(text: Any) -> Filter:
    """One comparison; ValueError saying what is wrong."""
    if not isinstance(text, str):
        raise ValueError(not_a(text, 'a comparison such as "spread_bps <= 5"'))
    shape = _SHAPE.fullmatch(text)
    if shape is None:
        raise ValueError(not_a(text, 'a comparison "<metric> <operator> <number>", e.g. "spread_bps <= 5"'))
    metric, op, number = shape.groups()
    if metric not in METRICS:
        raise ValueError(f"{one_of(metric, METRICS)} (the metrics)")
    if op not in OPERATORS:
        raise ValueError(f"{one_of(op, OPERATORS)} (the operators)")
    return Filter(metric, op, _number(number))


def _number(text: str) -> float:
    try:
        value = float(text) if _NUMBER.fullmatch(text) else math.nan
    except ValueError:  # "", ".", "+e5" or a misplaced "_": the shape matched, float refuses
        value = math.nan
    if math.isnan(value):  # the regular expression lets no "nan" through
        raise ValueError(not_a(text, "a number"))
    if not math.isfinite(value):
        raise ValueError(f"{quoted(text)} is not a finite number")
    return value
