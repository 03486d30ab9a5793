"""Bus stream names, one rule each.

md.{<venue>}.<kind>  market events of one venue (kind: trades, book, candles, tickers, funding)
exec.{<venue>}       executions (order updates and fills) of one venue (bus.v1.Executions)
funding.{<venue>}    funding payments of one venue's account, with their rates (bus.v1.FundingPayments)
md.{<venue>}.instruments  a venue's listings, delistings and changed trading rules (bus.v1.InstrumentChanges)
account.{<venue>}    a venue account's balances and positions (bus.v1.AccountSnapshot)
bars.{<venue>}.<timeframe>  closed OHLCV bars of one venue (timeframe: 1s 1m 5m 15m 1h 4h 1d 1w)
regimes.<timeframe>  Overwatch's regime changes of every market on those bars (bus.v1.RegimeChanges)
screens.<name>      the Screener's results of one screen (bus.v1.Envelope.screen_result)
signals             the detector's signals (bus.v1.Signals)
position_requests.{signals}  the detector's position requests (bus.v1.PositionRequests)
decisions.{signals}  the advisor's decisions (bus.v1.Decisions)
intents.{signals}    the advisor's execution intents, for the inspector (bus.v1.Intents)
advisor.telemetry.{signals}  the advisor's telemetry events (bus.v1.AdvisorTelemetry)
risk                the inspector's risk events and state transitions (bus.v1.RiskEvents)
inspector.journal.{<instance>}  the inputs of an inspector's core, for its restart (risk.v1.JournalEntry)
dlq.<stream>         entries a consumer group gave up on (dead letters)

Hash tags, for a Redis Cluster (docs/redis-cluster.md, "Redis Cluster"): the keys of one atomic write (a
MULTI/EXEC or a Lua script) must share a hash slot, and Redis hashes only what is between a key's
first braces. A venue's streams carry its name as their tag (`{<venue>}`): ingest's writes of a
venue, fenced by the venue's lease (trademesh.core.ingest.fleet: the lease key carries the tag too), and
the bars' commit of a venue (its bars, its checkpoint, the ack of md.{<venue>}.trades) each stay in one
slot, and the venues spread over the masters. A key written in one atomic group with the acknowledgement
of an input stream S carries S's tag (`tagged(S)`: S's own name when it has no braces): the advisor's
outputs and marks carry `{signals}`. An inspector's journal carries its instance (`{<instance>}`), as its
leader lease does (trademesh.core.platform.replicas.leader), which fences its writes; the detector's
signals and position requests go together under its leader lease, which carries `{signals}` as they do.
Streams nothing combines atomically (risk) carry no tag. The names are the same on one Redis as on a
cluster.
"""

from __future__ import annotations

import re

from trademesh.core.domain.model import Channel, Timeframe
from trademesh.core.platform.errors import InvalidArgument, shown

__all__ = [
    "ACCOUNT_STREAMS",
    "ADVISOR_TELEMETRY",
    "BAR_STREAMS",
    "DECISIONS",
    "EXECUTION_STREAMS",
    "FUNDING_STREAMS",
    "INSPECTOR_JOURNALS",
    "INSTRUMENT_STREAMS",
    "INTENTS",
    "MARKET_STREAMS",
    "POSITION_REQUESTS",
    "REGIME_STREAMS",
    "RISK",
    "SCREEN_STREAMS",
    "SIGNALS",
    "SUPERVISOR_AUDIT",
    "account_stream",
    "bars_stream",
    "dead_letter_stream",
    "executions_stream",
    "funding_stream",
    "instruments_stream",
    "journal_stream",
    "market_pattern",
    "market_stream",
    "parse_account_stream",
    "parse_executions_stream",
    "parse_instruments_stream",
    "parse_journal_stream",
    "parse_market_stream",
    "regimes_stream",
    "screens_stream",
    "slot_tag",
    "tagged",
    "venue_name",
    "venue_tag",
]

# Redis patterns (SCAN MATCH, consumer discovery) of every market stream and every bar stream.
MARKET_STREAMS = "md.*"
BAR_STREAMS = "bars.*"
# ... and of every venue's executions.
EXECUTION_STREAMS = "exec.*"
# ... and of every venue's funding payments.
FUNDING_STREAMS = "funding.*"
# ... and of every venue's instrument changes (md.{<venue>}.instruments: a market stream by name,
# not a MarketData channel) and of every venue account's balances and positions.
INSTRUMENT_STREAMS = "md.{*}.instruments"
ACCOUNT_STREAMS = "account.*"
_INSTRUMENTS = "instruments"
# ... and of Overwatch's regime changes, one stream per timeframe.
REGIME_STREAMS = "regimes.*"
# ... and of the Screener's results, one stream per screen.
SCREEN_STREAMS = "screens.*"
_MARKET, _BARS, _EXECUTIONS = "md", "bars", "exec"
# ... and of every inspector instance's journal.
_JOURNAL = "inspector.journal."
INSPECTOR_JOURNALS = f"{_JOURNAL}*"
# The trading flow's streams (ARCHITECTURE.md, "Trading flow"): one stream each, every venue's.
SIGNALS = "signals"
RISK = "risk"
# The Supervisor's audit trail (docs/supervisor.md), written alone: no hash tag.
SUPERVISOR_AUDIT = "supervisor.audit"


def tagged(key: str) -> str:
    """`{<what key hashes>}`: in another key, the hash tag that puts it in `key`'s slot."""
    tag = slot_tag(key)
    if "{" in tag or "}" in tag:
        raise ValueError(f"{key!r} hashes as {tag!r}, with braces: it cannot be a hash tag")
    return f"{{{tag}}}"


