"""How far behind each consumer group of a stream is, against how much the stream keeps.

A group whose lag passes 80 % of the stream's MAXLEN is logged: past MAXLEN, the oldest entries
it has not read are trimmed away.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

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

    @property
    def near_trim(self) -> bool:
        return self.lag >= _LAG_WARNING_SHARE * self.maxlen


async def check_lag(redis: Any, stream: str, maxlen: int) -> list[GroupLag]:
    """Each consumer group's lag on `stream` (Redis 7.0+ reports it); logs those near the trim."""
    lags = []
    for group in await redis.xinfo_groups(stream):
        lag = GroupLag(stream, _text(group["name"]), await _lag(redis, stream, group, maxlen),
                       int(group["pending"]), maxlen)  # fmt: skip
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


async def _lag(redis: Any, stream: str, group: dict[str, Any], maxlen: int) -> int:
    """Redis 7's `lag`; counted from the group's last delivered id where Redis does not report it."""
    if group.get("lag") is not None:
        return int(group["lag"])
    last = _text(group["last-delivered-id"])
    newer = await redis.xrange(stream, min=f"({last}", max="+", count=maxlen + 1)
    return len(newer)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
