"""Tool arguments checked before anything is called, with errors naming the bad value."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Annotated, Any

from pydantic import Field

from trademesh.core.domain.accounts import SEPARATOR, account_name
from trademesh.core.domain.model import TIMEFRAME_LABELS, Timeframe
from trademesh.core.platform.errors import FieldViolation, InvalidArgument, shown

__all__ = [
    "MAX_NS",
    "TimeframeText",
    "account_venue",
    "all_checked",
    "bounded",
    "canonical_symbol",
    "live_venue",
    "optional_symbol",
    "strategy_name",
    "timeframe_label",
]

# A bar timeframe's label as the recorder stores it (trademesh.core.domain.model.Timeframe). Its input schema
# lists them, so a model picks one instead of guessing; timeframe_label() checks the value.
TimeframeText = Annotated[str, Field(json_schema_extra={"enum": list(TIMEFRAME_LABELS)})]

# Canonical (ccxt unified) symbols: BASE/QUOTE, BASE/QUOTE:SETTLE, with dated or option
# suffixes after the settle asset (BTC/USD:BTC-250627). Venue-native forms (BTCUSDT) are refused
# here, so the caller learns the form we want instead of an empty answer.
_SYMBOL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*(:[A-Za-z0-9][A-Za-z0-9._-]*)?")
_SYMBOL_CHARS = 64
# The last time a request's int64 nanoseconds can hold: a time past it is refused naming its
# argument, not left to fail as the request is built.
MAX_NS = 2**63 - 1
# A strategy's id, as strategy files name them (trademesh.core.detector.strategy_file).
_STRATEGY = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")


def live_venue(venue: str, live: Sequence[str]) -> str:
    if venue not in live:
        known = ", ".join(live) if live else "none is registered"
        raise InvalidArgument.field("venue", f"{shown(venue)} is not a live venue (live venues: {known})")
    return venue


def account_venue(venue: str, account: str | None) -> str:
    """The venue name of `account` at `venue` ("binance.desk-a", docs/accounts.md); `venue` itself
    without an account ("" is none). An account given for a venue name that holds one already is
    refused naming both, not joined into a name no venue has."""
    if account is None or account == "":
        return venue
    if SEPARATOR in venue:
        raise InvalidArgument.field(
            "account", f"{shown(account)} given, but the venue {shown(venue)} names its account already"
        )
    return f"{venue}{SEPARATOR}{account_name(account)}"


def canonical_symbol(symbol: str) -> str:
    if len(symbol) > _SYMBOL_CHARS or not _SYMBOL.fullmatch(symbol):
        raise InvalidArgument.field(
            "symbol", f"{shown(symbol)} is not a canonical symbol such as BTC/USDT or BTC/USDT:USDT"
        )
    return symbol


def strategy_name(strategy: str) -> str:
    if not _STRATEGY.fullmatch(strategy):
        raise InvalidArgument.field(
            "strategy", f"{shown(strategy)} is not a strategy id such as trend (1-64 of a-z 0-9 _ -)"
        )
    return strategy


def optional_symbol(symbol: str | None) -> str:
    """The symbol filter of a venue call: "" (every symbol) when not given."""
    return "" if symbol is None or symbol == "" else canonical_symbol(symbol)


def timeframe_label(label: str) -> str:
    return Timeframe.from_label(label).label


def bounded(field: str, value: int, low: int, high: int) -> int:
    if not low <= value <= high:
        raise InvalidArgument.field(field, f"{value} is out of range: {low} to {high}")
    return value


def all_checked(checks: Sequence[Callable[[], Any]]) -> list[Any]:
    """Every check's value, or one InvalidArgument naming every bad argument."""
    bad: list[FieldViolation] = []
    found: list[Any] = []
    for check in checks:
        try:
            found.append(check())
        except InvalidArgument as exc:
            bad += exc.violations
    if bad:
        raise InvalidArgument(bad)
    return found
