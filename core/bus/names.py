"""Bus stream names, one rule each.

md.<venue>.<kind>    market events of one venue (kind: trades, book, candles, tickers)
bars.<timeframe>     closed OHLCV bars (timeframe: 1s 1m 5m 15m 1h 4h 1d)
dlq.<stream>         entries a consumer group gave up on (dead letters)
"""

from __future__ import annotations

import re

from core.errors import InvalidArgument
from core.model import Channel, Timeframe

__all__ = ["bars_stream", "dead_letter_stream", "market_stream"]

_VENUE = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")


def market_stream(venue: str, channel: Channel) -> str:
    if not _VENUE.fullmatch(venue):
        raise InvalidArgument.field(
            "venue", f"{venue!r} is not a venue name (lower-case letters, digits, - _)"
        )
    return f"md.{venue}.{channel.value}"


def bars_stream(timeframe: Timeframe) -> str:
    return f"bars.{timeframe.label}"


def dead_letter_stream(stream: str) -> str:
    return f"dlq.{stream}"
