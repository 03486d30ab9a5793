"""The atomic group write: entries to several streams, keys set and input entries acknowledged,
all together or not at all, unless the group was written already.

A GroupWrite is one input's whole effect on the bus: the advisor's decision, its intent and
telemetry, the signal's mark and the acknowledgement of its entry; the bars closed by a batch of
trades, the checkpoint that saw them and the acknowledgement of the trades; an execution batch at
its venue point. `write_group` writes it in one round trip, atomically (no reader sees part of it;
a writer killed at any moment wrote all of it or none), so an input is acknowledged exactly when
its effect is durable: a guarded group as the bus's one Lua script (trademesh.core.platform.bus.lua: the
guard is checked where the writes happen), one without a guard as MULTI/EXEC (as atomic, and
cheaper: Redis copies a script's arguments into Lua, ~5 times the server time of MULTI/EXEC for a
bars checkpoint of tens of kB).

"Unless already done", the guard, makes a retry safe (an attempt whose answer was lost) and a
second writer harmless:
- Marked(key, token, ttl_s): once per key. The first group sets the key to its token; a retry of
  the same token finds it and writes nothing (DONE: its earlier attempt wrote everything); another
  writer's token finds it and writes only `otherwise` and the acknowledgement (TAKEN).
- AtPoint(stream, epoch, position): at most once per venue point. The group is written only when
  the stream's last entry is not already at or past that position of that epoch (DONE otherwise);
  `at_most_once` makes the group for one Append, its point stored in it (fields e, p).
- Numbered(key, number, ttl_s): a writer's groups in the order it numbered them, each at most
  once. The group is written only when `key` (the writer's own) holds a smaller number, and sets
  it to `number` (DONE otherwise): a flush sent again after its answer was lost (the first copy
  ran, or runs later: Redis reads what a client sent before it went) writes nothing twice.
A fence (Fenced(key, token)) is checked before the guard: when the lease `key` holds another
token, or held another since `token` (trademesh.core.platform.replicas.lease), nothing is written (FENCED): a
writer that lost its lease (paused past its ttl, another holder since) writes nothing more under
it.
Without a guard the group is written every time it is run (the bars: a failed commit reloads the
engine from the checkpoint, which says what was applied).

Every key a group touches is declared to Redis (KEYS): in a Redis Cluster they must share a slot.
"""

from __future__ import annotations

import dataclasses
import enum
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from trademesh.core.platform.bus.append import Append, Field
from trademesh.core.platform.bus.lua import GROUP_WRITE
from trademesh.core.platform.bus.redis import BusRedis
from trademesh.core.platform.replicas.lease import last_key

__all__ = [
    "Ack",
    "AtPoint",
    "Fenced",
    "GroupOutcome",
    "GroupResult",
    "GroupWrite",
    "Marked",
    "Numbered",
    "SetFields",
    "SetKey",
    "at_most_once",
    "queue_commands",
    "script_call",
    "script_result",
    "trim_by_age",
    "write_group",
]


@dataclass(frozen=True)
class Ack:
    """XACK of `ids` of `stream` for the consumer group `group`: the input the group consumed."""

    stream: str
    group: str
    ids: tuple[str, ...]


@dataclass(frozen=True)
class SetKey:
    """SET key value (EX ttl_s)."""

    key: str
    value: Field
    ttl_s: int | None = None


@dataclass(frozen=True)
class SetFields:
    """HSET key field value ... (a checkpoint's changed fields)."""

    key: str
    fields: Mapping[str, Field] | Mapping[bytes, Field] | Mapping[bytes | str, Field]


@dataclass(frozen=True)
class Marked:
    """Once per `key`, which the group sets to `token` for `ttl_s` (module docstring)."""

    key: str
    token: str
    ttl_s: int


@dataclass(frozen=True)
class AtPoint:
    """Unless `stream` is already at or past `position` of `epoch` (module docstring)."""

    stream: str
    epoch: int
    position: int


@dataclass(frozen=True)
class Numbered:
    """Unless `key` already holds `number` or more; sets it to `number` for `ttl_s` (module docstring)."""

    key: str
    number: int
    ttl_s: int


@dataclass(frozen=True)
class Fenced:
    """Only while the lease `key` holds `token` (module docstring)."""

    key: str
    token: str


class GroupOutcome(enum.Enum):
    WRITTEN = "written"  # this call wrote the group
    DONE = "done"  # written before (our own earlier attempt, or the stream is past the point): nothing now
    TAKEN = "taken"  # another writer's mark holds the key: only `otherwise` and the ack were written
    FENCED = "fenced"  # the lease of the fence is not held with its token: nothing was written


@dataclass(frozen=True)
class GroupResult:
    outcome: GroupOutcome
    ids: list[bytes]  # the ids of the entries this call wrote, in order


@dataclass(frozen=True)
class GroupWrite:
    appends: Sequence[Append] = ()
    state: Sequence[SetKey | SetFields] = ()
    ack: Ack | None = None
    guard: Marked | AtPoint | Numbered | None = None
    # Marked only: what is written instead (with the ack) when another writer's mark holds the key.
    otherwise: Sequence[Append] = ()
    fence: Fenced | None = None

    def __post_init__(self) -> None:
        if self.otherwise and not isinstance(self.guard, Marked):
            raise ValueError("a group write's `otherwise` needs a Marked guard")

    @property
    def empty(self) -> bool:
        return not (self.appends or self.state or self.ack or self.guard or self.fence)


