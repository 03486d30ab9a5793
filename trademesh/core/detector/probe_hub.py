"""Probes shared by the API's StreamProbes calls: one engine probe per port whatever the number
of streams watching it, each stream throttled to its own rate (latest value wins).

The engine's probes are drained (Engine.probe_updates) by the hub only, and fanned out to the
subscribers watching each port; a subscriber sends a port at most `rate_hz` times a second:
its sends of one port are at least 1/rate_hz + 1 ms apart, so any one-second window holds at
most rate_hz of them.
"""

from __future__ import annotations

import contextlib
import math
from collections import Counter
from dataclasses import dataclass, field

from trademesh.core.detector.engine.engine import Engine
from trademesh.core.detector.engine.graph import Endpoint
from trademesh.core.detector.engine.outputs import ProbeUpdate
from trademesh.core.platform.errors import NotFound

__all__ = ["ProbeHub", "ProbeSubscriber"]

_SLACK_NS = 1_000_000


@dataclass
class ProbeSubscriber:
    patch_id: str
    ports: frozenset[str]
    interval_ns: int
    pending: dict[str, ProbeUpdate] = field(default_factory=dict)
    sent: dict[str, int] = field(default_factory=dict)

    def take_due(self, now_ns: int) -> list[ProbeUpdate]:
        """The pending updates whose port may send now (they count as sent)."""
        due = [
            u
            for port, u in self.pending.items()
            if now_ns - self.sent.get(port, -self.interval_ns) >= self.interval_ns
        ]
        for update in due:
            del self.pending[update.port]
            self.sent[update.port] = now_ns
        return sorted(due, key=lambda u: u.port)

    def wait_s(self, now_ns: int) -> float | None:
        """Seconds until a pending update may go, None when nothing is pending."""
        if not self.pending:
            return None
        soonest = min(self.sent.get(port, 0) + self.interval_ns for port in self.pending)
        return max(0.0, (soonest - now_ns) / 1e9)


class ProbeHub:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._watching: Counter[tuple[str, str]] = Counter()
        self._subscribers: list[ProbeSubscriber] = []

    def subscribe(self, patch_id: str, ports: list[str], rate_hz: float, now_ns: int) -> ProbeSubscriber:
        """Watch `ports` ("module.output", checked by the caller) of a patch; each port's
        current value is the first update."""
        interval = math.ceil(1e9 / rate_hz) + _SLACK_NS
        subscriber = ProbeSubscriber(patch_id, frozenset(ports), interval)
        patch = self.engine.patch(patch_id)
        for port in ports:
            if Endpoint.parse(port, "ports") not in patch.probes:  # new, or gone with its module
                self.engine.probe(patch_id, port, now_ns)
            self._watching[(patch_id, port)] += 1
            probe = patch.probes[Endpoint.parse(port, "ports")]
            subscriber.pending[port] = ProbeUpdate(patch_id, port, probe.value, probe.at_ns)
        self._subscribers.append(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: ProbeSubscriber) -> None:
        self._subscribers.remove(subscriber)
        for port in subscriber.ports:
            key = (subscriber.patch_id, port)
            self._watching[key] -= 1
            if self._watching[key] <= 0:
                del self._watching[key]
                # The patch, the module or the probe may have gone meanwhile.
                with contextlib.suppress(NotFound):
                    self.engine.unprobe(subscriber.patch_id, port)

    def drain(self, now_ns: int) -> None:
        """Hand the engine's due probe updates to the subscribers watching their ports."""
        for update in self.engine.probe_updates(now_ns):
            for subscriber in self._subscribers:
                if subscriber.patch_id == update.patch_id and update.port in subscriber.ports:
                    subscriber.pending[update.port] = update
