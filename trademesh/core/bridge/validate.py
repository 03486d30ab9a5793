"""LiveData requests turned into checked values, or InvalidArgument naming every bad field at once."""

from __future__ import annotations

import re
from collections.abc import Sequence

from trademesh.core.bridge.fanout import LiveInterest
from trademesh.core.bridge.routes import TIMEFRAME_TEXT_OF_PB, requested_kinds
from trademesh.core.domain.model import Channel
from trademesh.core.platform.bus.names import market_stream
from trademesh.core.platform.errors import FieldViolation, InvalidArgument, shown
from trademesh.core.platform.rpc.fanout import Overflow
from trademesh.livedata.v1 import livedata_pb2 as lv
from trademesh.marketdata.v1 import marketdata_pb2 as md

__all__ = ["MAX_FILTER_ITEMS", "MAX_PAIRS", "list_streams_request", "subscribe_request"]

# Canonical (ccxt unified) symbols: BASE/QUOTE, BASE/QUOTE:SETTLE, and dated or option
# suffixes after the settle asset (BTC/USD:BTC-250627, BTC/USD:BTC-250627-60000-C).
_SYMBOL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*(:[A-Za-z0-9][A-Za-z0-9._-]*)?")
_SYMBOL_CHARS = 64
MAX_FILTER_ITEMS = 1000
# A subscription is indexed under every (venue, kind, symbol) it names: bound the product.
MAX_PAIRS = 2000
_TIMEFRAME_KINDS = {lv.KIND_BARS, lv.KIND_CANDLES}
_OVERFLOW = {
    md.OVERFLOW_POLICY_UNSPECIFIED: Overflow.DISCONNECT,
    md.OVERFLOW_POLICY_DISCONNECT: Overflow.DISCONNECT,
    md.OVERFLOW_POLICY_CONFLATE: Overflow.CONFLATE,
}


def subscribe_request(request: lv.SubscribeRequest) -> LiveInterest:
    found: list[FieldViolation] = []
    _venues(found, request.venues)
    _symbols(found, request.symbols)
    pairs = len(set(request.venues)) * len(set(request.symbols))
    if pairs > MAX_PAIRS:
        found.append(
            FieldViolation(
                "symbols",
                f"{pairs} venue and symbol pairs, at most {MAX_PAIRS}: leave venues or symbols empty "
                "for all of them",
            )
        )
    _kinds(found, request.kinds, required=True)
    _timeframes(found, request.timeframes, request.kinds)
    if request.overflow_policy not in _OVERFLOW:
        policy = request.overflow_policy
        found.append(FieldViolation("overflow_policy", f"{policy} is not an overflow policy"))
    if found:
        raise InvalidArgument(found)
    return LiveInterest(
        venues=frozenset(request.venues),
        symbols=frozenset(request.symbols),
        kinds=requested_kinds(request.kinds, request.timeframes),
        overflow=_OVERFLOW[request.overflow_policy],
    )


def list_streams_request(request: lv.ListStreamsRequest) -> tuple[frozenset[str], frozenset[int]]:
    """(venues, kinds) to list; empty for all."""
    found: list[FieldViolation] = []
    _venues(found, request.venues)
    _kinds(found, request.kinds, required=False)
    if found:
        raise InvalidArgument(found)
    return frozenset(request.venues), frozenset(request.kinds)


def _too_many(found: list[FieldViolation], field: str, items: Sequence[object]) -> bool:
    if len(items) > MAX_FILTER_ITEMS:
        found.append(FieldViolation(field, f"at most {MAX_FILTER_ITEMS} items, got {len(items)}"))
        return True
    return False


def _venues(found: list[FieldViolation], venues: Sequence[str]) -> None:
    if _too_many(found, "venues", venues):
        return
    for index, venue in enumerate(venues):
        try:
            market_stream(venue, Channel.TRADES)  # the bus's rule for venue names
        except InvalidArgument as exc:
            found += [FieldViolation(f"venues[{index}]", v.description) for v in exc.violations]


def _symbols(found: list[FieldViolation], symbols: Sequence[str]) -> None:
    if _too_many(found, "symbols", symbols):
        return
    for index, symbol in enumerate(symbols):
        if len(symbol) > _SYMBOL_CHARS or not _SYMBOL.fullmatch(symbol):
            found.append(
                FieldViolation(
                    f"symbols[{index}]",
                    f"{shown(symbol)} is not a canonical symbol: use the ccxt unified form, "
                    "e.g. BTC/USDT or BTC/USDT:USDT (not the venue's own, e.g. BTCUSDT)",
                )
            )


def _kinds(found: list[FieldViolation], kinds: Sequence[int], required: bool) -> None:
    if required and not kinds:
        found.append(FieldViolation("kinds", "name at least one kind (KIND_TRADES, KIND_BOOK, ...)"))
    for index, kind in enumerate(kinds):
        if kind == lv.KIND_UNSPECIFIED or kind not in lv.Kind.values():
            names = ", ".join(name for name, value in lv.Kind.items() if value != lv.KIND_UNSPECIFIED)
            found.append(FieldViolation(f"kinds[{index}]", f"{kind} is not a kind; one of {names}"))


def _timeframes(found: list[FieldViolation], timeframes: Sequence[int], kinds: Sequence[int]) -> None:
    if timeframes and not _TIMEFRAME_KINDS & set(kinds):
        found.append(FieldViolation("timeframes", "only for KIND_BARS or KIND_CANDLES"))
    for index, timeframe in enumerate(timeframes):
        if timeframe not in TIMEFRAME_TEXT_OF_PB:
            found.append(FieldViolation(f"timeframes[{index}]", f"{timeframe} is not a timeframe"))
