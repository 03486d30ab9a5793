"""Writing to the bus: pipelined, batched XADD with an approximate MAXLEN per stream.

A stream keeps about `rate x outage` entries: enough for a consumer group to be down for
the configured minutes at full rate and catch up without losing an entry (Redis trims
with `MAXLEN ~`, whole macro-nodes at a time, so it keeps at least that many). Entries
queue in memory between flushes; one flush is one round trip for any number of them. A
flush that fails is retried whole by the next one: delivery is at least once (an entry
may be written twice, never lost), and every consumer is idempotent on natural keys.
A consumer group whose lag nears the trim point is logged (`check_lag`): past it, the
oldest unread entries are gone.

An entry added with a venue point (`once=(epoch, position)`: executions) is written at most
once instead: a Lua script adds it only when the stream's last entry is not already at or past
that point of that epoch, and stores the point in the entry (fields `e` and `p`). A retried
flush, or a second writer of the same venue, then repeats nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from core.foundations.bus.codec import FIELD

__all__ = ["PUBLISH_ONCE", "GroupLag", "Publisher", "Retention"]

log = logging.getLogger(__name__)

# Warn when a group's lag passes this share of the stream's MAXLEN.
_LAG_WARNING_SHARE = 0.8

# KEYS[1] the stream; ARGV data, epoch, position, maxlen. The new entry's id, or nil when the
# stream's last entry already holds this point (or a later one) of the same epoch.
PUBLISH_ONCE = """
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
if #last > 0 then
  local fields = last[1][2]
  local epoch, position
  for i = 1, #fields, 2 do
    if fields[i] == 'e' then epoch = fields[i + 1] elseif fields[i] == 'p' then position = fields[i + 1] end
  end
  if epoch == ARGV[2] and position and tonumber(position) >= tonumber(ARGV[3]) then
    return false
  end
end
return redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[4], '*', 'd', ARGV[1], 'e', ARGV[2], 'p', ARGV[3])
"""


@dataclass(frozen=True)
class Retention:
    """How much a stream keeps: entries per second at full rate, times the outage to survive."""

    entries_per_s: float
    outage_minutes: float

    @property
    def maxlen(self) -> int:
        return max(1000, int(self.entries_per_s * self.outage_minutes * 60))


@dataclass(frozen=True)
class GroupLag:
    stream: str
    group: str
    lag: int  # entries not yet delivered to the group
    pending: int  # delivered, not yet acknowledged
    maxlen: int

    @property
    def near_trim(self) -> bool:
        return self.lag >= _LAG_WARNING_SHARE * self.maxlen


class Publisher:
    def __init__(self, redis: Any, retention: Retention) -> None:
        self.redis = redis  # redis.asyncio.Redis
        self.retention = retention
        self._queued: list[tuple[str, bytes, tuple[int, int] | None]] = []
        self._once: Any = None  # the registered PUBLISH_ONCE script, made on first use
        self.entries_written = 0
        self.entries_skipped = 0

    def add(self, stream: str, data: bytes, once: tuple[int, int] | None = None) -> None:
        """Queue an encoded Envelope for `stream`; written by the next flush(). With `once`
        (a venue's epoch and position), written only if the stream is not already there."""
        self._queued.append((stream, data, once))

    @property
    def queued(self) -> int:
        return len(self._queued)

    async def flush(self) -> list[bytes | None]:
        """Write everything queued in one pipelined round trip; the new entry ids, in order
        (None for a `once` entry the stream already had)."""
        if not self._queued:
            return []
        queued, self._queued = self._queued, []
        maxlen = self.retention.maxlen
        async with self.redis.pipeline(transaction=False) as pipe:
            try:
                for stream, data, once in queued:
                    if once is None:
                        pipe.xadd(stream, {FIELD: data}, maxlen=maxlen, approximate=True)
                    else:
                        await self._publish_once(pipe, stream, data, once, maxlen)
                ids: list[bytes | None] = await pipe.execute()
            except BaseException:
                self._queued[:0] = queued  # nothing is lost: the next flush writes them
                raise
        written = sum(1 for entry_id in ids if entry_id is not None)
        self.entries_written += written
        self.entries_skipped += len(ids) - written
        return ids

    async def _publish_once(
        self, pipe: Any, stream: str, data: bytes, once: tuple[int, int], maxlen: int
    ) -> None:
        if self._once is None:
            self._once = self.redis.register_script(PUBLISH_ONCE)
        epoch, position = once
        await self._once(keys=[stream], args=[data, epoch, position, maxlen], client=pipe)

    async def check_lag(self, stream: str) -> list[GroupLag]:
        """Each consumer group's lag on `stream` (Redis 7.0+ reports it); logs those near the trim."""
        lags = []
        for group in await self.redis.xinfo_groups(stream):
            lag = GroupLag(
                stream,
                _text(group["name"]),
                await self._lag(stream, group),
                int(group["pending"]),
                self.retention.maxlen,
            )
            if lag.near_trim:
                log.warning(
                    "bus: group %s is %d entries behind on %s; the stream keeps about %d",
                    lag.group,
                    lag.lag,
                    stream,
                    lag.maxlen,
                )
            lags.append(lag)
        return lags

    async def _lag(self, stream: str, group: dict[str, Any]) -> int:
        """Redis 7's `lag`; counted from the group's last delivered id where Redis does not report it."""
        if group.get("lag") is not None:
            return int(group["lag"])
        last = _text(group["last-delivered-id"])
        newer = await self.redis.xrange(stream, min=f"({last}", max="+", count=self.retention.maxlen + 1)
        return len(newer)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
