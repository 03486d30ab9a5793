"""Appends in batches: pipelined XADD, each with its stream's approximate MAXLEN (a Retention);
a market stream is trimmed by the Retention's age too (approximate MINID, once a round trip).

One round trip writes any number of entries. Two ways to hand them over:
- add() + flush(): the caller paces the round trips (ingest's flush loop, the detector after an
  evaluation). A flush that fails is retried whole by the next one: delivery is at least once (an
  entry may be written twice, never lost), and every consumer is idempotent on natural keys;
  fenced entries (below) are written exactly once.
- write(): each caller awaits its own entry (the inspector's journal: written before its core
  acts on it). Writes made while a round trip is on the wire go together in the next (group
  commit), so under load many callers share one. They complete in the order they were made. A
  round trip that fails fails each of its writes, which may or may not have landed: the caller
  decides (nothing is retried here; the inspector does not apply an input it could not journal).

An entry added with a venue point (`once=(epoch, position)`: executions) is written at most once:
it goes in the same pipeline as a group write guarded by its point (trademesh.core.platform.bus.group),
so a retried flush, or a second writer of the same venue, repeats nothing. An entry added with a
fence (a lease and its token: ingest's venue leases) is written only while the lease holds the
token; the lease of a refused one is noted in `fenced`. Entries added in a row under one fence
go as one script call (a flush of one venue's batches: one fence check, not one per entry), a
run numbered by this publisher (trademesh.core.platform.bus.group.Numbered, on a key of its own in the
lease's slot): a retried flush whose first copy ran, or runs later, writes no run twice. The
fence alone would not stop that copy: it is ours, and a lease that lapsed while Redis was away
with nobody taking it is renewed with the same token (trademesh.core.platform.replicas.lease).

Writes that must go together with other writes (marks, checkpoints, acknowledgements) are group
writes (trademesh.core.platform.bus.group.write_group), not a Publisher's.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Sequence
from typing import Any, cast

from redis.typing import EncodableT, FieldT

from trademesh.core.platform.bus.append import Append, Field, Retention
from trademesh.core.platform.bus.commit import GroupCommit
from trademesh.core.platform.bus.group import (
    Fenced,
    GroupOutcome,
    GroupWrite,
    Numbered,
    at_most_once,
    script_call,
    script_result,
    trim_by_age,
)
from trademesh.core.platform.bus.lag import GroupLag, check_lag
from trademesh.core.platform.bus.lua import GROUP_WRITE
from trademesh.core.platform.bus.redis import BusRedis, is_cluster

__all__ = ["GroupLag", "Publisher", "Retention"]

# How long a publisher's run number outlives its last run: longer than any flush is retried.
RUN_NUMBER_TTL_S = 86_400


class Publisher:
    def __init__(self, redis: BusRedis, retention: Retention | None = None) -> None:
        self.redis = redis  # redis.asyncio.Redis
        # The MAXLEN of what add() queues; None: untrimmed (write() takes each Append's own).
        self.retention = retention
        self._queued: list[Append | GroupWrite] = []
        # The fenced entries added last in a row under one fence: one group write at the flush.
        self._run: list[Append] = []
        self._run_fence: Fenced | None = None
        self._entries = 0  # queued, in the run too
        self._runs = 0  # the last run numbered
        self._id = uuid.uuid4().hex[:12]  # names this publisher's run numbers in Redis
        self._commit = GroupCommit(self._send_appends)  # write()'s round trips
        self._script: Any = None  # GROUP_WRITE registered, made on first use
        self.entries_written = 0
        self.entries_skipped = 0
        # The leases whose fenced writes were refused (not held with their token any more):
        # the writer's to read and clear.
        self.fenced: set[str] = set()
        self.round_trips = 0

    def add(
        self,
        stream: str,
        data: bytes,
        once: tuple[int, int] | None = None,
        fence: Fenced | None = None,
        extra: tuple[tuple[bytes, Field], ...] = (),
        aged: bool = False,
        maxlen: int | None = None,
    ) -> None:
        """Queue an encoded Envelope for `stream`; written by the next flush(). With `once`
        (a venue's epoch and position), written only if the stream is not already there; with
        `fence`, only while its lease holds its token (else the lease's key goes to `fenced`);
        `extra`: the entry's fields beside "d" (a writer's signature: trademesh.core.platform.bus.signing);
        `aged`: the stream is trimmed by the retention's age too (market data: at a quiet rate the
        count alone keeps it for hours; an account's executions keep the count alone); `maxlen`:
        the stream's own bound instead of the retention's (a venue's instrument list: few, large
        entries)."""
        retention = self.retention
        append = Append(
            stream,
            data,
            maxlen if maxlen is not None else None if retention is None else retention.maxlen,
            extra,
            retention.max_age_ms if aged and retention is not None else None,
        )
        self._entries += 1
        if once is None and fence is not None:
            if self._run_fence != fence:  # a run of fenced entries: one script call for all
                self._close_run()
                self._run_fence = fence
            self._run.append(append)
            return
        self._close_run()
        if once is None:
            self._queued.append(append)
            return
        self._queued.append(dataclasses.replace(at_most_once(append, *once), fence=fence))

    def _close_run(self) -> None:
        """The open run of fenced entries, queued as one group write."""
        if self._run:
            fence = self._run_fence
            assert fence is not None
            self._runs += 1
            once = Numbered(f"{fence.key}.runs.{self._id}", self._runs, RUN_NUMBER_TTL_S)
            self._queued.append(GroupWrite(appends=tuple(self._run), guard=once, fence=fence))
            self._run = []
        self._run_fence = None

    @property
    def queued(self) -> int:
        """Entries queued (not round trips: a run of fenced entries is one script call)."""
        return self._entries

    async def flush(self) -> list[bytes | None]:
        """Write everything queued in one pipelined round trip; the new entry ids, in order
        (None for a `once` entry the stream already had)."""
        self._close_run()
        if not self._queued:
            return []
        queued, self._queued = self._queued, []
        entries, self._entries = self._entries, 0
        try:
            replies = await self._send(queued)
        except BaseException:
            self._queued[:0] = queued  # nothing is lost: the next flush writes them
            self._entries += entries
            raise
        for item, reply in zip(queued, replies, strict=True):
            if isinstance(item, GroupWrite) and item.fence is not None and _fenced(reply):
                self.fenced.add(item.fence.key)
        ids = [
            entry_id
            for item, reply in zip(queued, replies, strict=True)
            for entry_id in _entry_ids(item, reply)
        ]
        written = sum(1 for entry_id in ids if entry_id is not None)
        self.entries_written += written
        self.entries_skipped += len(ids) - written
        return ids

    async def write(self, append: Append) -> bytes:
        """Write `append` in the next round trip, shared with the writes made meanwhile; its
        entry id once it is written. Raises what the round trip raised."""
        return await self._commit.write(append)

    async def _send_appends(self, appends: list[Append]) -> list[bytes]:
        ids: list[bytes] = await self._send(appends)
        self.entries_written += len(ids)
        return ids

    async def _send(self, items: Sequence[Append | GroupWrite]) -> list[Any]:
        """One pipelined round trip (not a transaction: each item stands alone); each Append's
        entry id, each group write's raw answer."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for item in items:
                if isinstance(item, Append):
                    fields = cast("dict[FieldT, EncodableT]", item.fields())  # redis-py's wider type
                    pipe.xadd(item.stream, fields, maxlen=item.maxlen, approximate=True)
                else:
                    await self._queue_group(pipe, item)
            # A group write trims its own streams by age (the script, by Redis's clock).
            trim_by_age(pipe, [item for item in items if isinstance(item, Append)])
            replies: list[Any] = await pipe.execute()
        self.round_trips += 1
        return replies[: len(items)]

    async def _queue_group(self, pipe: Any, group: GroupWrite) -> None:
        keys, args = script_call(group)
        if is_cluster(self.redis):
            # A cluster's pipeline loads no script on the nodes it goes to: the script whole
            # (EVAL), so no node can answer NOSCRIPT after the pipeline's other writes ran.
            pipe.eval(GROUP_WRITE, len(keys), *keys, *args)
            return
        if self._script is None:
            self._script = self.redis.register_script(GROUP_WRITE)
        await self._script(keys=keys, args=args, client=pipe)

    async def check_lag(self, stream: str, aged: bool = False) -> list[GroupLag]:
        """Each consumer group's lag on `stream` (`aged`: in time too, against the retention's age);
        logs those near the trim (trademesh.core.platform.bus.lag)."""
        assert self.retention is not None, "only a trimmed stream has a trim point"
        max_age_ms = self.retention.max_age_ms if aged else None
        return await check_lag(self.redis, stream, self.retention.maxlen, max_age_ms)


def _entry_ids(item: Append | GroupWrite, reply: Any) -> list[bytes | None]:
    """The entry id of each entry `item` added (None: not written: the point, the run or the fence)."""
    if isinstance(item, Append):
        return [reply if isinstance(reply, bytes) else str(reply).encode()]
    written = script_result(reply).ids
    return list(written) if written else [None] * len(item.appends)


def _fenced(reply: Any) -> bool:
    return isinstance(reply, list) and script_result(reply).outcome is GroupOutcome.FENCED
