"""Exact decimals: parsing wire strings and formatting them back.

Prices, sizes and money are decimal strings on the wire and Decimal in Python;
never float (ARCHITECTURE.md).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from core.errors import InvalidArgument

__all__ = ["format_decimal", "is_multiple", "parse_decimal"]

_MAX_DIGITS = 38


def parse_decimal(field: str, text: str, *, required: bool = True) -> Decimal | None:
    """Parse a wire decimal string; InvalidArgument names the field on anything odd."""
    if text == "":
        if required:
            raise InvalidArgument.field(field, "is required")
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise InvalidArgument.field(field, f"{text!r} is not a decimal number") from None
    if not value.is_finite():
        raise InvalidArgument.field(field, f"{text!r} is not a finite decimal number")
    if len(value.as_tuple().digits) > _MAX_DIGITS:
        raise InvalidArgument.field(field, f"{text!r} has more than {_MAX_DIGITS} digits")
    return value


def format_decimal(value: Decimal) -> str:
    """Plain notation without exponent or trailing zeros: Decimal('1.50E+3') -> '1500'."""
    if value == 0:
        return "0"
    text = f"{value.normalize():f}"
    return text


def is_multiple(value: Decimal, step: Decimal) -> bool:
    return step == 0 or value % step == 0
