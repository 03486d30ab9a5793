"""How far behind each consumer group of a stream is, against how much the stream keeps.

A group whose lag passes 80 % of the stream's MAXLEN is logged: past MAXLEN, the oldest entries
it has not read are trimmed away; on a stream trimmed by age as well (a market stream), so is a
group whose oldest unread entry is 80 % of the age behind the newest.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from trademesh.core.platform.bus.reads import read_back, read_range
from trademesh.core.platform.bus.redis import BusRedis

__all__ = ["GroupLag", "check_lag"]

log = logging.getLogger(__name__)

# Warn when a group's lag passes this share of the stream's MAXLEN.
_LAG_WARNING_SHARE = 0.8


@dataclass(frozen=True)
class GroupLag:
    stream: str
    group: str
    lag: int  # entries not yet delivered to the group
    pending: int  # delivered, not yet acknowledged
    maxlen: int
    behind_ms: int = 0  # the newest entry's time less the group's last read one's (0: none unread)
    max_age_ms: int | None = None  # the stream's age bound; None: by count alone

    @property
    def near_trim(self) -> bool:
        aged = self.max_age_ms is not None and self.behind_ms >= _LAG_WARNING_SHARE * self.max_age_ms
        return aged or self.lag >= _LAG_WARNING_SHARE * self.maxlen


async def check_lag(
    redis: BusRedis, stream: str, maxlen: int, max_age_ms: int | None = None
) -> list[GroupLag]:
    """Each consumer group's lag on `stream` (Redis 7.0+ reports it), in entries and, with
    `max_age_ms` (the stream's age bound), in time; logs those near the trim."""
    lags = []
    newest_ms = await _newest_ms(redis, stream) if max_age_ms is not None else 0
    for group in await redis.xinfo_groups(stream):
        count = await _lag(redis, stream, group, maxlen)
        read_ms = int(_text(group["last-delivered-id"]).split("-")[0])
        behind_ms = max(0, newest_ms - read_ms) if count else 0
        lag = GroupLag(
            stream, _text(group["name"]), count, int(group["pending"]), maxlen, behind_ms, max_age_ms
        )
        if lag.near_trim:
            log.warning(
                "bus: group %s is %d entries behind on %s%s; the stream keeps about %d%s",
                lag.group,
                lag.lag,
                stream,
                "" if max_age_ms is None else f" ({lag.behind_ms / 1000:.0f} s)",
                lag.maxlen,
                "" if max_age_ms is None else f", and {max_age_ms / 1000:.0f} s",
            )
        lags.append(lag)
    return lags


async def _newest_ms(redis: BusRedis, stream: str) -> int:
    newest = await read_back(redis, stream, count=1)
    return int(_text(newest[0][0]).split("-")[0]) if newest else 0


async def _lag(redis: BusRedis, stream: str, group: dict[str, Any], maxlen: int) -> int:
    """Redis 7's `lag`; counted from the group's last delivered id where Redis does not report it."""
    if group.get("lag") is not None:
        return int(group["lag"])
    last = _text(group["last-delivered-id"])
    newer = await read_range(redis, stream, min=f"({last}", max="+", count=maxlen + 1)
    return len(newer)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
