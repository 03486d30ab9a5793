"""Marks for unrealised PnL: the latest trade price of a symbol, read from the bus's trade stream
of its venue (`md.{<venue>}.trades`, the stream the bridge serves live) when PnL is asked for.
Only the newest entries are read; a symbol with no trade among them is valued at its last fill
price (the caller's fallback)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from trademesh.core.domain.model import Channel
from trademesh.core.platform.bus.codec import decode
from trademesh.core.platform.bus.names import market_stream
from trademesh.core.platform.bus.reads import read_back
from trademesh.core.platform.bus.redis import BusRedis

__all__ = ["Mark", "latest_marks"]

log = logging.getLogger(__name__)

_SCAN = 500  # newest entries of a venue's trade stream read per question


@dataclass(frozen=True)
class Mark:
    venue: str
    symbol: str
    price: Decimal
    ts_ns: int


async def latest_marks(redis: BusRedis, wanted: set[tuple[str, str]]) -> dict[tuple[str, str], Mark]:
    """The newest trade price of each (venue, symbol) wanted that has one on the bus."""
    found: dict[tuple[str, str], Mark] = {}
    for venue in sorted({v for v, _ in wanted}):
        entries = await read_back(redis, market_stream(venue, Channel.TRADES), count=_SCAN)
        for _, fields in entries:
            _take(venue, fields, wanted, found)
            if all((venue, s) in found for v, s in wanted if v == venue):
                break
    return found


def _take(venue: str, fields: Any, wanted: set[tuple[str, str]], found: dict[tuple[str, str], Mark]) -> None:
    try:
        events = decode(fields).market.events
    except Exception:  # not ours to judge: the writer logs its own
        return
    for event in reversed(events):  # newest first
        key = (venue, event.symbol)
        if key in wanted and key not in found and event.WhichOneof("payload") == "trade":
            try:
                found[key] = Mark(venue, event.symbol, Decimal(event.trade.price), event.ts_event_ns)
            except InvalidOperation:
                continue
