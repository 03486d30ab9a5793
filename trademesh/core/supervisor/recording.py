"""The Supervisor's audit trail on the bus (stream `supervisor.audit`, docs/supervisor.md): what
the recorder keeps in PostgreSQL (`supervisor_audit`, which `trademesh trace <proposal id>`
reads) and what a restarted Supervisor reads its recent trail back from.

Entries go out after each look and each operator's command, in the order they were kept. Redis
away: they wait in the trail (bounded: the oldest dropped), said once, and go with the next
flush once it answers; the Supervisor never waits on the bus to act.
"""

from __future__ import annotations

import logging

from redis.exceptions import RedisError

from trademesh.core.platform.bus.codec import FIELD, decode, encode_supervisor_audit
from trademesh.core.platform.bus.names import SUPERVISOR_AUDIT
from trademesh.core.platform.bus.reads import read_back
from trademesh.core.platform.bus.redis import BusRedis
from trademesh.core.supervisor.audit import AuditTrail
from trademesh.core.supervisor.convert import audit_from_pb, audit_to_pb
from trademesh.core.supervisor.engine import AuditEntry

__all__ = ["AuditRecording"]

log = logging.getLogger(__name__)

# About a week of a look a minute (an entry of the stream each): more than a recorder's outage.
_MAXLEN = 7 * 24 * 60 * 2
_BATCH = 200  # entries an envelope carries (a model's prompt is several KB)
_REDIS_ERRORS = (RedisError, OSError)


class AuditRecording:
    def __init__(self, redis: BusRedis, trail: AuditTrail, source: str) -> None:
        self._redis, self._trail, self._source = redis, trail, source
        self._failing = False

    async def restore(self, keep: int) -> int:
        """The last `keep` entries of the stream back into the trail's recent ones; how many."""
        newest_first: list[AuditEntry] = []
        end = "+"
        try:
            while len(newest_first) < keep:
                raw = await read_back(self._redis, SUPERVISOR_AUDIT, max=end, min="-", count=_BATCH)
                for entry_id, fields in raw:
                    newest_first += reversed(
                        [audit_from_pb(e) for e in decode(fields).supervisor_audit.entries]
                    )
                    end = "(" + (entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id))
                if len(raw) < _BATCH:
                    break
        except _REDIS_ERRORS as exc:
            log.warning(
                "supervisor: the audit trail on %s is away (%s): starting without it", SUPERVISOR_AUDIT, exc
            )
            return 0
        kept = list(reversed(newest_first[:keep]))
        self._trail.restore(kept)
        return len(kept)

    async def flush(self) -> None:
        """What the trail kept since the last flush, on the bus, a batch an entry of the stream
        (each batch taken off the trail's queue once Redis has it)."""
        unrecorded = self._trail.unrecorded
        while unrecorded:
            chunk = [unrecorded[n] for n in range(min(_BATCH, len(unrecorded)))]
            data = encode_supervisor_audit(self._source, [audit_to_pb(e) for e in chunk])
            try:
                await self._redis.xadd(SUPERVISOR_AUDIT, {FIELD: data}, maxlen=_MAXLEN, approximate=True)
            except _REDIS_ERRORS as exc:
                if not self._failing:
                    log.warning("supervisor: %d audit entries wait for the bus: %s", len(unrecorded), exc)
                self._failing = True
                return
            for _ in chunk:
                unrecorded.popleft()
        if self._failing:
            log.info("supervisor: the audit trail reaches the bus again")
        self._failing = False
