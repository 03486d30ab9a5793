"""Which bus entries the inspector acts on: those its allowed writer signed (issue 56).

The inspector's consumer reads two trading streams, `intents.{signals}` (the advisor's) and
`position_requests.{signals}` (the detector's). Anyone who reaches Redis can write to them, so an
entry is acted on only when the stream's one allowed writer signed it with its key
(trademesh.core.platform.bus.signing). An entry unsigned, signed as another writer, signed with another
key, or from a writer whose key this inspector lacks is refused: never handed to the core, still
acknowledged (a redelivery would be refused again), counted
(`trademesh_inspector_bus_refused_total{stream,reason}`, alert BusWritesRefused) and reported as a
NOTICE risk event (policy `bus.refused`) on the stream `risk`, which notifies the operator
(trademesh.core.inspector.notify, at most one a minute). The event names the stream, the entry and why; it
echoes nothing of the entry's own content (an intent's ids, strategy, market: an outsider's
words, which would stand in the audit beside the strategies' own).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from prometheus_client import Counter
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from trademesh.core.inspector.risk_log import RiskLog
from trademesh.core.platform.bus.signing import WRITER_FIELD, WRITERS, EntryRefusal, Verifier
from trademesh.core.platform.errors import TrademeshError, shown
from trademesh.risk.v1 import inspector_pb2 as rk

__all__ = ["REFUSED", "REFUSED_POLICY", "BusAuth"]

log = logging.getLogger(__name__)

REFUSED = Counter(
    "trademesh_inspector_bus_refused_total",
    "Entries of a trading stream refused: not signed by the writer allowed on it (by stream, reason).",
    ["stream", "reason"],
)
REFUSED_POLICY = "bus.refused"
# A refusal's log line at most this often per stream and reason (a flood of forged entries would
# flood the log); the counter and the risk events count every one.
_SAY_EVERY_S = 60.0
_REASONS = {
    EntryRefusal.UNSIGNED: "it is not signed",
    EntryRefusal.WRITER: "it is signed by a writer not allowed on this stream",
    EntryRefusal.NO_KEY: "this inspector holds no key of the stream's writer",
    EntryRefusal.SIGNATURE: "its signature is not its writer's key's",
}


class BusAuth:
    """The consumer's `admit` hook (trademesh.core.platform.bus.consumer.Admit)."""

    def __init__(
        self, verifier: Verifier, risk_log: RiskLog, clock: Callable[[], int] = time.time_ns
    ) -> None:
        self.verifier = verifier
        self.risk_log = risk_log
        self.clock = clock
        self._said: dict[tuple[str, EntryRefusal], float] = {}
        self.refused: dict[tuple[str, EntryRefusal], int] = {}  # since start, for the log line
        for stream in WRITERS:  # at 0 from the start: a rule's increase() sees the first refusal
            for refusal in EntryRefusal:
                REFUSED.labels(stream, refusal.value)

    def say_missing(self) -> None:
        """Loudly, once at start: the writers whose entries this inspector will refuse, all of them."""
        for variable in self.verifier.missing():
            log.error(
                "inspector: %s is unset: every entry of its writer on the bus is refused, nothing "
                "of it traded (docs/bus.md, 'Who may write the trading streams')",
                variable,
            )

    async def admit(self, stream: str, entry_id: str, fields: dict[bytes, bytes]) -> bool:
        """True when the entry's allowed writer signed it; else it is counted and reported."""
        refusal = self.verifier.check(stream, fields)
        if refusal is None:
            return True
        REFUSED.labels(stream, refusal.value).inc()
        self.refused[(stream, refusal)] = self.refused.get((stream, refusal), 0) + 1
        writer = fields.get(WRITER_FIELD, b"").decode(errors="replace")
        self._say(stream, entry_id, refusal, writer)
        event = rk.RiskEvent(
            ts_ns=self.clock(), action=rk.RISK_ACTION_NOTICE, policy=REFUSED_POLICY,
            reason=f"entry {entry_id} of {stream} not acted on: {_REASONS[refusal]}",
            values=[
                rk.Value(name="stream", value=stream), rk.Value(name="entry", value=entry_id),
                rk.Value(name="reason", value=refusal.value), rk.Value(name="writer", value=shown(writer)),
            ],
        )  # fmt: skip
        await self._report(event)
        return False

    async def _report(self, event: rk.RiskEvent) -> None:
        """The refusal's event on `risk`. Redis unreachable: raised, so the consumer reconnects and
        reads the entry again (its event is not lost); any other failure (a lease lost: this
        inspector is stopping) is logged, and the entry is refused all the same."""
        try:
            await self.risk_log.publish([event], [], event.ts_ns)
        except (RedisConnectionError, RedisTimeoutError):
            raise
        except (TrademeshError, RedisError) as exc:
            log.warning("inspector: a bus refusal not reported on the risk stream: %s", exc)

    def _say(self, stream: str, entry_id: str, refusal: EntryRefusal, writer: str) -> None:
        now = time.monotonic()
        said = self._said.get((stream, refusal))
        if said is not None and now - said < _SAY_EVERY_S:
            return
        self._said[(stream, refusal)] = now
        count = self.refused[(stream, refusal)]
        log.warning(
            "inspector: entry %s of %s refused (writer %s): %s; %d refused for this reason since start "
            "(said at most once a minute)",
            entry_id, stream, shown(writer), _REASONS[refusal], count,
        )  # fmt: skip
