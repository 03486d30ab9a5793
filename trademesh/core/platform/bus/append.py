"""One entry to write to the bus, and how much a stream keeps.

An Append is every writer's unit: an encoded Envelope (trademesh.core.platform.bus.codec) for one stream,
in the entry's field "d", with an approximate MAXLEN from the stream's Retention (and, for a market
stream, an approximate MINID: an age bound as well). A Publisher writes Appends in pipelined batches; a
GroupWrite writes some atomically with keys and acknowledgements (trademesh.core.platform.bus.publisher,
trademesh.core.platform.bus.group).
"""

from __future__ import annotations

from dataclasses import dataclass

from trademesh.core.platform.bus.codec import FIELD

__all__ = ["Append", "Field", "Retention"]

# What Redis takes as a field or an argument (ints are sent as their decimal text).
Field = bytes | str | int


@dataclass(frozen=True)
class Retention:
    """How much a stream keeps: entries per second at full rate, times the outage to survive.

    Enough for a consumer group to be down for the configured minutes at full rate and catch up
    without losing an entry (Redis trims with `MAXLEN ~`, whole macro-nodes at a time, so it
    keeps at least that many)."""

    entries_per_s: float
    outage_minutes: float

    @property
    def maxlen(self) -> int:
        return max(1000, int(self.entries_per_s * self.outage_minutes * 60))

    @property
    def max_age_ms(self) -> int:
        """The outage itself, as an age: an entry older than this is no consumer's to catch up on
        (a market stream trimmed by age too: at a quiet rate the count alone keeps hours or days)."""
        return max(1, int(self.outage_minutes * 60_000))


@dataclass(frozen=True, slots=True)
class Append:
    stream: str
    data: bytes  # the entry's field "d": an encoded Envelope (a journal's bare JournalEntry)
    # MAXLEN ~ maxlen (a Retention's); None: not trimmed here (the inspector's journal, trimmed by
    # its owner once read; the dead letters, kept for an operator).
    maxlen: int | None = None
    # Fields beside "d", few and small: an execution's venue point (e, p), a dead letter's origin.
    extra: tuple[tuple[bytes, Field], ...] = ()
    # Also trimmed by age: entries older than this many ms before the write go (XTRIM MINID ~,
    # once a stream a round trip; docs/bus.md "Retention"). None: by count alone.
    max_age_ms: int | None = None

    def fields(self) -> dict[bytes, Field]:
        """The entry's fields, "d" first."""
        return {FIELD: self.data, **dict(self.extra)}
