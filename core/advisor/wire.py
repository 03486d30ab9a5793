"""The advisor's outputs on the bus (bus.v1 Envelopes, as the detector's signals).

A signal's decision goes in one step, a Lua script (atomic, one round trip): the decision on
`decisions`, its intent (if any) on `intents`, its telemetry on `advisor.telemetry`, the mark
that its signal was decided (`advisor:<group>:decided:<signal id>`, kept `decided_ttl_s`), so a
redelivered signal is not decided twice, and the acknowledgement of the signal's bus entry once
every signal of the entry is decided. Nothing of the decision is published when the mark is
there already (another consumer, or an earlier run, decided the signal): then only telemetry of
no decision (a portfolio allocation) and the acknowledgement. After a crash the step happened
whole or not at all: an entry not acknowledged is read again at the restart, and only its
signals without the mark are decided, so exactly one decision per signal reaches the bus, with
its telemetry.

`commit` is the same writes as a MULTI/EXEC without the mark's check (Decide's publish, a signal
only marked).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from core.foundations.bus.codec import FIELD
from core.foundations.bus.names import ADVISOR_TELEMETRY, DECISIONS, INTENTS, SIGNALS
from core.foundations.bus.publisher import Retention
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


# KEYS: the mark, decisions, intents, advisor.telemetry, signals. ARGV: 1 the decision's envelope,
# 2 the intent's ("" for none), 3 the mark's TTL, 4 MAXLEN, 5 the entry field, 6 the decision's id,
# 7 the telemetry's envelope ("" for none), 8 that of the events of no decision alone ("" for
# none), 9 the group, 10 the signals entry to acknowledge ("" for none). 1: published (now, or
# by an earlier attempt whose answer was lost: the mark holds its id, and that attempt wrote all
# of it); 0: the signal was decided by another.
_ONCE = """
local held = redis.call('GET', KEYS[1])
if held then
  if held == ARGV[6] then return 1 end
  if ARGV[8] ~= '' then
    redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[4], '*', ARGV[5], ARGV[8])
  end
  if ARGV[10] ~= '' then redis.call('XACK', KEYS[5], ARGV[9], ARGV[10]) end
  return 0
end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], '*', ARGV[5], ARGV[1])
if ARGV[2] ~= '' then
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[4], '*', ARGV[5], ARGV[2])
end
if ARGV[7] ~= '' then
  redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[4], '*', ARGV[5], ARGV[7])
end
redis.call('SET', KEYS[1], ARGV[6], 'EX', ARGV[3])
if ARGV[10] ~= '' then redis.call('XACK', KEYS[5], ARGV[9], ARGV[10]) end
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

    async def publish_once(
        self,
        decision: am.Decision,
        events: Sequence[am.TelemetryEvent],
        loose: Sequence[am.TelemetryEvent],
        now_ns: int,
        mark: str,
        ack: str | None = None,
    ) -> bool:
        """Publish the decision, its intent and its telemetry `events`, mark `mark` decided and
        acknowledge the `signals` entry `ack`, atomically, unless `mark` was decided already by
        another decision (False: then only `loose`, the events of no decision, and the
        acknowledgement)."""
        source = self.source
        intent = b""
        if decision.HasField("intent"):
            intent = encode_intents(source, [decision.intent], now_ns)
        telemetry = encode_telemetry(source, [*events, *loose], now_ns) if events or loose else b""
        alone = encode_telemetry(source, loose, now_ns) if loose else b""
        published = await self._once(
            keys=[decided_key(self.group, mark), DECISIONS, INTENTS, ADVISOR_TELEMETRY, SIGNALS],
            args=[encode_decisions(source, [decision], now_ns), intent, self.decided_ttl_s,
                  self.retention.maxlen, FIELD, decision.decision_id, telemetry, alone, self.group,
                  "" if ack is None else ack],
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