def slot_tag(key: str) -> str:
    """What Redis Cluster hashes of `key`: the text of its first non-empty `{...}`, else all of it."""
    start = key.find("{")
    if start >= 0:
        end = key.find("}", start + 1)
        if end > start + 1:
            return key[start + 1 : end]
    return key


# The detector's position requests, written with its signals under its leader lease, and the
# advisor's outputs, written with the ack of their signal's entry: in the slot of `signals`.
POSITION_REQUESTS = f"position_requests.{tagged(SIGNALS)}"
DECISIONS = f"decisions.{tagged(SIGNALS)}"
INTENTS = f"intents.{tagged(SIGNALS)}"
ADVISOR_TELEMETRY = f"advisor.telemetry.{tagged(SIGNALS)}"

# An exchange's name, and after a dot an account's there (trademesh.core.domain.accounts).
_VENUE = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}(?:\.[a-z0-9][a-z0-9-]{0,23})?")


def venue_name(venue: str) -> str:
    """`venue` when it can name a venue on the bus (and so in the recorder's tables);
    InvalidArgument naming it (its first characters) otherwise."""
    if not _VENUE.fullmatch(venue):
        raise InvalidArgument.field(
            "venue",
            f"{shown(venue)} is not a venue name (1-40 of lower-case letters, digits, - _; "
            "then .<account> for an account's: 1-24 of lower-case letters, digits, -)",
        )
    return venue


def venue_tag(venue: str) -> str:
    """`{<venue>}`: the hash tag of every key of one venue (its streams, its ingest lease)."""
    return f"{{{venue_name(venue)}}}"


def _untagged(venue: str) -> str | None:
    """The venue of a stream name's venue part (`{<venue>}`); None if it is not one."""
    inner = venue.removeprefix("{").removesuffix("}")
    return inner if venue == f"{{{inner}}}" and _VENUE.fullmatch(inner) else None


def market_stream(venue: str, channel: Channel) -> str:
    return f"{_MARKET}.{venue_tag(venue)}.{channel.value}"


def market_pattern(channel: Channel, venue: str = "*") -> str:
    """The pattern of one channel's streams: of every venue by default ("md.{*}.trades")."""
    return f"{_MARKET}.{{{venue}}}.{channel.value}"


def parse_market_stream(stream: str) -> tuple[str, Channel] | None:
    """md.{<venue>}.<channel> -> (venue, channel); None for any other stream."""
    family, _, rest = stream.partition(".")
    part, _, channel = rest.rpartition(".")
    venue = _untagged(part)
    if family != _MARKET or venue is None:
        return None
    try:
        return venue, Channel(channel)
    except ValueError:
        return None


def executions_stream(venue: str) -> str:
    return f"{_EXECUTIONS}.{venue_tag(venue)}"


def funding_stream(venue: str) -> str:
    """funding.{<venue>}: in the venue's slot, so ingest writes it fenced by the venue's lease."""
    return f"funding.{venue_tag(venue)}"


def instruments_stream(venue: str) -> str:
    """md.{<venue>}.instruments: the venue's listings, delistings and changed trading rules, in its
    slot (ingest writes it fenced by the venue's lease). Among the market streams (`md.*`) by
    name, but no MarketData channel: parse_market_stream answers None for it."""
    return f"{_MARKET}.{venue_tag(venue)}.{_INSTRUMENTS}"


def parse_instruments_stream(stream: str) -> str | None:
    """md.{<venue>}.instruments -> venue; None for any other stream."""
    family, _, rest = stream.partition(".")
    part, _, kind = rest.rpartition(".")
    return _untagged(part) if family == _MARKET and kind == _INSTRUMENTS else None


def account_stream(venue: str) -> str:
    """account.{<venue>}: a venue account's balances and positions, in the venue's slot."""
    return f"account.{venue_tag(venue)}"


def parse_account_stream(stream: str) -> str | None:
    """account.{<venue>} -> venue; None for any other stream."""
    family, _, part = stream.partition(".")
    return _untagged(part) if family == "account" else None


def parse_executions_stream(stream: str) -> str | None:
    """exec.{<venue>} -> venue; None for any other stream."""
    family, _, part = stream.partition(".")
    return _untagged(part) if family == _EXECUTIONS else None


def bars_stream(timeframe: Timeframe, source: str) -> str:
    """The bars of one timeframe made from the trade stream `source` (md.{<venue>}.trades):
    bars.{<venue>}.<timeframe>, in its slot, as the bars' commit writes them with the ack of
    `source`'s entries (a source of no venue: its own name as the tag)."""
    return f"{_BARS}.{tagged(source)}.{timeframe.label}"


def regimes_stream(timeframe: Timeframe) -> str:
    """Overwatch's changes of every market on `timeframe`'s bars: regimes.<timeframe>. Written
    alone (no atomic group), so without a hash tag."""
    return f"regimes.{timeframe.label}"


def screens_stream(screen: str) -> str:
    """The Screener's results of one screen (a screen name: a-z, 0-9, _ and -): screens.<name>.
    Written alone, so without a hash tag."""
    return f"screens.{screen}"


def dead_letter_stream(stream: str) -> str:
    return f"dlq.{stream}"


def journal_stream(instance: str) -> str:
    """An inspector instance's journal: every input of its core, in order. Its instance is its hash
    tag, as of the instance's leader lease, which fences its writes
    (trademesh.core.platform.replicas.leader)."""
    return f"{_JOURNAL}{{{instance}}}"


def parse_journal_stream(stream: str) -> str | None:
    """inspector.journal.{<instance>} -> instance; None for any other stream."""
    part = stream.removeprefix(_JOURNAL)
    instance = part.removeprefix("{").removesuffix("}")
    return instance if instance and part == f"{{{instance}}}" and "{" not in instance else None
