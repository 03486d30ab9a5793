"""The engines of the venue streams this replica holds, each behind its lock, each change
committed with its checkpoint, fenced by the stream's lease.

The consumer's handler and the repairer both go through here. A call that fails (Redis
gone, a commit not confirmed) drops the engine: the next call reloads it from the last
checkpoint, so memory never runs ahead of what Redis holds. A stream is worked on only between
`adopt` (its lease taken: the fence its commits carry) and `drop` (given back or lost); a commit
its lease refuses (another replica holds the stream now) raises StreamLost and marks the stream
`lost` for the replica's balancer (trademesh.core.bars.fleet).
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from redis.exceptions import ResponseError

from trademesh.bus.v1 import bus_pb2 as bus
from trademesh.core.bars import metrics
from trademesh.core.bars.checkpoint import CheckpointStore, StreamLost
from trademesh.core.bars.engine import EntryId, VenueBars, entry_position
from trademesh.core.bars.spans import RepairTask
from trademesh.core.bars.watermark import WatermarkRules
from trademesh.core.platform.bus.codec import decode_entry
from trademesh.core.platform.bus.consumer import Entry
from trademesh.core.platform.bus.group import Fenced
from trademesh.core.platform.bus.names import parse_market_stream
from trademesh.core.platform.bus.reads import read_back, read_range
from trademesh.core.platform.errors import Corrupt, NotYet

__all__ = ["Aggregator", "venue_of"]

log = logging.getLogger(__name__)


# Events per commit at most (more only when one entry holds more).
_CHUNK_EVENTS = 10_000
# Entries read back a page when looking for the last given-up entry with market events.
_SCAN = 100


def _chunks(entries: list[Entry]) -> Iterator[list[Entry]]:
    chunk: list[Entry] = []
    events = 0
    for entry in entries:
        chunk.append(entry)
        events += len(entry[1].market.events)
        if events >= _CHUNK_EVENTS:
            yield chunk
            chunk, events = [], 0
    if chunk:
        yield chunk


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _has_market_events(stream: str, fields: dict[bytes, bytes]) -> bool:
    """Whether an entry's trades (or gap notices) could change bars: a readable Envelope with
    market events."""
    try:
        envelope = decode_entry(stream, fields)
    except Corrupt:
        return False
    return envelope.WhichOneof("body") == "market" and len(envelope.market.events) > 0


def venue_of(stream: str) -> str:
    """md.<venue>.trades -> <venue>; the stream's own name for any other stream."""
    parsed = parse_market_stream(stream)
    return stream if parsed is None else parsed[0]


