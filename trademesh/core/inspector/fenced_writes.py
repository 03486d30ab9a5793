"""The leader's journal writes, fenced by its leader lease (trademesh.core.platform.replicas.leader).

Each write is awaited by its caller, and the writes made while one is on the wire go together in
the next (trademesh.core.platform.bus.commit.GroupCommit, as Publisher.write): one atomic group write
(trademesh.core.platform.bus.group) carrying the lease's fence. Once another process holds the lease, the
group is refused whole (FENCED): its writers get LeadershipLost, the leadership is deposed (the
service stops), and a deposed inspector journals nothing more, however long it was paused. (A
lease that lapsed while nobody took it is taken back first, and the group written:
Leadership.reclaim.)

In a Redis Cluster the fence and the journal must share a slot (trademesh.core.platform.replicas.lease); the
mesh's Redis is one node.
"""

from __future__ import annotations

from trademesh.core.platform.bus.append import Append
from trademesh.core.platform.bus.commit import GroupCommit
from trademesh.core.platform.bus.group import GroupOutcome, GroupWrite, write_group
from trademesh.core.platform.bus.redis import BusRedis
from trademesh.core.platform.replicas.leader import Leadership, LeadershipLost

__all__ = ["FencedWrites"]


class FencedWrites:
    def __init__(self, redis: BusRedis, leadership: Leadership) -> None:
        self.redis = redis  # redis.asyncio.Redis
        self.leadership = leadership
        self._commit = GroupCommit(self._send)

    async def write(self, append: Append) -> bytes:
        """Write `append` with the writes made meanwhile, as the leader; its entry id. Raises
        LeadershipLost when the lease is another's, or what the round trip raised."""
        return await self._commit.write(append)

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
