"""The one wording of a bad config value.

Every config file's reader (trademesh.core.platform.config.schema) and the models that check their
own ranges when made (the advisor's settings, the inspector's policies) word a refusal with
these, so that the same mistake reads the same in every file: `tick_interval_ms: must be
between 1 and 1000, got 0 (in sim.toml)`, `venues[0].adress: unknown key; known: name,
address, symbols, channels (in mesh.toml)`, `seed: 1.5 is not a whole number (in sim.toml)`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from trademesh.core.domain.decimals import format_decimal
from trademesh.core.platform.errors import SHOWN_CHARS, shown

__all__ = [
    "REQUIRED",
    "count_out_of_range",
    "in_file",
    "listed_twice",
    "not_a",
    "number",
    "one_of",
    "out_of_range",
    "quoted",
    "range_problem",
    "unknown_key",
]

Number = int | float | Decimal

REQUIRED = "is required"
_NUMBER_CHARS = 40  # a number longer than this in plain notation is cut


def quoted(value: Any) -> str:
    """A value as an error quotes it: a string by `shown` (cut, its length said), anything else
    by its repr, cut alike (an error never echoes a file's megabyte back)."""
    if isinstance(value, str):
        return shown(value)
    text = repr(value)
    return text if len(text) <= SHOWN_CHARS else f"{text[:SHOWN_CHARS]}..."


def number(value: Number) -> str:
    """A number in plain notation (5.0 -> "5", 1e9 -> "1000000000"), cut when long."""
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, Decimal) and not value.is_finite():
        return str(value)
    text = format_decimal(Decimal(repr(value)) if isinstance(value, float) else Decimal(value))
    return text if len(text) <= _NUMBER_CHARS else f"{text[:_NUMBER_CHARS]}..."


def not_a(value: Any, what: str) -> str:
    """`value` is not of the kind the key holds: `'x' is not a whole number`."""
    return f"{quoted(value)} is not {what}"


def unknown_key(known: Iterable[str]) -> str:
    return f"unknown key; known: {', '.join(known)}"


def one_of(value: Any, options: Iterable[str]) -> str:
    return f"{quoted(value)} is not one of {', '.join(options)}"


def listed_twice(value: Any) -> str:
    return f"{quoted(value)} is listed twice"


def _bounds(low: Number | None, high: Number | None, above: bool) -> str:
    if low is None:
        return f"at most {number(high)}" if high is not None else "any"
    if above:
        return f"more than {number(low)}" + (f" and at most {number(high)}" if high is not None else "")
    if high is None:
        return f"at least {number(low)}"
    return f"between {number(low)} and {number(high)}"


def out_of_range(value: Number, low: Number | None, high: Number | None, *, above: bool = False) -> str:
    """`must be between 1 and 1000, got 0`; with `above`, `low` itself is out too (`must be more
    than 0 and at most 1, got 0`); a bound of None is no bound on that side."""
    return f"must be {_bounds(low, high, above)}, got {number(value)}"


def count_out_of_range(count: int, low: int | None, high: int | None) -> str:
    """A list with too few or too many items: `must list between 1 and 100, got 0`."""
    return f"must list {_bounds(low, high, False)}, got {count}"


def range_problem(
    value: Number, low: Number | None, high: Number | None, *, above: bool = False
) -> str | None:
    """What is wrong with `value` for the range, or None. A NaN or an infinity is out of every
    range (a Decimal NaN would raise on comparing, a float NaN compare as in range)."""
    if isinstance(value, float) and not math.isfinite(value):
        return not_a(value, "a finite number")
    if isinstance(value, Decimal) and not value.is_finite():
        return not_a(str(value), "a finite decimal number")
    too_low = low is not None and (value <= low if above else value < low)
    if too_low or (high is not None and value > high):
        return out_of_range(value, low, high, above=above)
    return None


def in_file(description: str, source: str) -> str:
    """A refusal's text with the file it is about: `... (in sim.toml)`."""
    return f"{description} (in {source})"