class Aggregator:
    def __init__(self, store: CheckpointStore, rules: WatermarkRules) -> None:
        self.store = store
        self.rules = rules
        self.engines: dict[str, VenueBars] = {}
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        # Set when bars closed: repairs may have come due.
        self.closed_bars = asyncio.Event()
        # Per stream, after a failed call: the first entry not applied.
        self._resume_at: dict[str, EntryId] = {}
        # The streams held, each with the fence of its lease.
        self.fences: dict[str, Fenced] = {}
        # Streams whose commit was fenced since the balancer last looked (take_lost).
        self._lost: set[str] = set()

    async def adopt(self, stream: str, fence: Fenced) -> None:
        """The stream's lease is ours: its engine from its checkpoint, its commits fenced."""
        async with self._locks[stream]:
            self.fences[stream] = fence
            self.engines.pop(stream, None)
            self._resume_at.pop(stream, None)
            await self._engine(stream)

    async def drop(self, stream: str) -> None:
        """The stream given back or lost: its state forgotten (the checkpoint has it)."""
        async with self._locks[stream]:
            self.fences.pop(stream, None)
            self.engines.pop(stream, None)
            self._resume_at.pop(stream, None)
        metrics.REPAIRS_PENDING.labels(venue_of(stream)).set(0)

    def take_lost(self) -> set[str]:
        """The streams whose commits were fenced since the last call."""
        lost, self._lost = self._lost, set()
        return lost

    async def handle(self, stream: str, entries: list[Entry]) -> None:
        """The consumer group's handler: returns once the entries' effect is committed, with
        the entries acknowledged in the same commit (the runner's `handler_acks`).

        A long batch (a catch-up) is committed in chunks, so a crash in it loses little work.
        After a failure, entries past the failed one are refused (they stay pending) until it
        is applied: the runner retries failed entries one by one and moves on, and applying a
        later entry first would make the earlier one look applied already; unless the checkpoint
        has it (the failed commit was done, its answer lost). So are entries behind an earlier one
        pending in the group; an earlier one acknowledged unapplied (another consumer of the group
        dead-lettered it) is a gap (_check_skipped)."""
        resume = self._resume_at.get(stream)
        if resume is not None and entry_position(entries[0][0]) > resume:
            if await self._applied(stream, resume):
                # The failed call's commit was done after all (its answer was lost: a Redis stopped
                # past the socket's deadline ran it when it went on): the entry is applied and
                # acknowledged, and never comes again. Waiting for it refused every later entry
                # until the runner dead-lettered them, their trades missing from the bars.
                log.info(
                    "bars: %s: entry %d-%d was applied after all (a commit's answer lost)", stream, *resume
                )
            elif not await self._on_bus(stream, resume):
                # The bus lost it (Redis restarted empty, or trimmed it): nothing left to wait for;
                # the loss is a gap the ingest's markers (or the missing checkpoint) report.
                log.warning("bars: %s: entry %d-%d is no longer on the bus; going on", stream, *resume)
            elif await self._pending(stream, resume):
                raise NotYet(f"{stream}: waiting for entry {resume[0]}-{resume[1]} to be applied first")
            else:
                # Given up (dead-lettered: acknowledged, never applied): its trades are a gap.
                log.warning(
                    "bars: %s: entry %d-%d was given up; its bars are repaired as a gap", stream, *resume
                )
                await self._given_up(stream, resume)
            del self._resume_at[stream]
            resume = None
        await self._check_skipped(stream, entry_position(entries[0][0]))
        for chunk in _chunks(entries):
            try:
                await self._apply(stream, chunk)
            except BaseException:
                self._resume_at.setdefault(stream, entry_position(chunk[0][0]))
                raise
        if resume is not None and entry_position(entries[-1][0]) >= resume:
            del self._resume_at[stream]

    async def _check_skipped(self, stream: str, first: EntryId) -> None:
        """The entries on the bus after the last one applied and before `first` (the batch's
        first), which the runner did not hand over. Mostly none: one XRANGE, empty, says `first`
        is the next entry. One pending in the group (delivered to a consumer, not applied: one a
        replica read after it lost the stream, paused past its lease, which the next holder did
        not get) is waited for (NotYet, checked again at every call): applying `first` would make
        it look applied; it is reclaimed (idle) and applied first. None pending: given up
        (_skipped_given_up). Entries no longer on the bus (trimmed) are nothing to wait for."""
        async with self._locks[stream]:
            position = (await self._engine(stream)).position
        if first <= position:
            return  # applied already: the engine skips it
        skipped = await self._next_on_bus(stream, position, first)
        if skipped is None:
            return
        low = "{}-{}".format(*skipped)
        while True:
            found = await self._pending_ids(stream, low, "({}-{}".format(*first))
            if found is None:
                return  # no group (any more): nothing pending in it, nothing it gave up
            if not found:
                break
            if await self._on_bus(stream, found[0]):
                raise NotYet(f"{stream}: entry {found[0][0]}-{found[0][1]} is pending in the group: waiting")
            low = "({}-{}".format(*found[0])  # deleted from the stream: nothing to wait for
        await self._skipped_given_up(stream, first)

    async def _skipped_given_up(self, stream: str, first: EntryId) -> None:
        """Entries after the last one applied and before `first`, on the bus, none pending in the
        group: acknowledged, never applied, so given up (dead-lettered by another consumer of the
        group, a replica that held the stream before; or by this one's runner after calls that
        failed before applying anything: a failed commit's entry is _resume_at's): their trades
        are a gap from the last of them with market events (_given_up). Those
        without any (unreadable ones the runner dead-letters before the handler sees them, other
        bodies) change no bar. Not on a fresh start (no checkpoint): the entries before its first
        were never its engine's (a group made at '$' or at a later id, a checkpoint lost), and
        each symbol's first trade is a seam anyway. The engine is loaded again from the
        checkpoint before: one loaded before a commit whose answer was lost ran (_applied) would
        take that commit's entries for given up."""
        async with self._locks[stream]:
            engine = await self._engine(stream)
        if engine.fresh:
            return
        lost = await self._last_market_entry(stream, engine.position, first)
        if lost is None:
            return
        async with self._locks[stream]:
            self.engines.pop(stream, None)
            engine = await self._engine(stream)
        if engine.fresh or lost <= engine.position:
            return
        log.warning(
            "bars: %s: entry %d-%d was given up (acknowledged, not applied); its bars are repaired as a gap",
            stream,
            *lost,
        )
        await self._given_up(stream, lost)

    async def _next_on_bus(self, stream: str, position: EntryId, first: EntryId) -> EntryId | None:
        """The first entry on the bus after `position` and before `first`; None when there is none."""
        low, high = "({}-{}".format(*position), "({}-{}".format(*first)
        found = await read_range(self.store.redis, stream, min=low, max=high, count=1)
        return entry_position(_text(found[0][0])) if found else None

    async def _last_market_entry(self, stream: str, position: EntryId, first: EntryId) -> EntryId | None:
        """The last entry on the bus after `position` and before `first` with market events (one a
        page of _SCAN entries read back from `first`); None when none has any."""
        low, high = "({}-{}".format(*position), "({}-{}".format(*first)
        while True:
            page = await read_back(self.store.redis, stream, max=high, min=low, count=_SCAN)
            for entry_id, fields in page:
                if _has_market_events(stream, fields):
                    return entry_position(_text(entry_id))
            if len(page) < _SCAN:
                return None
            high = "(" + _text(page[-1][0])

    async def _pending_ids(self, stream: str, low: str, high: str) -> list[EntryId] | None:
        """The first entry pending in the group from `low` to `high` (XPENDING's bounds), as a list
        of none or one; None when the stream has no group (yet, or any more)."""
        try:
            found: list[dict[str, Any]] = await self.store.redis.xpending_range(
                stream, self.store.group, low, high, 1
            )
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            return None
        return [entry_position(_text(item["message_id"])) for item in found]

    async def _applied(self, stream: str, position: EntryId) -> bool:
        """Whether the checkpoint as Redis holds it now has applied the entry at `position`: read
        again each time (not the engine loaded after the failure, which may predate the lost
        commit's run)."""
        async with self._locks[stream]:
            self.engines.pop(stream, None)
            return (await self._engine(stream)).position >= position

    async def _pending(self, stream: str, position: EntryId) -> bool:
        """Whether the entry at `position` may still be applied: pending in the group (delivered,
        not acknowledged), or no group to tell. Not pending: acknowledged unapplied (dead-lettered)."""
        entry_id = "{}-{}".format(*position)
        found = await self._pending_ids(stream, entry_id, entry_id)
        return True if found is None else bool(found)

    async def _given_up(self, stream: str, position: EntryId) -> None:
        """The entry at `position` given up: a gap in every symbol's bars (VenueBars.entry_lost)."""
        entry_id = "{}-{}".format(*position)
        async with self._locks[stream]:
            engine = await self._engine(stream)
            try:
                output = engine.entry_lost(entry_id)
                await self.store.commit(stream, engine, output.bars, fence=self.fences[stream])
            except BaseException as exc:
                self._failed(stream, exc)
                raise
        metrics.record(engine.venue, output, engine.max_ts_ns)

    async def _on_bus(self, stream: str, position: EntryId) -> bool:
        entry_id = f"{position[0]}-{position[1]}"
        return bool(await read_range(self.store.redis, stream, min=entry_id, max=entry_id, count=1))

    async def _apply(self, stream: str, entries: list[Entry]) -> None:
        async with self._locks[stream]:
            engine = await self._engine(stream)
            try:
                output = engine.process(entries)
                ids = [entry_id for entry_id, _ in entries]
                await self.store.commit(stream, engine, output.bars, ids, self.fences[stream])
            except BaseException as exc:
                self._failed(stream, exc)
                raise
        metrics.record(engine.venue, output, engine.max_ts_ns)
        if output.bars:
            self.closed_bars.set()

    async def repairs_due(self) -> dict[str, list[RepairTask]]:
        found: dict[str, list[RepairTask]] = {}
        for stream in list(self.engines):
            async with self._locks[stream]:
                engine = self.engines.get(stream)
                tasks = [] if engine is None else engine.repairs_due()
            metrics.REPAIRS_PENDING.labels(venue_of(stream)).set(len(tasks))
            if tasks:
                found[stream] = tasks
        return found

    async def repaired(self, stream: str, task: RepairTask, bars: list[bus.Bar]) -> None:
        """Publish the venue's bars for `task` and record it done, in one commit (nothing when the
        stream is no longer held: its next holder repairs it)."""
        async with self._locks[stream]:
            if stream not in self.fences:
                return
            engine = await self._engine(stream)
            try:
                engine.repaired(task)
                timeframes = {task.timeframe: bars} if bars else {}
                await self.store.commit(stream, engine, timeframes, fence=self.fences[stream])
            except StreamLost as exc:
                self._failed(stream, exc)
                log.warning("bars: %s", exc)
                return
            except BaseException as exc:
                self._failed(stream, exc)
                raise
        metrics.BARS.labels(task.timeframe.label, "true").inc(len(bars))
        log.info(
            "bars: repaired %d %s bars of %s %s from %d to %d",
            len(bars),
            task.timeframe.label,
            engine.venue,
            task.symbol,
            task.first_open_ns,
            task.end_ns,
        )

    def _failed(self, stream: str, exc: BaseException) -> None:
        self.engines.pop(stream, None)
        if isinstance(exc, StreamLost):
            self._lost.add(stream)

    async def _engine(self, stream: str) -> VenueBars:
        if stream not in self.fences:
            raise StreamLost(f"{stream}: not held by this bars replica")
        engine = self.engines.get(stream)
        if engine is None:
            engine = self.engines[stream] = await self._load(stream)
        return engine

    async def _load(self, stream: str) -> VenueBars:
        """The engine as last committed; a fresh one (its first bars are seams) when there is none."""
        venue = venue_of(stream)
        try:
            engine = await self.store.load(stream, venue, self.rules)
        except Corrupt as exc:
            log.error("bars: %s; starting %s afresh", exc, stream)
            await self.store.discard(stream)
            return VenueBars(venue, self.rules)
        if engine is None:
            log.info("bars: no checkpoint for %s: starting fresh (first bars are seams)", stream)
            return VenueBars(venue, self.rules)
        return engine
