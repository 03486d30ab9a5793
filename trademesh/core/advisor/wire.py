"""The advisor's outputs on the bus (bus.v1 Envelopes, as the detector's signals), as group
writes (trademesh.core.platform.bus.group).

A signal's decision goes in one group write guarded by the signal's mark
(`advisor:{signals}:<group>:decided:<signal id>`, kept `decided_ttl_s`, holding the decision's id): the
decision on `decisions`, its intent (if any) on `intents`, its telemetry on `advisor.telemetry`,
the mark, and the acknowledgement of the signal's bus entry once every signal of the entry is
decided. Nothing of the decision is published when another decision's mark is there (another
consumer, or an earlier run, decided the signal): then only telemetry of no decision (a portfolio
allocation) and the acknowledgement. A retry of the same decision (its answer lost) finds its own
mark and writes nothing more. After a crash the write happened whole or not at all: an entry not
acknowledged is read again at the restart, and only its signals without the mark are decided, so
exactly one decision per signal reaches the bus, with its telemetry.

`commit` is the same writes without the guard (Decide's publish; a signal only marked, b"1").
The keys one decision touches: the mark, `decisions`, `intents`, `advisor.telemetry` and
`signals`, all in the slot of `signals` (their hash tag {signals}: trademesh.core.platform.bus.names), as
a Redis Cluster needs for one atomic write.

Each intent is signed with the advisor's key (`signer`, trademesh.core.platform.bus.signing): the
inspector acts on no entry of `intents` the advisor's key did not sign.
"""

from __future__ import annotations

from collections.abc import Sequence

from trademesh.advisor.v1 import messages_pb2 as am
from trademesh.bus.v1 import bus_pb2 as bus
from trademesh.core.platform.bus.append import Append, Retention
from trademesh.core.platform.bus.group import Ack, GroupOutcome, GroupWrite, Marked, SetKey, write_group
from trademesh.core.platform.bus.names import ADVISOR_TELEMETRY, DECISIONS, INTENTS, SIGNALS, tagged
from trademesh.core.platform.bus.redis import BusRedis
from trademesh.core.platform.bus.signing import Signer

__all__ = ["DecisionWriter", "decided_key", "encode_decisions", "encode_intents", "encode_telemetry"]


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
    return f"advisor:{tagged(SIGNALS)}:{group}:decided:{signal_id}"


class DecisionWriter:
    def __init__(
        self,
        redis: BusRedis,
        group: str,
        source: str,
        retention: Retention,
        decided_ttl_s: int,
        signer: Signer | None = None,
    ) -> None:
        self.redis = redis  # redis.asyncio.Redis
        self.group = group
        self.source = source
        self.retention = retention
        self.decided_ttl_s = decided_ttl_s
        # The advisor's key: None writes intents unsigned (the inspector refuses them).
        self.signer = signer

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
        telemetry = [*events, *loose]
        group = GroupWrite(
            appends=self._outputs(decision, telemetry, now_ns),
            ack=self._ack(ack),
            guard=Marked(decided_key(self.group, mark), decision.decision_id, self.decided_ttl_s),
            otherwise=[self._telemetry(loose, now_ns)] if loose else [],
        )
        return (await write_group(self.redis, group)).outcome is not GroupOutcome.TAKEN

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
        `signals` entry `ack`; all in one group write."""
        state = [] if mark is None else [SetKey(decided_key(self.group, mark), b"1", self.decided_ttl_s)]
        group = GroupWrite(self._outputs(decision, events, now_ns), state, self._ack(ack))
        await write_group(self.redis, group)

    def _outputs(
        self, decision: am.Decision | None, events: Sequence[am.TelemetryEvent], now_ns: int
    ) -> list[Append]:
        """The decision, its intent (if any), then the telemetry `events` (if any)."""
        appends = []
        if decision is not None:
            maxlen = self.retention.maxlen
            appends.append(Append(DECISIONS, encode_decisions(self.source, [decision], now_ns), maxlen))
            if decision.HasField("intent"):
                intent = Append(INTENTS, encode_intents(self.source, [decision.intent], now_ns), maxlen)
                appends.append(intent if self.signer is None else self.signer.sign(intent))
        if events:
            appends.append(self._telemetry(events, now_ns))
        return appends

    def _telemetry(self, events: Sequence[am.TelemetryEvent], now_ns: int) -> Append:
        return Append(ADVISOR_TELEMETRY, encode_telemetry(self.source, events, now_ns), self.retention.maxlen)

    def _ack(self, entry_id: str | None) -> Ack | None:
        return None if entry_id is None else Ack(SIGNALS, self.group, (entry_id,))
