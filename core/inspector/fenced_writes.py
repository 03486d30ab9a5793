"""The leader's journal writes, fenced by its leader lease (core.foundations.leader).

Each write is awaited by its caller, and the writes made while one is on the wire go together in
the next (group commit, as core.foundations.bus.publisher.Publisher.write): one atomic group write
(core.foundations.bus.group) carrying the lease's fence. Once another process holds the lease, the
group is refused whole (FENCED): its writers get LeadershipLost, the leadership is deposed (the
service stops), and a deposed inspector journals nothing more, however long it was paused. (A
lease that lapsed while nobody took it is taken back first, and the group written:
Leadership.reclaim.)

In a Redis Cluster the fence and the journal must share a slot (core.foundations.lease); the
mesh's Redis is one node.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from core.foundations.bus.append import Append
from core.foundations.bus.group import GroupOutcome, GroupWrite, write_group
from core.foundations.leader import Leadership, LeadershipLost

__all__ = ["FencedWrites"]

_MOST = 500  # writes per round trip at most


@dataclass
class _Waiting:
    append: Append
    done: asyncio.Future[bytes]


class FencedWrites:
    def __init__(self, redis: Any, leadership: Leadership) -> None:
        self.redis = redis  # redis.asyncio.Redis
        self.leadership = leadership
        self._waiting: list[_Waiting] = []
        self._writing: asyncio.Task[None] | None = None

    async def write(self, append: Append) -> bytes:
        """Write `append` with the writes made meanwhile, as the leader; its entry id. Raises
        LeadershipLost when the lease is another's, or what the round trip raised."""
        done: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._waiting.append(_Waiting(append, done))
        if self._writing is None or self._writing.done():
            self._writing = asyncio.create_task(self._write_waiting())
        return await done

    async def _write_waiting(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting[:_MOST], self._waiting[_MOST:]
            try:
                ids = await self._send([waiting.append for waiting in batch])
            except Exception as exc:  # each waiter gets it: its entry may not be written
                for waiting in batch:
                    if not waiting.done.done():
                        waiting.done.set_exception(exc)
                continue
            for waiting, entry_id in zip(batch, ids, strict=True):
                if not waiting.done.done():
                    waiting.done.set_result(entry_id)

    async def _send(self, appends: list[Append]) -> list[bytes]:
        fence = self.leadership.fence()
        result = await write_group(self.redis, GroupWrite(appends=tuple(appends), fence=fence))
        if result.outcome is GroupOutcome.FENCED and await self.leadership.reclaim(fence.token):
            # The lease had lapsed unheld (a pause past its ttl): taken back, nobody acted meanwhile.
            fence = self.leadership.fence()
            result = await write_group(self.redis, GroupWrite(appends=tuple(appends), fence=fence))
        if result.outcome is GroupOutcome.FENCED:
            why = "its journal write was refused (FENCED): another process holds the lease"
            self.leadership.deposed(why)
            raise LeadershipLost(f"{self.leadership.name}: {why}")
        return result.ids
