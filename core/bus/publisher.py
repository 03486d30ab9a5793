"""Writing to the bus: pipelined, batched XADD with an approximate MAXLEN per stream.

A stream keeps about `rate x outage` entries: enough for a consumer group to be down for
the configured minutes at full rate and catch up without losing an entry (Redis trims
with `MAXLEN ~`, whole macro-nodes at a time, so it keeps at least that many). Entries
queue in memory between flushes; one flush is one round trip for any number of them. A
flush that fails is retried whole by the next one: delivery is at least once (an entry
may be written twice, never lost), and every consumer is idempotent on natural keys.
A consumer group whose lag nears the trim point is logged (`check_lag`): past it, the
oldest unread entries are gone.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from core.bus.codec import FIELD

__all__ = ["GroupLag", "Publisher", "Retention"]

log = logging.getLogger(__name__)

# Warn when a group's lag passes this share of the stream's MAXLEN.
_LAG_WARNING_SHARE = 0.8


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
        self._queued: list[tuple[str, bytes]] = []
        self.entries_written = 0

    def add(self, stream: str, data: bytes) -> None:
        """Queue an encoded Envelope for `stream`; written by the next flush()."""
        self._queued.append((stream, data))

    @property
    def queued(self) -> int:
        return len(self._queued)

    async def flush(self) -> list[bytes]:
        """Write everything queued in one pipelined round trip; the new entry ids, in order."""
        if not self._queued:
            return []
        queued, self._queued = self._queued, []
        maxlen = self.retention.maxlen
        async with self.redis.pipeline(transaction=False) as pipe:
            for stream, data in queued:
                pipe.xadd(stream, {FIELD: data}, maxlen=maxlen, approximate=True)
            try:
                ids: list[bytes] = await pipe.execute()
            except BaseException:
                self._queued[:0] = queued  # nothing is lost: the next flush writes them
                raise
        self.entries_written += len(ids)
        return ids

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
