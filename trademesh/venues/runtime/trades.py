"""MarketData.GetTrades: a venue's historical public trades, a page at a time.

A venue reads trades from a time on (Venue.trades: one exchange call, or its own store); the
runtime turns those reads into pages and page tokens, the same for every venue.

A page token holds where the range goes on: a time `since_ns` and how many trades stamped
exactly `since_ns` were already returned (`skip`). The next read starts at `since_ns` and drops
those first `skip` trades, so pages neither repeat nor skip a trade even when many trades share
one timestamp (an exchange's millisecond). It also holds the symbol and the range's end
(fixed at the first page: `end_ns` 0 is the time of that page). It is base64url of compact JSON:
opaque to clients, checked when it comes back.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass

from trademesh.core.domain.convert import SIDE_TO_PB
from trademesh.core.domain.model import Side
from trademesh.core.platform.errors import Unavailable
from trademesh.marketdata.v1 import marketdata_pb2 as md

__all__ = [
    "DEFAULT_TRADES",
    "MAX_TRADES",
    "PublicTrade",
    "TradesCursor",
    "TradesRead",
    "decode_token",
    "encode_token",
    "trade_to_pb",
    "trades_page",
]

# Most trades one GetTrades page answers, and the default.
MAX_TRADES = 1000
DEFAULT_TRADES = 1000
_TOKEN_VERSION = 1
# A token is a few dozen bytes; anything much longer is not one of ours.
_MAX_TOKEN_CHARS = 512


@dataclass(frozen=True, slots=True)
class PublicTrade:
    """One public trade as a venue reads it: prices and sizes decimal strings."""

    ts_event_ns: int
    trade_id: str
    price: str
    size: str
    taker_side: Side


@dataclass(frozen=True)
class TradesRead:
    """What one read of a symbol's trades from `since_ns` (up to `end_ns`) found.

    `trades`: trades of [since_ns, end_ns), oldest first, the range's first ones in order (none
    missing between since_ns and the last of them; the read may stop anywhere).
    `complete`: no trade of [since_ns, end_ns) comes after the last of `trades`.
    `scanned_to_ns`: for a read that is not complete, a time up to which `trades` holds every
    trade (an exchange that answers one window at a time: Binance's hour); 0 when the read
    says nothing beyond its last trade.
    """

    trades: Sequence[PublicTrade]
    complete: bool
    scanned_to_ns: int = 0


@dataclass(frozen=True)
class TradesCursor:
    """Where a range goes on: its symbol and end, and the next page's start."""

    symbol: str
    end_ns: int
    since_ns: int
    skip: int = 0  # trades stamped since_ns already returned


def encode_token(cursor: TradesCursor) -> str:
    body = {
        "v": _TOKEN_VERSION,
        "s": cursor.symbol,
        "e": cursor.end_ns,
        "t": cursor.since_ns,
        "n": cursor.skip,
    }
    raw = json.dumps(body, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str) -> TradesCursor:
    """The cursor of a page token; ValueError (with why) when it is not one of ours."""
    if len(token) > _MAX_TOKEN_CHARS:
        raise ValueError("is not a page token of this venue (too long)")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        body = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise ValueError("is not a page token of this venue") from exc
    if not isinstance(body, dict) or body.get("v") != _TOKEN_VERSION:
        raise ValueError("is not a page token of this venue")
    symbol, end_ns, since_ns, skip = body.get("s"), body.get("e"), body.get("t"), body.get("n")
    fields = (end_ns, since_ns, skip)
    if not isinstance(symbol, str) or not all(type(v) is int and 0 <= v < 2**63 for v in fields):
        raise ValueError("is not a page token of this venue")
    assert isinstance(end_ns, int) and isinstance(since_ns, int) and isinstance(skip, int)
    if since_ns >= end_ns or skip > MAX_TRADES * 10:
        raise ValueError("is not a page token of this venue")
    return TradesCursor(symbol, end_ns, since_ns, skip)


def trades_page(
    cursor: TradesCursor, read: TradesRead, limit: int, venue: str
) -> tuple[list[PublicTrade], TradesCursor | None]:
    """The page a read answers for a cursor, and the next page's cursor (None: the range is done)."""
    since, end = cursor.since_ns, cursor.end_ns
    fresh: list[PublicTrade] = []
    skip = cursor.skip
    for trade in read.trades:
        if trade.ts_event_ns < since or trade.ts_event_ns >= end:
            continue
        if trade.ts_event_ns == since and skip > 0:
            skip -= 1
            continue
        fresh.append(trade)
    page = fresh[:limit]
    if read.complete and len(fresh) <= limit:
        return page, None
    if len(fresh) <= limit and read.scanned_to_ns > max((t.ts_event_ns for t in page), default=since):
        # Every trade up to the read's window end is in this page: go on from there.
        nxt = TradesCursor(cursor.symbol, end, read.scanned_to_ns, 0)
    elif page:
        last = page[-1].ts_event_ns
        at_last = sum(1 for trade in page if trade.ts_event_ns == last)
        nxt = TradesCursor(cursor.symbol, end, last, at_last + (cursor.skip if last == since else 0))
    else:
        # The read returned no trade past the ones already sent and says nothing beyond them:
        # more trades share one timestamp than the exchange answers at once.
        raise Unavailable(
            f"{venue}: no progress reading {cursor.symbol}'s trades at {since} ns "
            f"(more than the exchange's page of trades at one instant)"
        )
    return page, (nxt if nxt.since_ns < end else None)


def trade_to_pb(trade: PublicTrade) -> md.HistoricalTrade:
    return md.HistoricalTrade(
        ts_event_ns=trade.ts_event_ns,
        trade=md.Trade(
            trade_id=trade.trade_id,
            price=trade.price,
            size=trade.size,
            taker_side=SIDE_TO_PB[trade.taker_side],
        ),
    )
