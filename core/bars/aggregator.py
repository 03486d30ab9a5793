"""The engines of the venue streams this replica holds, each behind its lock, each change
committed with its checkpoint, fenced by the stream's lease.

The consumer's handler and the repairer both go through here. A call that fails (Redis
gone, a commit not confirmed) drops the engine: the next call reloads it from the last
checkpoint, so memory never runs ahead of what Redis holds. A stream is worked on only between
`adopt` (its lease taken: the fence its commits carry) and `drop` (given back or lost); a commit
its lease refuses (another replica holds the stream now) raises StreamLost and marks the stream
`lost` for the replica's balancer (core.bars.fleet).
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from redis.exceptions import ResponseError

from core.bars import metrics
from core.bars.checkpoint import CheckpointStore, StreamLost
from core.bars.engine import EntryId, VenueBars, entry_position
from core.bars.spans import RepairTask
from core.bars.watermark import WatermarkRules
from core.foundations.bus.consumer import Entry
from core.foundations.bus.group import Fenced
from core.foundations.bus.names import parse_market_stream
from core.foundations.bus.reads import read_range
from core.foundations.errors import Corrupt, Unavailable
from trademesh.bus.v1 import bus_pb2 as bus

__all__ = ["Aggregator", "venue_of"]

log = logging.getLogger(__name__)


# Events per commit at most (more only when one entry holds more).
_CHUNK_EVENTS = 10_000


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
        later entry first would make the earlier one look applied already. So are entries behind
        an earlier one pending in the group (_pending_before)."""
        resume = self._resume_at.get(stream)
        if resume is not None and entry_position(entries[0][0]) > resume:
            if await self._on_bus(stream, resume):
                raise Unavailable(f"{stream}: waiting for entry {resume[0]}-{resume[1]} to be applied first")
            # The bus lost it (Redis restarted empty, or trimmed it): nothing left to wait for;
            # the loss is a gap the ingest's markers (or the missing checkpoint) report.
            log.warning("bars: %s: entry %d-%d is no longer on the bus; going on", stream, *resume)
            del self._resume_at[stream]
            resume = None
        behind = await self._pending_before(stream, entry_position(entries[0][0]))
        if behind is not None:  # checked again at every call: it may be dead-lettered instead
            raise Unavailable(f"{stream}: entry {behind[0]}-{behind[1]} is pending in the group: waiting")
        for chunk in _chunks(entries):
            try:
                await self._apply(stream, chunk)
            except BaseException:
                self._resume_at.setdefault(stream, entry_position(chunk[0][0]))
                raise
        if resume is not None and entry_position(entries[-1][0]) >= resume:
            del self._resume_at[stream]

    async def _pending_before(self, stream: str, first: EntryId) -> EntryId | None:
        """An entry after the last one applied and before `first` that is pending in the group
        (delivered to a consumer, not applied): one a replica read after it lost the stream (paused
        past its lease), which the next holder did not get. Applying `first` would make it look
        applied; it is reclaimed (idle) and applied first. None when there is none (or it is
        no longer on the bus: trimmed, nothing to wait for)."""
        async with self._locks[stream]:
            position = (await self._engine(stream)).position
        if first <= position:
            return None  # applied already: the engine skips it
        low, high = "({}-{}".format(*position), "({}-{}".format(*first)
        try:
            found: list[dict[str, Any]] = await self.store.redis.xpending_range(
                stream, self.store.group, low, high, 1
            )
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            return None  # no group (yet, or any more): nothing pending in it
        if not found:
            return None
        pending = entry_position(_text(found[0]["message_id"]))
        return pending if await self._on_bus(stream, pending) else None

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
