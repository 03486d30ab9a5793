"""Bus stream names, one rule each.

md.<venue>.<kind>    market events of one venue (kind: trades, book, candles, tickers)
exec.<venue>         executions (order updates and fills) of one venue (bus.v1.Executions)
bars.<timeframe>     closed OHLCV bars (timeframe: 1s 1m 5m 15m 1h 4h 1d)
signals             the detector's signals (bus.v1.Signals)
position_requests   the detector's position requests (bus.v1.PositionRequests)
decisions           the advisor's decisions (bus.v1.Decisions)
intents             the advisor's execution intents, for the inspector (bus.v1.Intents)
advisor.telemetry   the advisor's telemetry events (bus.v1.AdvisorTelemetry)
risk                the inspector's risk events and state transitions (bus.v1.RiskEvents)
inspector.journal.<instance>  the inputs of an inspector's core, for its restart (risk.v1.JournalEntry)
dlq.<stream>         entries a consumer group gave up on (dead letters)
"""

from __future__ import annotations

import re

from core.foundations.errors import InvalidArgument, shown
from core.foundations.model import Channel, Timeframe

__all__ = [
    "ADVISOR_TELEMETRY",
    "BAR_STREAMS",
    "DECISIONS",
    "EXECUTION_STREAMS",
    "INSPECTOR_JOURNALS",
    "INTENTS",
    "MARKET_STREAMS",
    "POSITION_REQUESTS",
    "RISK",
    "SIGNALS",
    "bars_stream",
    "dead_letter_stream",
    "executions_stream",
    "journal_stream",
    "market_pattern",
    "market_stream",
    "parse_executions_stream",
    "parse_journal_stream",
    "parse_market_stream",
    "venue_name",
]

# Redis patterns (SCAN MATCH, consumer discovery) of every market stream and every bar stream.
MARKET_STREAMS = "md.*"
BAR_STREAMS = "bars.*"
# ... and of every venue's executions.
EXECUTION_STREAMS = "exec.*"
_MARKET, _BARS, _EXECUTIONS = "md", "bars", "exec"
# ... and of every inspector instance's journal.
_JOURNAL = "inspector.journal."
INSPECTOR_JOURNALS = f"{_JOURNAL}*"
# The trading flow's streams (ARCHITECTURE.md, "Trading flow"): one stream each, every venue's.
SIGNALS = "signals"
POSITION_REQUESTS = "position_requests"
DECISIONS = "decisions"
INTENTS = "intents"
ADVISOR_TELEMETRY = "advisor.telemetry"
RISK = "risk"

_VENUE = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")


def venue_name(venue: str) -> str:
    """`venue` when it can name a venue on the bus (and so in the recorder's tables);
    InvalidArgument naming it (its first characters) otherwise."""
    if not _VENUE.fullmatch(venue):
        raise InvalidArgument.field(
            "venue", f"{shown(venue)} is not a venue name (1-40 of lower-case letters, digits, - _)"
        )
    return venue


def market_stream(venue: str, channel: Channel) -> str:
    return f"{_MARKET}.{venue_name(venue)}.{channel.value}"


def market_pattern(channel: Channel, venue: str = "*") -> str:
    """The pattern of one channel's streams: of every venue by default ("md.*.trades")."""
    return f"{_MARKET}.{venue}.{channel.value}"


def parse_market_stream(stream: str) -> tuple[str, Channel] | None:
    """md.<venue>.<channel> -> (venue, channel); None for any other stream."""
    family, _, rest = stream.partition(".")
    venue, _, channel = rest.rpartition(".")
    if family != _MARKET or not venue:
        return None
    try:
        return venue, Channel(channel)
    except ValueError:
        return None


def executions_stream(venue: str) -> str:
    return f"{_EXECUTIONS}.{venue_name(venue)}"


def parse_executions_stream(stream: str) -> str | None:
    """exec.<venue> -> venue; None for any other stream."""
    family, _, venue = stream.partition(".")
    return venue if family == _EXECUTIONS and _VENUE.fullmatch(venue) else None


def bars_stream(timeframe: Timeframe) -> str:
    return f"{_BARS}.{timeframe.label}"


def dead_letter_stream(stream: str) -> str:
    return f"dlq.{stream}"


def journal_stream(instance: str) -> str:
    """An inspector instance's journal: every input of its core, in order."""
    return f"{_JOURNAL}{instance}"


def parse_journal_stream(stream: str) -> str | None:
    """inspector.journal.<instance> -> instance; None for any other stream."""
    instance = stream.removeprefix(_JOURNAL)
    return instance if instance and instance != stream else None
