"""The advisor's outputs on the bus (bus.v1 Envelopes, as the detector's signals), in two
transactions (MULTI/EXEC) per decision:

1. the decision on `decisions`, its intent (if any) on `intents`, and the mark that its signal
   was decided (`advisor:<group>:decided:<signal id>`, kept `decided_ttl_s`), so a redelivered
   signal is not decided twice;
2. then its telemetry on `advisor.telemetry`, with the acknowledgement of the signal's bus
   entry once every signal of the entry is decided.

The decision does not wait for its telemetry's ~35 messages to be built (the runner builds
them while the first transaction is on the wire). After a crash each transaction happened
whole or not at all: an entry not acknowledged is read again at the restart, and only its
signals without the mark are decided, so exactly one decision per signal reaches the bus. A
crash between the two loses that decision's telemetry events: the decision itself, with every
stage's status, timing, output and reasons, is on `decisions`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from core.bus.codec import FIELD
from core.bus.names import ADVISOR_TELEMETRY, DECISIONS, INTENTS, SIGNALS
from core.bus.publisher import Retention
from trademesh.advisor.v1 import messages_pb2 as am
from trademesh.bus.v1 import bus_pb2 as bus

__all__ = ["BusWriter", "decided_key", "encode_decisions", "encode_intents", "encode_telemetry"]


def encode_decisions(source: str, decisions: Sequence[am.Decision], now_ns: int) -> bytes:
    envelope = bus.Envelope(source=source, ts_publish_ns=now_ns)
    envelope.decisions.decisions.extend(decisions)
    return envelope.SerializeToString()


def encode_intents(source: str, intents: Sequence[am.Intent], now_ns: int) -> bytes:
    envelope = bus.Envelope(source=source, ts_publish_ns=now_ns)
    envelope.intents.intents.extend(intents)
    return envelope.SerializeToString()


def encode_telemetry(source: str, events: Sequence[am.TelemetryEvent], now_ns: int) -> bytes:
    envelope = bus.Envelope(source=source, ts_publish_ns=now_ns)
    envelope.advisor_telemetry.events.extend(events)
    return envelope.SerializeToString()


def decided_key(group: str, signal_id: str) -> str:
    return f"advisor:{group}:decided:{signal_id}"


# KEYS: the mark, decisions, intents. ARGV: the decision's envelope, the intent's ("" for none),
# the mark's TTL, MAXLEN, the entry field, the decision's id. 1: published (now, or by an earlier
# attempt whose answer was lost: the mark holds its id); 0: the signal was decided by another.
_ONCE = """
local held = redis.call('GET', KEYS[1])
if held then
  if held == ARGV[6] then return 1 end
  return 0
end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], '*', ARGV[5], ARGV[1])
if ARGV[2] ~= '' then
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[4], '*', ARGV[5], ARGV[2])
end
redis.call('SET', KEYS[1], ARGV[6], 'EX', ARGV[3])
return 1
"""


class BusWriter:
    def __init__(self, redis: Any, group: str, source: str, retention: Retention, decided_ttl_s: int) -> None:
        self.redis = redis  # redis.asyncio.Redis
        self.group = group
        self.source = source
        self.retention = retention
        self.decided_ttl_s = decided_ttl_s
        self._once = redis.register_script(_ONCE)

    async def decided(self, signal_ids: Sequence[str]) -> set[str]:
        """Those of `signal_ids` decided already (their mark is there)."""
        if not signal_ids:
            return set()
        marks = await self.redis.mget([decided_key(self.group, s) for s in signal_ids])
        return {s for s, mark in zip(signal_ids, marks, strict=True) if mark is not None}

    async def publish_once(self, decision: am.Decision, now_ns: int, mark: str) -> bool:
        """Publish the decision and its intent and mark `mark` decided, atomically, unless `mark`
        was decided already by another decision (False: nothing published)."""
        intent = b""
        if decision.HasField("intent"):
            intent = encode_intents(self.source, [decision.intent], now_ns)
        published = await self._once(
            keys=[decided_key(self.group, mark), DECISIONS, INTENTS],
            args=[encode_decisions(self.source, [decision], now_ns), intent, self.decided_ttl_s,
                  self.retention.maxlen, FIELD, decision.decision_id],
        )  # fmt: skip
        return bool(published)

    async def commit(
        self,
        decision: am.Decision | None,
        events: Sequence[am.TelemetryEvent],
        now_ns: int,
        *,
        mark: str | None = None,
        ack: str | None = None,
    ) -> None:
        """Publish the decision, its intent and `events`; mark `mark` decided; acknowledge the
        `signals` entry `ack`; all in one transaction."""
        maxlen = self.retention.maxlen
        async with self.redis.pipeline(transaction=True) as pipe:
            if decision is not None:
                pipe.xadd(DECISIONS, {FIELD: encode_decisions(self.source, [decision], now_ns)},
                          maxlen=maxlen, approximate=True)  # fmt: skip
                if decision.HasField("intent"):
                    pipe.xadd(INTENTS, {FIELD: encode_intents(self.source, [decision.intent], now_ns)},
                              maxlen=maxlen, approximate=True)  # fmt: skip
            if events:
                pipe.xadd(ADVISOR_TELEMETRY, {FIELD: encode_telemetry(self.source, events, now_ns)},
                          maxlen=maxlen, approximate=True)  # fmt: skip
            if mark is not None:
                pipe.set(decided_key(self.group, mark), b"1", ex=self.decided_ttl_s)
            if ack is not None:
                pipe.xack(SIGNALS, self.group, ack)
            await pipe.execute()
