"""Exact decimals: parsing wire strings and formatting them back.

Prices, sizes and money are decimal strings on the wire and Decimal in Python;
never float (ARCHITECTURE.md). The wire form is plain: an optional minus, ASCII
digits, an optional fraction ("65000.50"); no exponent, spaces or underscores.
"""

from __future__ import annotations

import re
from decimal import Context, Decimal

from trademesh.core.platform.errors import InvalidArgument, shown

__all__ = ["MAX_DIGITS", "WIDE", "format_decimal", "format_optional", "is_multiple", "parse_decimal"]

MAX_DIGITS = 38
# Exact for remainders and products of any two accepted values (the default context has 28 digits).
WIDE = Context(prec=4 * MAX_DIGITS)

_PLAIN = re.compile(r"-?[0-9]+(\.[0-9]+)?")
_MAX_TEXT = 2 * MAX_DIGITS + 2


def parse_decimal(field: str, text: str, *, required: bool = True) -> Decimal | None:
    """Parse a wire decimal string; InvalidArgument names the field on anything odd."""
    if text == "":
        if required:
            raise InvalidArgument.field(field, "is required")
        return None
    if len(text) > _MAX_TEXT or not _PLAIN.fullmatch(text):
        raise InvalidArgument.field(field, f"{shown(text)} is not a plain decimal number such as 65000.5")
    value = Decimal(text)
    if len(value.as_tuple().digits) > MAX_DIGITS:
        raise InvalidArgument.field(field, f"{shown(text)} has more than {MAX_DIGITS} significant digits")
    return value


def format_decimal(value: Decimal) -> str:
    """Plain notation without exponent or trailing zeros: Decimal('1.50E+3') -> '1500'."""
    if value == 0:
        return "0"
    return f"{value.normalize(WIDE):f}"


def format_optional(value: Decimal | None) -> str:
    """An optional decimal on the wire: its string, or "" when absent."""
    return "" if value is None else format_decimal(value)


def is_multiple(value: Decimal, step: Decimal) -> bool:
    return step == 0 or WIDE.remainder(value, step) == 0