def at_most_once(append: Append, epoch: int, position: int) -> GroupWrite:
    """`append` written at most once per venue point (epoch, position), which it holds."""
    pointed = dataclasses.replace(append, extra=(*append.extra, (b"e", epoch), (b"p", position)))
    return GroupWrite(appends=(pointed,), guard=AtPoint(append.stream, epoch, position))


async def write_group(redis: BusRedis, group: GroupWrite) -> GroupResult:
    """Write `group` atomically, in one round trip (none for an empty group). After an error
    (Redis gone, the answer lost) it may or may not have been written: a guarded group is safe
    to run again; an unguarded one is not (the bars reload their checkpoint instead)."""
    if group.empty:
        return GroupResult(GroupOutcome.WRITTEN, [])
    if group.guard is None and group.fence is None:
        async with redis.pipeline(transaction=True) as pipe:
            queue_commands(pipe, group)
            replies = await pipe.execute()
        return GroupResult(
            GroupOutcome.WRITTEN, [_bytes(entry_id) for entry_id in replies[: len(group.appends)]]
        )
    keys, args = script_call(group)
    reply = await redis.register_script(GROUP_WRITE)(keys=keys, args=args)
    return script_result(reply)


def queue_commands(pipe: Any, group: GroupWrite) -> None:
    """An unguarded group's commands, appends first, queued in a MULTI/EXEC pipeline."""
    assert group.guard is None and group.fence is None, "checked by the script, not in a transaction"
    for append in group.appends:
        pipe.xadd(append.stream, append.fields(), maxlen=append.maxlen, approximate=True)
    for item in group.state:
        if isinstance(item, SetKey):
            pipe.set(item.key, item.value, ex=item.ttl_s)
        else:
            pipe.hset(item.key, mapping=dict(item.fields))
    if group.ack is not None and group.ack.ids:
        pipe.xack(group.ack.stream, group.ack.group, *group.ack.ids)
    trim_by_age(pipe, group.appends)


def trim_by_age(pipe: Any, appends: Sequence[Append]) -> int:
    """XTRIM MINID ~ queued once for each stream of `appends` trimmed by age (after the
    commands whose replies the caller reads); how many. The cut is this process's clock less the
    age: a clock s ahead of Redis's trims entries s younger than the age (seconds against the
    minutes of an outage). Approximate, so cheap: whole macro-nodes, at most 100 a call."""
    now_ms = time.time_ns() // 1_000_000
    cuts = {a.stream: now_ms - a.max_age_ms for a in appends if a.max_age_ms is not None}
    for stream, cut in cuts.items():
        pipe.xtrim(stream, minid=cut, approximate=True)
    return len(cuts)


def script_call(group: GroupWrite) -> tuple[list[str], list[Field]]:
    """GROUP_WRITE's KEYS and ARGV for `group` (their layout: trademesh.core.platform.bus.lua)."""
    keys: dict[str, int] = {}

    def index(key: str) -> int:
        return keys.setdefault(key, len(keys) + 1)

    writes: list[Field] = []
    for append in group.appends:
        writes += _xadd(index, append)
    for item in group.state:
        writes += _state(index, item)
    if isinstance(group.guard, Marked):
        writes += ["set", index(group.guard.key), group.guard.token, group.guard.ttl_s]
    elif isinstance(group.guard, Numbered):
        writes += ["set", index(group.guard.key), group.guard.number, group.guard.ttl_s]
    if group.ack is not None:
        writes += _xack(index, group.ack)
    others: list[Field] = []
    for append in group.otherwise:
        others += _xadd(index, append)
    if isinstance(group.guard, Marked) and group.ack is not None:
        others += _xack(index, group.ack)  # the input was handled, by the other writer
    head = _guard(index, group.guard)
    fence: list[Field] = ["", "", ""]
    if group.fence is not None:
        fence = [index(group.fence.key), group.fence.token, index(last_key(group.fence.key))]
    return list(keys), [*head, len(head) + 5 + len(writes), *fence, *writes, *others]


def script_result(reply: list[Any]) -> GroupResult:
    """GROUP_WRITE's answer as a GroupResult."""
    return GroupResult(GroupOutcome(_bytes(reply[0]).decode()), [_bytes(entry_id) for entry_id in reply[1:]])


def _bytes(value: Any) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()


def _guard(index: Callable[[str], int], guard: Marked | AtPoint | Numbered | None) -> list[Field]:
    if isinstance(guard, Marked):
        return ["mark", index(guard.key), guard.token, ""]
    if isinstance(guard, Numbered):
        return ["number", index(guard.key), guard.number, ""]
    if isinstance(guard, AtPoint):
        return ["point", index(guard.stream), guard.epoch, guard.position]
    return ["", "", "", ""]


def _xadd(index: Callable[[str], int], append: Append) -> list[Field]:
    fields = append.fields()
    flat = [item for pair in fields.items() for item in pair]
    maxlen: Field = "" if append.maxlen is None else append.maxlen
    age: Field = "" if append.max_age_ms is None else append.max_age_ms
    return ["xadd", index(append.stream), maxlen, age, len(fields), *flat]


def _state(index: Callable[[str], int], item: SetKey | SetFields) -> list[Field]:
    if isinstance(item, SetKey):
        return ["set", index(item.key), item.value, "" if item.ttl_s is None else item.ttl_s]
    flat = [value for pair in item.fields.items() for value in pair]
    return ["hset", index(item.key), len(item.fields), *flat]


def _xack(index: Callable[[str], int], ack: Ack) -> list[Field]:
    if not ack.ids:
        return []
    return ["xack", index(ack.stream), ack.group, len(ack.ids), *ack.ids]
