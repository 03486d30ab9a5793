"""A bar's VWAP computed inside PostgreSQL, by the rule the bar service computes it in Python
(core.foundations.bar.vwap_text): quote_volume / volume, exact when the quotient terminates
within MAX_DIGITS (38) significant digits, else rounded half-even to VWAP_PLACES (16) decimal
places; trailing zeros dropped (the bar service stores the VWAP's plain text, which has none).
NULL without a quote volume (as a bar rebuilt from a candle that states none) or a volume of 0.

The import moves its staged rows into `bars` with this expression (core.history.imports): the
division is PostgreSQL's, a row at a time in C, not Python's. How it matches the rule:
- `x` is the quotient to _SCALE (76) decimal places (PostgreSQL's NUMERIC division at the scale
  of its dividend, which the zero added carries; rounded half away from zero at the last place);
- when `x * volume = quote_volume`, `x` is the exact quotient: kept when it has at most 38
  significant digits (every quotient of that many digits down to 1e-38 terminates within 76
  places, so none is missed). A quotient needing all 76 places has more than 38 digits from
  1e-38 up: one whose 76th place is not 0 (min_scale) is not checked (nearly all: a quotient
  that does not terminate);
- otherwise half-even at 16 places: `round` (half away from zero) but for an exact tie at the
  17th place, which goes to the even neighbour. `x` rounded at 76 places cannot make a tie
  where the quotient has none unless the volume has 60 digits or more, as Python's own first
  rounding (core.foundations.decimals.WIDE, 152 digits) cannot for fewer than 136.
About 1.2 µs a row of PostgreSQL's time on 2 shared cores, most of it the division.
"""

from __future__ import annotations

from core.foundations.bar import VWAP_PLACES
from core.foundations.decimals import MAX_DIGITS

__all__ = ["VWAP_SQL", "vwap_sql"]

_SCALE = 2 * MAX_DIGITS


def vwap_sql(quote: str = "quote_volume", volume: str = "volume") -> str:
    """A scalar subquery of the VWAP of the columns (or expressions) `quote` and `volume`."""
    places = VWAP_PLACES
    zero = "0." + "0" * _SCALE
    unit = "0." + "0" * (places - 1) + "1"
    digits = "length(trim(BOTH '0' FROM replace(abs(x)::text, '.', '')))"
    tie = f"abs(x - trunc(x, {places})) * 2 = {unit} AND mod(trunc(x, {places}) * 1{'0' * places}, 2) = 0"
    # Nearly every quotient does not terminate: its last place is not 0 (min_scale), and it is
    # rounded at once; the rest are checked.
    inexact = f"min_scale(x) >= {_SCALE} OR x * {volume} <> {quote}"
    return (
        f"(SELECT trim_scale(CASE WHEN {inexact} THEN round(x, {places}) "
        f"WHEN {digits} <= {MAX_DIGITS} THEN x WHEN {tie} THEN trunc(x, {places}) "
        f"ELSE round(x, {places}) END) "
        f"FROM (SELECT ({quote} + {zero}) / {volume} AS x "
        f"WHERE {quote} IS NOT NULL AND {volume} <> 0 OFFSET 0) AS quotient)"
    )


VWAP_SQL = vwap_sql()
