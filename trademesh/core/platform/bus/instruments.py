"""A venue's instrument list on the bus: its listings, delistings and changed trading rules as
events on md.{<venue>}.instruments (bus.v1.InstrumentChanges), and the readers that follow them.

Writer side (`InstrumentRelay`): whoever reads the venue's MarketData.ListInstruments (ingest,
trademesh.core.ingest.instruments) hands each answer to `poll_with`; it is diffed against the list last
published and the changes go out as one entry: LISTED (`after`), DELISTED (`before`), CHANGED
(both, with the fields that differ). Every entry holds the venue's whole list after its changes
(and the symbols delisted so far), so the stream's last entry alone is the state: a restarted
writer resumes from it (`resume_instruments`) and announces nothing again; a reader starts from
it. The first entry of an empty stream says every instrument LISTED, `initial` set. An empty
answer from a venue that listed instruments is not read as "all delisted" (a venue's glitch
would stop every strategy): it is skipped and said. The bus losing entries (a Redis restarted
empty) has the state published again at the next read, with no change.

Reader side (`InstrumentWatch`): finds every md.{*}.instruments stream (SCAN, every
`scan_every_s`), starts each from its last entry and reads on from there (XRANGE after the last
id read, every `every_s`: a venue's list changes seldom; a blocking read of many streams would
need one per slot on a cluster), and hands each entry, as a `VenueListing`, to its callback.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from redis.exceptions import RedisError

from trademesh.bus.v1 import bus_pb2 as bus
from trademesh.common.v1 import common_pb2 as common
from trademesh.core.platform.aio.retry import default_backoff, sleep_unless
from trademesh.core.platform.bus.codec import decode, encode_instruments
from trademesh.core.platform.bus.names import INSTRUMENT_STREAMS, instruments_stream, parse_instruments_stream
from trademesh.core.platform.bus.reads import read_last
from trademesh.core.platform.bus.redis import BusRedis
from trademesh.core.platform.errors import Corrupt

__all__ = [
    "KEEP",
    "InstrumentRelay",
    "InstrumentWatch",
    "VenueListing",
    "diff_instruments",
    "listing_of",
    "resume_instruments",
]

log = logging.getLogger(__name__)

Change = bus.InstrumentChange
LISTED, DELISTED, CHANGED = Change.KIND_LISTED, Change.KIND_DELISTED, Change.KIND_CHANGED
KIND_WORDS = {LISTED: "listed", DELISTED: "delisted", CHANGED: "changed"}

# Publishes a whole encoded bus Envelope to a stream.
Publish = Callable[[str, bytes], Awaitable[None]]
# The venue's whole list now (MarketData.ListInstruments).
ListAll = Callable[[], Awaitable[list[common.Instrument]]]

_FIELDS = [f.name for f in common.Instrument.DESCRIPTOR.fields]
# Entries an instrument stream keeps (MAXLEN ~): each holds the venue's whole list (thousands of
# instruments at a large exchange: hundreds of kB), and only the last is anyone's state; the
# recorder keeps every change. A read that changed something is an entry: 100 are hours of
# changes at the least, months as venues change.
KEEP = 100


def diff_instruments(
    before: Mapping[str, common.Instrument], after: Mapping[str, common.Instrument]
) -> list[bus.InstrumentChange]:
    """What changed from `before` to `after` (each by symbol), by symbol."""
    changes = []
    for symbol in sorted(before.keys() | after.keys()):
        old, new = before.get(symbol), after.get(symbol)
        if old is None and new is not None:
            changes.append(Change(kind=LISTED, symbol=symbol, after=new))
        elif new is None and old is not None:
            changes.append(Change(kind=DELISTED, symbol=symbol, before=old))
        elif old is not None and new is not None and old != new:
            fields = [name for name in _FIELDS if getattr(old, name) != getattr(new, name)]
            changes.append(Change(kind=CHANGED, symbol=symbol, before=old, after=new, fields=fields))
    return changes


class InstrumentRelay:
    """The venue's list as last published, and what a new answer changes in it."""

    def __init__(
        self,
        venue: str,
        publish: Publish,
        source: str,
        every_s: float,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self.venue = venue
        self.stream = instruments_stream(venue)
        self.every_s = every_s
        # The list last published (by symbol) and the symbols delisted so far; None: nothing yet.
        self.listed: dict[str, common.Instrument] | None = None
        self.delisted: set[str] = set()
        self.published = 0  # changes published
        self._publish = publish
        self._source = source
        self._clock = clock
        self._restate = False  # the bus lost entries: publish the state again

    def note(self, batch: bus.InstrumentChanges) -> None:
        """The state the last entry holds (from the bus at start)."""
        self.listed = {i.symbol: i for i in batch.instruments}
        self.delisted = set(batch.delisted)

    def mark_bus_loss(self, since_ns: int) -> None:
        """The bus lost entries (its server restarted empty): the state goes out again next read."""
        del since_ns
        self._restate = self.listed is not None

    async def poll_with(self, list_all: ListAll) -> list[bus.InstrumentChange]:
        """The venue's list now, diffed and published; the changes (none when nothing changed)."""
        answer = await list_all()
        now = {i.symbol: i for i in answer}
        if not now and self.listed:
            log.warning(
                "%s: the venue listed no instrument (it listed %d): not taken as all delisted",
                self.stream,
                len(self.listed),
            )
            return []
        initial = self.listed is None
        changes = diff_instruments(self.listed or {}, now)
        if not changes and not initial and not self._restate:
            return []
        delisted = {c.symbol for c in changes if c.kind == DELISTED}
        relisted = {c.symbol for c in changes if c.kind == LISTED}
        state = bus.InstrumentChanges(
            venue=self.venue,
            ts_ns=self._clock(),
            changes=changes,
            instruments=[now[symbol] for symbol in sorted(now)],
            delisted=sorted((self.delisted - relisted) | delisted),
            initial=initial,
        )
        await self._publish(self.stream, encode_instruments(self._source, state))
        self.note(state)
        self._restate = False
        self.published += len(changes)
        return changes


async def resume_instruments(redis: BusRedis, relay: InstrumentRelay, who: str = "ingest") -> None:
    """Where the last writer stopped: the last entry of md.{<venue>}.instruments holds the state."""
    envelope = await read_last(redis, relay.stream, "instruments")
    if envelope is not None:
        relay.note(envelope.instruments)
        log.info("%s %s: goes on from %d instruments listed", who, relay.stream, len(relay.listed or {}))


@dataclass(frozen=True)
class VenueListing:
    """One entry of a venue's instrument stream, as a reader takes it."""

    venue: str
    ts_ns: int
    # Every instrument listed now, by symbol.
    instruments: Mapping[str, common.Instrument]
    # Symbols delisted (and not listed again).
    delisted: frozenset[str]
    # What changed in this entry (the stream's first entry: every instrument LISTED).
    changes: tuple[bus.InstrumentChange, ...]
    initial: bool
    # Read from the stream's last entry at the reader's start (not news: the state then).
    at_start: bool = False

    def newly_delisted(self) -> list[str]:
        return [c.symbol for c in self.changes if c.kind == DELISTED]

    def newly_listed(self) -> list[str]:
        return [c.symbol for c in self.changes if c.kind == LISTED]


def listing_of(changes: bus.InstrumentChanges, at_start: bool = False) -> VenueListing:
    return VenueListing(
        changes.venue,
        changes.ts_ns,
        {i.symbol: i for i in changes.instruments},
        frozenset(changes.delisted),
        tuple(changes.changes),
        changes.initial,
        at_start,
    )


_REDIS_ERRORS = (RedisError, OSError)


class InstrumentWatch:
    """Every venue's instrument stream followed, each entry handed to `hear` (in order per venue;
    the first, at a stream's discovery, its last entry with `at_start`)."""

    def __init__(
        self,
        redis: BusRedis,
        hear: Callable[[VenueListing], None],
        every_s: float = 1.0,
        scan_every_s: float = 10.0,
        venues: Iterable[str] | None = None,
    ) -> None:
        self.redis = redis
        self.every_s = every_s
        self.scan_every_s = scan_every_s
        self.last_ids: dict[str, str] = {}  # stream -> the last entry id read
        self.listings: dict[str, VenueListing] = {}  # venue -> its latest
        self._hear = hear
        self._venues = None if venues is None else set(venues)
        self._scanned_at = -float("inf")

    def delisted(self, venue: str, symbol: str) -> bool:
        listing = self.listings.get(venue)
        return listing is not None and symbol in listing.delisted

    async def run(self, stop: asyncio.Event) -> None:
        """Read until `stop`; Redis away is said once and retried with backoff."""
        backoff, failing = default_backoff(), False
        while not stop.is_set():
            try:
                await self.read_once()
            except _REDIS_ERRORS as exc:
                if not failing:
                    log.warning("instrument streams not read (%s): retrying", exc)
                failing = True
                if await sleep_unless(stop, backoff.next()):
                    return
                continue
            if failing:
                log.info("instrument streams read again")
            failing = False
            backoff.reset()
            if await sleep_unless(stop, self.every_s):
                return

    async def read_once(self) -> int:
        """New streams found (every scan_every_s), then what each stream has after its last read
        entry; how many entries were heard."""
        heard = 0
        now = time.monotonic()
        if now - self._scanned_at >= self.scan_every_s:
            self._scanned_at = now
            async for raw in self.redis.scan_iter(match=INSTRUMENT_STREAMS, count=1000, _type="STREAM"):
                stream = raw.decode() if isinstance(raw, bytes) else raw
                venue = parse_instruments_stream(stream)
                if venue is None or stream in self.last_ids:
                    continue
                if self._venues is not None and venue not in self._venues:
                    continue
                heard += await self._start(stream)
        for stream, last in list(self.last_ids.items()):
            entries: Any = await self.redis.xrange(stream, min=f"({last}", count=100)
            for entry_id, fields in entries or []:
                self.last_ids[stream] = _text(entry_id)
                heard += self._take(stream, fields, at_start=False)
        return heard

    async def _start(self, stream: str) -> int:
        entries: Any = await self.redis.xrevrange(stream, count=1)
        self.last_ids[stream] = "0-0"
        for entry_id, fields in entries or []:
            self.last_ids[stream] = _text(entry_id)
            return self._take(stream, fields, at_start=True)
        return 0

    def _take(self, stream: str, fields: Any, at_start: bool) -> int:
        try:
            envelope = decode(fields)
        except Corrupt as exc:
            log.warning("%s: an entry that is no Envelope skipped (%s)", stream, exc)
            return 0
        if envelope.WhichOneof("body") != "instruments":
            return 0
        listing = listing_of(envelope.instruments, at_start)
        self.listings[listing.venue] = listing
        self._hear(listing)
        return 1


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
