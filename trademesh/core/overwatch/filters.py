"""Which markets a request asks for: a MarketFilter checked, or InvalidArgument naming every bad
field at once (`filter.venues[2]`)."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from trademesh.core.overwatch.engine import MarketKey
from trademesh.core.platform.bus.names import venue_name
from trademesh.core.platform.errors import FieldViolation, InvalidArgument, shown
from trademesh.overwatch.v1 import overwatch_pb2 as ow

__all__ = ["MAX_FILTER_ITEMS", "Markets", "market_filter"]

MAX_FILTER_ITEMS = 1000
# Canonical (ccxt unified) symbols: BASE/QUOTE, BASE/QUOTE:SETTLE, and dated or option suffixes.
_SYMBOL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*(:[A-Za-z0-9][A-Za-z0-9._-]*)?")
_SYMBOL_CHARS = 64


@dataclass(frozen=True)
class Markets:
    """The markets asked for: empty sets match every venue, every symbol."""

    venues: frozenset[str] = frozenset()
    symbols: frozenset[str] = frozenset()

    def __contains__(self, key: MarketKey) -> bool:
        return (not self.venues or key.venue in self.venues) and (
            not self.symbols or key.symbol in self.symbols
        )


def market_filter(message: ow.MarketFilter) -> Markets:
    found: list[FieldViolation] = []
    _items(found, "filter.venues", message.venues, _venue_problem)
    _items(found, "filter.symbols", message.symbols, _symbol_problem)
    if found:
        raise InvalidArgument(found)
    return Markets(frozenset(message.venues), frozenset(message.symbols))


def _items(
    found: list[FieldViolation], field: str, items: Sequence[str], problem: Callable[[str], str | None]
) -> None:
    if len(items) > MAX_FILTER_ITEMS:
        found.append(FieldViolation(field, f"{len(items)} items, at most {MAX_FILTER_ITEMS}"))
        return
    for index, item in enumerate(items):
        text = problem(item)
        if text is not None:
            found.append(FieldViolation(f"{field}[{index}]", text))


def _venue_problem(venue: str) -> str | None:
    try:
        venue_name(venue)
    except InvalidArgument as exc:
        return exc.violations[0].description
    return None


def _symbol_problem(symbol: str) -> str | None:
    if len(symbol) <= _SYMBOL_CHARS and _SYMBOL.fullmatch(symbol):
        return None
    limit = f"at most {_SYMBOL_CHARS} characters"
    return f"{shown(symbol)} is not a symbol (BASE/QUOTE or BASE/QUOTE:SETTLE, {limit})"
