"""The one consumer-group runner every bus consumer uses (recorder, bars, bridge, ...).

- On start it creates its groups if needed and reads its own pending entries first (what
  it had read but not acknowledged before it stopped), then new ones.
- It reclaims entries left idle by dead consumers (XAUTOCLAIM, `claim_idle_ms`).
- It acknowledges only after the handler returns: the handler returns once the effect is
  durable (committed), so a crash in between redelivers, never loses. The acknowledgements go
  with the next read, in its round trip (XACKs then XREADGROUP, pipelined): one round trip a
  read, not two; at a stop, and before reading its own pending entries, they go at once. A
  handler may instead acknowledge its entries itself, in the transaction that makes their
  effect durable (`handler_acks`: the advisor, whose decisions finish after its handler
  returned).
- A batch whose handler fails is retried entry by entry, so one bad entry cannot stop the
  group; an entry delivered `max_deliveries` times (or that is not an Envelope at all:
  trademesh.core.platform.bus.codec.decode_entry) goes to `dlq.<stream>` with the reason, and is acknowledged.
  A refusal for now (`NotYet`: the handler waits for something else first, e.g. the bars for an
  earlier entry) is no failed delivery: the entry and those after it in the batch stay pending,
  their delivery counts as before this delivery, and are taken again once idle `claim_idle_ms`.
- It exports pending and lag per stream (Prometheus) for dashboards and alerts.
- A consumer that acts only on entries from writers it trusts (the inspector: who may write the
  trading streams, trademesh.core.platform.bus.signing) gives `admit`: it sees each entry's raw fields
  before it is decoded; an entry it refuses never reaches the handler, and is acknowledged (a
  refusal is final: redelivering it would refuse it again).
- On a Redis Cluster, where one XREADGROUP takes streams of one hash slot, it reads each slot's
  streams apart, all at once: without blocking first (what came, handled as one read); when
  nothing came, blocking, handling whichever answers first (the others' reads stay under way
  for the next rounds: an idle slot delays no busy one).
- While a handler runs, `REDELIVERED` says whether its entries may have been delivered before
  (its own pending ones, reclaimed ones, a failed batch retried): False only for entries read
  new (">"), which no consumer of the group has had. A handler that must not act twice on an
  entry checks its own records only for those.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, cast

import redis.asyncio as aioredis
from prometheus_client import Counter, Gauge
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from trademesh.bus.v1 import bus_pb2 as bus
from trademesh.core.platform.aio.backoff import Backoff
from trademesh.core.platform.aio.retry import sleep_unless
from trademesh.core.platform.bus.append import Append
from trademesh.core.platform.bus.codec import FIELD, decode_entry
from trademesh.core.platform.bus.names import dead_letter_stream
from trademesh.core.platform.bus.publisher import Publisher
from trademesh.core.platform.bus.reads import RawEntry, StreamReply
from trademesh.core.platform.bus.redis import BusRedis, is_cluster, slot_groups
from trademesh.core.platform.errors import Corrupt, NotYet
from trademesh.core.platform.logs.setup import bind_log_fields

__all__ = [
    "REDELIVERED",
    "Admit",
    "ConsumerOptions",
    "Entry",
    "GroupConsumer",
    "Handler",
    "ReadHandler",
    "linger_wait",
]

log = logging.getLogger(__name__)

Entry = tuple[str, bus.Envelope]  # (entry id, envelope)
# Called with one stream's entries, in order; returns once their effect is durable.
Handler = Callable[[str, list[Entry]], Awaitable[None]]
# Optional: called with every stream's entries of one read at once (one transaction for all,
# instead of one per stream); when it fails, the streams are handled one by one as usual.
ReadHandler = Callable[[list[tuple[str, list[Entry]]]], Awaitable[None]]
# Optional: called with each entry's stream, id and raw fields before its handler sees it; False
# refuses it (the hook says and counts why; the runner acknowledges it and hands it to nobody).
Admit = Callable[[str, str, dict[bytes, bytes]], Awaitable[bool]]

# True unless the entries being handled were read new (">"): see the module's docstring.
REDELIVERED: contextvars.ContextVar[bool] = contextvars.ContextVar("redelivered", default=True)

PENDING = Gauge(
    "trademesh_bus_pending", "Entries delivered to a group and not yet acknowledged.", ["stream", "group"]
)
LAG = Gauge("trademesh_bus_lag", "Entries not yet delivered to a group.", ["stream", "group"])
DEAD_LETTERS = Counter(
    "trademesh_bus_dead_letters_total", "Entries moved to a dead-letter stream.", ["stream", "group"]
)


@dataclass(frozen=True)
class ConsumerOptions:
    group: str
    consumer: str
    # Streams to read, named; more are found by `patterns` (e.g. "md.{*}.trades"): a venue's
    # streams appear when ingest first writes them, and are read from their first entry.
    streams: tuple[str, ...] = ()
    patterns: tuple[str, ...] = ()
    batch: int = 500
    block_ms: int = 500
    claim_idle_ms: int = 30_000
    max_deliveries: int = 5
    # Where a new group starts: "0" from the stream's first entry, "$" only what comes next
    # (a live consumer that has no use for the backlog).
    start_id: str = "0"
    # How often to look for new streams matching `patterns`.
    discover_s: float = 2.0
    # The handler acknowledges its entries itself (with their effect, in one transaction);
    # the consumer acknowledges only what it dead-letters.
    handler_acks: bool = False
    # After a read that did not fill `batch` on any stream, wait before the next: while entries
    # keep coming, fewer and larger reads, for a consumer whose cost is per read (the recorder's
    # transaction). 0 reads at once. The wait is `linger_wait`: reads at least this far apart,
    # and a wait at least as long as the read's handling took (up to this): see there.
    linger_ms: float = 0.0
    # Which entries the handler may act on (see Admit); None: all of them.
    admit: Admit | None = None


def linger_wait(linger_s: float, handled_s: float) -> float:
    """Seconds to wait after a read short of a batch whose handling took `handled_s`.

    `max(linger - handled, min(handled, linger))`: the next read comes at least `linger` after
    this one came back (a quick handler waits the rest of the linger, not all of it: an entry
    waits at most about one linger for its read), and after a wait at least as long as the
    handling took, up to a whole linger (a handler busy for longer than half the linger, as the
    recorder's transaction at a high rate, still gathers as much as a whole linger after it:
    its reads do not come more often as their handling grows).
    """
    return max(linger_s - handled_s, min(handled_s, linger_s))


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class GroupConsumer:
    def __init__(
        self,
        redis: BusRedis,
        options: ConsumerOptions,
        handle: Handler,
        handle_read: ReadHandler | None = None,
    ) -> None:
        self.redis = redis  # redis.asyncio.Redis
        self.options = options
        self.handle = handle
        self.handle_read = handle_read
        self.dead_letters = Publisher(redis)  # untrimmed: dead letters wait for an operator
        self.processed = 0
        self.dead_lettered = 0
        self.streams: list[str] = list(options.streams)
        self._discovered_at = -1e9
        self._reclaimed_at = -1e9
        self._reported_at = -1e9
        # A cluster's reads under way, one per slot's streams (_read_slots).
        self._reads: dict[tuple[str, ...], asyncio.Task[Any]] = {}
        # Entries handled and not acknowledged yet: sent with the next read (_owe, _flush_acks).
        self._owed: dict[str, list[str]] = {}
        # One Redis's new entries are read on a connection of their own (_acked_read).
        self._connection: Any = None

    async def run(self, stop: asyncio.Event) -> None:
        """Until `stop`; rides out Redis outages (reconnects, re-creates lost groups)."""
        bind_log_fields(group=self.options.group)
        backoff = Backoff(0.1, 5.0)
        while not stop.is_set():
            try:
                await self.start()
                while not stop.is_set():
                    await self.step()
                    backoff.reset()
                await self._finish_reads()
                await self._flush_acks()
            except (RedisConnectionError, RedisTimeoutError) as exc:
                delay = backoff.next()
                log.warning(
                    "bus %s: Redis unreachable (%s); retrying in %.1f s", self.options.group, exc, delay
                )
                await sleep_unless(stop, delay)
            finally:
                self._drop_reads()
                await self._release_connection()

    async def start(self) -> None:
        """Groups, then this consumer's own pending entries (read before, never acknowledged)."""
        await self._flush_acks()  # what was handled before an outage: not handled again
        await self.discover()
        await self.ensure_groups()
        await self.read_own_pending()

    async def step(self) -> None:
        """One round: new streams, entries of dead consumers, new entries, metrics."""
        now = time.monotonic()
        if now - self._discovered_at >= self.options.discover_s and await self.discover():
            await self.ensure_groups()
        if now - self._reclaimed_at >= self.options.claim_idle_ms / 2000:
            self._reclaimed_at = now
            await self._flush_acks()  # not its own handled entries taken for idle ones
            await self.reclaim_idle()
        await self.read_new()
        if now - self._reported_at >= 1.0:
            self._reported_at = now
            await self.report()

    async def discover(self) -> bool:
        """Add the streams matching `patterns`; True when one was new."""
        self._discovered_at = time.monotonic()
        found = False
        for pattern in self.options.patterns:
            async for name in self.redis.scan_iter(match=pattern, count=1000, _type="STREAM"):
                stream = _text(name)
                if stream not in self.streams:
                    self.streams.append(stream)
                    found = True
        return found

    async def _prune(self) -> None:
        """Drop discovered streams that no longer exist (named ones are kept: they are made again)."""
        kept = []
        for stream in self.streams:
            if stream in self.options.streams or await self.redis.exists(stream):
                kept.append(stream)
        self.streams = kept

    async def ensure_groups(self) -> None:
        for stream in self.streams:
            try:
                await self.redis.xgroup_create(
                    stream, self.options.group, id=self.options.start_id, mkstream=True
                )
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    async def read_own_pending(self) -> None:
        """What this consumer read but never acknowledged (it stopped before the effect was durable)."""
        for stream in self.streams:
            while True:
                answer = cast(
                    StreamReply,
                    await self.redis.xreadgroup(
                        self.options.group, self.options.consumer, {stream: "0"}, count=self.options.batch
                    ),
                )
                entries = answer[0][1] if answer else []
                if not entries:
                    break
                await self._process(stream, entries)
                await self._flush_acks()  # the next read from "0" starts past them

    async def reclaim_idle(self) -> None:
        """Entries a dead consumer read and left: take them over and process them."""
        for stream in self.streams:
            start = "0-0"
            while True:
                reply = await self.redis.xautoclaim(
                    stream,
                    self.options.group,
                    self.options.consumer,
                    min_idle_time=self.options.claim_idle_ms,
                    start_id=start,
                    count=self.options.batch,
                )
                start, entries = _text(reply[0]), [e for e in reply[1] if e[1] is not None]
                if entries:
                    await self._process(stream, entries)
                if start == "0-0":
                    break

    async def read_new(self) -> None:
        if not self.streams:
            await asyncio.sleep(self.options.block_ms / 1000)
            return
        try:
            answer = await self._read_new()
        except ResponseError as exc:
            if "NOGROUP" not in str(exc) and "UNBLOCKED" not in str(exc):
                raise
            # A stream was deleted (or Redis restarted empty) under us: forget discovered
            # streams that are gone, make the group again on the rest.
            log.warning("bus %s: %s; checking its streams", self.options.group, exc)
            await self._prune()
            await self.ensure_groups()
            return
        came_back = time.monotonic()
        reads = [(_text(stream), entries) for stream, entries in answer or []]
        await self._handle_new(reads)
        if reads and self.options.linger_ms and all(len(e) < self.options.batch for _, e in reads):
            await asyncio.sleep(linger_wait(self.options.linger_ms / 1000, time.monotonic() - came_back))

    async def _handle_new(self, reads: list[tuple[str, list[tuple[Any, dict[bytes, bytes]]]]]) -> None:
        """Entries read new (">"): no consumer of the group has had them."""
        token = REDELIVERED.set(False)
        try:
            await self._handle_reads(reads)
        finally:
            REDELIVERED.reset(token)

    async def _handle_reads(self, reads: list[tuple[str, list[tuple[Any, dict[bytes, bytes]]]]]) -> None:
        if self.options.admit is not None:
            admitted = [(stream, await self._admitted(stream, raw)) for stream, raw in reads]
            reads = [(stream, raw) for stream, raw in admitted if raw]
        if self.handle_read is not None and len(reads) > 1 and await self._process_read(reads):
            return
        if len(reads) == 1:
            self._owe(reads[0][0], await self._handled(*reads[0]))
            return
        # Each stream handled in turn, its entries acknowledged with the next read (an entry is
        # still acknowledged only after its handler returned).
        for stream, entries in reads:
            self._owe(stream, await self._handled(stream, entries))

    async def _read_new(self) -> Any:
        groups = slot_groups(self.redis, self.streams)
        if len(groups) == 1 and not self._reads and not is_cluster(self.redis):
            return await self._acked_read(groups[0])
        await self._flush_acks()  # a cluster's XACKs go to their slots' nodes, apart
        if len(groups) == 1 and not self._reads:
            return await self._xreadgroup(groups[0])
        return await self._read_slots(groups)

    async def _acked_read(self, streams: list[str]) -> list[tuple[bytes, list[RawEntry]]]:
        """The owed XACKs and a blocking XREADGROUP in one round trip (Redis runs a connection's
        commands in order: the read blocks after the XACKs are done), sent and read on this
        consumer's own connection: redis-py's pipeline and command layers cost ~50 µs more a
        round, and the bridge and the recorder read 100-200 times a second."""
        options = self.options
        commands: list[tuple[Any, ...]] = [
            ("XACK", stream, options.group, *ids) for stream, ids in self._owed.items()
        ]
        commands.append(
            ("XREADGROUP", "GROUP", options.group, options.consumer, "COUNT", options.batch, "BLOCK",
             options.block_ms, "STREAMS", *streams, *(">" for _ in streams))
        )  # fmt: skip
        if self._connection is None:
            self._connection = await self._pool().get_connection()
        connection = self._connection
        await connection.send_packed_command(connection.pack_commands(commands))
        replies, error = [], None
        for _ in commands:  # every reply read, so the connection stays in step
            try:
                replies.append(await connection.read_response(disable_decoding=True))
            except ResponseError as exc:
                error = error or exc
        if error is not None:
            raise error  # the XACKs stay owed: XACK again is harmless
        self._owed.clear()
        return _stream_entries(replies[-1])

    async def _release_connection(self) -> None:
        """The read connection back to the pool (a lost one reconnects at its next use)."""
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(RedisError):
                await self._pool().release(connection)

    def _pool(self) -> Any:  # redis-py's pool is untyped
        """The client's connection pool, the client being one Redis: a cluster's is never read on
        a connection of this consumer's own (_read_new reads it by its slots' nodes)."""
        return cast(aioredis.Redis, self.redis).connection_pool

    async def _xreadgroup(self, streams: list[str] | tuple[str, ...], block: bool = True) -> Any:
        return await self._read_command(self.redis, streams, block)

    def _read_command(self, client: Any, streams: list[str] | tuple[str, ...], block: bool) -> Any:
        """XREADGROUP of `streams` (">": entries new to the group) on `client`, or queued on a pipeline."""
        return client.xreadgroup(
            self.options.group,
            self.options.consumer,
            {s: ">" for s in streams},
            count=self.options.batch,
            block=self.options.block_ms if block else None,
        )

    async def _read_slots(self, groups: list[list[str]]) -> list[Any]:
        """One read per group of streams (a cluster's slots). First, without blocking, every
        group at once (under load: each slot's entries, handled together as one read of one
        Redis is); when none has any, a blocking read of each, at once, and the answers of
        those done once one is: a read still blocked stays under way for the next rounds (an
        idle slot delays no other). A group with a stream that a read under way reads (a stream
        found since joined its slot) waits for that read."""
        answers = await self._collect_reads()
        reading = {stream for streams in self._reads for stream in streams}
        free = [streams for streams in groups if reading.isdisjoint(streams)]
        for answer in await asyncio.gather(*(self._xreadgroup(streams, block=False) for streams in free)):
            answers.extend(answer or [])
        if answers:
            return answers
        for streams in free:
            self._reads[tuple(streams)] = asyncio.create_task(self._xreadgroup(streams))
        await asyncio.wait(self._reads.values(), return_when=asyncio.FIRST_COMPLETED)
        return await self._collect_reads()

    async def _collect_reads(self, wait: bool = False) -> list[Any]:
        """The answers of the reads done (of all, awaited, when `wait`). A read that failed
        raises its error; what the others read stays pending, read again after the restart of
        the round (run: this consumer's own pending entries) or reclaimed."""
        answers: list[Any] = []
        for streams, task in list(self._reads.items()):
            if wait or task.done():
                del self._reads[streams]
                answers.extend(await task or [])
        return answers

    def _drop_reads(self) -> None:
        """The reads under way cancelled (what they read stays pending: read again at the start)."""
        for task in self._reads.values():
            task.cancel()
        self._reads.clear()

    async def _finish_reads(self) -> None:
        """At stop: the reads still under way (each blocks at most `block_ms`) ended and what
        they read handled, rather than left pending until this consumer's restart."""
        if not self._reads:
            return
        try:
            reads = [(_text(stream), entries) for stream, entries in await self._collect_reads(wait=True)]
        except (RedisConnectionError, RedisTimeoutError, ResponseError):
            return  # left pending: read again at the restart, or reclaimed
        await self._handle_new(reads)

    async def report(self) -> None:
        """Pending and lag of every stream, from one round trip of XINFO GROUPS (one a stream
        was ~1.8 ms of CPU and up to 9 ms before the next read for 10 streams on a busy machine)."""
        if not self.streams:
            return
        streams = list(self.streams)
        async with self.redis.pipeline(transaction=False) as pipe:
            for stream in streams:
                pipe.xinfo_groups(stream)
            answers = await pipe.execute(raise_on_error=False)
        for stream, groups in zip(streams, answers, strict=True):
            if isinstance(groups, ResponseError):  # the stream is gone; the next read prunes it
                continue
            if isinstance(groups, Exception):
                raise groups
            for group in groups:
                if _text(group["name"]) == self.options.group:
                    PENDING.labels(stream, self.options.group).set(int(group["pending"]))
                    LAG.labels(stream, self.options.group).set(int(group.get("lag") or 0))
                    # At 0 before the first: a rule's increase() sees the first dead letter.
                    DEAD_LETTERS.labels(stream, self.options.group)

    # ---- processing

    async def _process(self, stream: str, raw: list[tuple[Any, dict[bytes, bytes]]]) -> None:
        self._owe(stream, await self._handled(stream, await self._admitted(stream, raw)))

    async def _admitted(self, stream: str, raw: list[RawEntry]) -> list[RawEntry]:
        """The entries `admit` takes; those it refuses are acknowledged with the next read."""
        admit = self.options.admit
        if admit is None:
            return raw
        taken = []
        for entry_id, fields in raw:
            if await admit(stream, _text(entry_id), fields):
                taken.append((entry_id, fields))
            else:
                self._owe(stream, [_text(entry_id)])
        return taken

    async def _handled(self, stream: str, raw: list[tuple[Any, dict[bytes, bytes]]]) -> list[str]:
        """The entries through the handler (or dead-lettered); the ids this runner must acknowledge."""
        good: list[Entry] = []
        for entry_id, fields in raw:
            try:
                good.append((_text(entry_id), decode_entry(stream, fields)))
            except Corrupt as exc:
                await self._dead_letter(stream, _text(entry_id), fields, str(exc))
        if not good:
            return []
        try:
            await self.handle(stream, good)
        except Exception as exc:
            log.warning(
                "bus %s/%s: a batch of %d failed (%s); retrying entry by entry",
                stream,
                self.options.group,
                len(good),
                exc,
            )
            await self._one_by_one(stream, good, {entry_id: fields for entry_id, fields in _by_id(raw)})
            return []  # it acknowledged what it could itself
        return [] if self.options.handler_acks else [entry_id for entry_id, _ in good]

    async def _process_read(self, reads: list[tuple[str, list[tuple[Any, dict[bytes, bytes]]]]]) -> bool:
        """Every stream of one read through handle_read; False (nothing acked) when it failed."""
        assert self.handle_read is not None
        decoded: list[tuple[str, list[Entry]]] = []
        for stream, raw in reads:
            good: list[Entry] = []
            for entry_id, fields in raw:
                try:
                    good.append((_text(entry_id), decode_entry(stream, fields)))
                except Corrupt:
                    return False  # the per-stream path dead-letters it
            decoded.append((stream, good))
        try:
            await self.handle_read(decoded)
        except Exception as exc:
            log.warning(
                "bus %s: a read of %d streams failed (%s); stream by stream",
                self.options.group,
                len(reads),
                exc,
            )
            return False
        if self.options.handler_acks:
            return True
        for stream, good in decoded:
            self._owe(stream, [entry_id for entry_id, _ in good])
        return True

    async def _one_by_one(
        self, stream: str, entries: list[Entry], fields: dict[str, dict[bytes, bytes]]
    ) -> None:
        deliveries = await self._deliveries(stream, [entry_id for entry_id, _ in entries])
        REDELIVERED.set(True)  # a failed handler may have acted on some (reset by read_new)
        for index, entry in enumerate(entries):
            entry_id = entry[0]
            try:
                await self.handle(stream, [entry])
            except NotYet as exc:
                log.info(
                    "bus %s/%s: entry %s refused for now (%s)", stream, self.options.group, entry_id, exc
                )
                await self._not_delivered(stream, entries[index:], deliveries)
                return
            except Exception as exc:
                if deliveries.get(entry_id, 1) >= self.options.max_deliveries:
                    reason = f"failed {deliveries.get(entry_id, 1)} deliveries, last: {exc}"
                    await self._dead_letter(stream, entry_id, fields[entry_id], reason)
                continue  # left pending: redelivered later (own pending, or reclaimed)
            if not self.options.handler_acks:
                await self._ack(stream, [entry_id])

    async def _not_delivered(self, stream: str, entries: list[Entry], deliveries: dict[str, int]) -> None:
        """Entries refused for now (`NotYet`), or not tried after one: this delivery does not count
        (their delivery count set back, XCLAIM ... RETRYCOUNT JUSTID, which leaves them pending here)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for entry_id, _ in entries:
                count = max(deliveries.get(entry_id, 1) - 1, 0)
                pipe.xclaim(stream, self.options.group, self.options.consumer, 0, [entry_id],
                            retrycount=count, justid=True)  # fmt: skip
            await pipe.execute()

    async def _deliveries(self, stream: str, ids: list[str]) -> dict[str, int]:
        counts: dict[str, int] = {}
        for entry_id in ids:
            detail = await self.redis.xpending_range(
                stream, self.options.group, min=entry_id, max=entry_id, count=1
            )
            counts[entry_id] = int(detail[0]["times_delivered"]) if detail else 1
        return counts

    async def _dead_letter(self, stream: str, entry_id: str, fields: dict[bytes, bytes], reason: str) -> None:
        log.warning("bus %s/%s: entry %s dead-lettered: %s", stream, self.options.group, entry_id, reason)
        origin = (
            (b"stream", stream),
            (b"id", entry_id),
            (b"group", self.options.group),
            (b"reason", reason[:500]),
        )
        await self.dead_letters.write(
            Append(dead_letter_stream(stream), fields.get(FIELD, b""), extra=origin)
        )
        await self.redis.xack(stream, self.options.group, entry_id)
        self.dead_lettered += 1
        DEAD_LETTERS.labels(stream, self.options.group).inc()

    async def _ack(self, stream: str, ids: list[str]) -> None:
        if ids:
            await self.redis.xack(stream, self.options.group, *ids)
            self.processed += len(ids)

    def _owe(self, stream: str, ids: list[str]) -> None:
        """Acknowledge `ids` (handled, their effect durable) with the next read."""
        if ids:
            self._owed.setdefault(stream, []).extend(ids)
            self.processed += len(ids)

    async def _flush_acks(self) -> None:
        """The owed XACKs now, in one round trip."""
        if not self._owed:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            self._queue_acks(pipe)
            await pipe.execute()
        self._owed.clear()

    def _queue_acks(self, pipe: Any) -> None:
        """The owed XACKs queued on `pipe`, one a stream."""
        for stream, ids in self._owed.items():
            pipe.xack(stream, self.options.group, *ids)


def _stream_entries(reply: Any) -> list[tuple[bytes, list[RawEntry]]]:
    """An XREADGROUP reply as redis-py's parsed one: [(stream, [(id, {field: value})])]; the
    reply is RESP3's map of streams or RESP2's list of pairs, None when the read timed out."""
    if not reply:
        return []
    pairs = reply.items() if isinstance(reply, dict) else reply
    return [(stream, [_entry(raw) for raw in entries]) for stream, entries in pairs]


def _entry(raw: list[Any]) -> RawEntry:
    entry_id, fields = raw
    values = iter(fields or ())
    return entry_id, dict(zip(values, values, strict=False))


def _by_id(raw: list[tuple[Any, dict[bytes, bytes]]]) -> list[tuple[str, dict[bytes, bytes]]]:
    return [(_text(entry_id), fields) for entry_id, fields in raw]
