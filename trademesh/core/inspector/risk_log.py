"""Risk events and state transitions: published to the bus stream `risk` (where Studio, the
ledger and ListRiskEvents read them, across the inspector's restarts) and fanned out live to
WatchRiskEvents callers. The same entries carry the protective orders' links to their
positions' intents (read by the ledger only)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from trademesh.bus.v1 import bus_pb2 as bus
from trademesh.core.inspector.lease_guard import Fence, unfenced
from trademesh.core.inspector.notify import Notifier
from trademesh.core.platform.bus.append import Append, Retention
from trademesh.core.platform.bus.codec import decode
from trademesh.core.platform.bus.names import RISK
from trademesh.core.platform.bus.publisher import Publisher
from trademesh.core.platform.bus.reads import read_back, read_range
from trademesh.core.platform.bus.redis import BusRedis
from trademesh.core.platform.errors import Corrupt, InvalidArgument, ResourceExhausted
from trademesh.core.platform.rpc.outbox import Outbox
from trademesh.risk.v1 import inspector_pb2 as rk

__all__ = ["MadeBy", "RiskLog", "RiskWatcher"]

log = logging.getLogger(__name__)

# A risk event a second on average, kept for a month of outage at most.
_RETENTION = Retention(entries_per_s=1, outage_minutes=30 * 24 * 60)
_WATCH_QUEUE = 10_000
_MAX_PAGE = 500
_SCAN = 2_000  # entries read per page of a filtered list
_CLOCKS_MS = 60_000

# The journaled input that made a publication: (its journal stream, its entry id there).
MadeBy = tuple[str, str]


@dataclass
class RiskWatcher:
    matches: Callable[[rk.RiskEvent], bool]
    outbox: Outbox[rk.WatchRiskEventsResponse]


class RiskLog:
    def __init__(
        self,
        redis: BusRedis,
        source: str,
        publisher: Publisher | None = None,
        notifier: Notifier | None = None,
        fence: Fence = unfenced,
    ) -> None:
        self.redis = redis
        self.source = source
        self.publisher = publisher or Publisher(redis)
        self.notifier = notifier
        # Awaited before each publication: a leader that lost its lease (woken from a freeze)
        # publishes nothing, nor notifies anyone (trademesh.core.inspector.lease_guard).
        self.fence = fence
        self._watchers: list[RiskWatcher] = []

    async def publish(
        self,
        events: Sequence[rk.RiskEvent],
        transitions: Sequence[rk.Transition],
        now_ns: int,
        links: Sequence[rk.OrderLink] = (),
        made_by: MadeBy | None = None,
    ) -> None:
        """One bus entry for what one input made; its id becomes the events' id. `links`: the
        protective orders it placed, each with its position's intent (for the ledger's links).
        `made_by`: the journaled input that made them (`published_inputs` finds it again)."""
        if not events and not transitions and not links:
            return
        await self.fence()
        envelope = bus.Envelope(source=self.source, ts_publish_ns=now_ns)
        envelope.risk.events.extend(events)
        envelope.risk.transitions.extend(transitions)
        envelope.risk.links.extend(links)
        if made_by is not None:
            envelope.risk.journal, envelope.risk.journal_entry = made_by
        entry_id = await self.publisher.write(Append(RISK, envelope.SerializeToString(), _RETENTION.maxlen))
        text = entry_id.decode()
        for index, event in enumerate(events):
            event.event_id = f"{text}/{index}"
        self._fan_out(events, transitions)
        if self.notifier is not None:
            self.notifier.events(events)

    async def published_inputs(self, journal: str, since_ms: int) -> set[str]:
        """The ids of `journal`'s inputs whose events this stream holds, among its entries from
        `since_ms` on (an input's entry here is written after its journal entry: a minute earlier
        allows for the two streams' Redis nodes' clocks)."""
        found: set[str] = set()
        lower = f"{max(since_ms - _CLOCKS_MS, 0)}-0"
        while True:
            entries = await read_range(self.redis, RISK, min=lower, count=_SCAN)
            for entry_id, fields in entries:
                with contextlib.suppress(Corrupt):
                    made = decode(fields).risk
                    if made.journal == journal and made.journal_entry:
                        found.add(made.journal_entry)
                lower = f"({entry_id.decode() if isinstance(entry_id, bytes) else entry_id}"
            if len(entries) < _SCAN:
                return found

    def watch(self, matches: Callable[[rk.RiskEvent], bool]) -> RiskWatcher:
        watcher = RiskWatcher(matches, Outbox(_WATCH_QUEUE))
        self._watchers.append(watcher)
        return watcher

    def unwatch(self, watcher: RiskWatcher) -> None:
        if watcher in self._watchers:
            self._watchers.remove(watcher)

    def _fan_out(self, events: Sequence[rk.RiskEvent], transitions: Sequence[rk.Transition]) -> None:
        for watcher in list(self._watchers):
            mine = [e for e in events if watcher.matches(e)]
            if not mine and not transitions:
                continue
            update = rk.WatchRiskEventsResponse(events=mine, transitions=transitions)
            if not watcher.outbox.offer(update):
                self.unwatch(watcher)
                watcher.outbox.end(ResourceExhausted("the watcher fell a whole queue behind: watch again"))

    async def page(
        self, matches: Callable[[rk.RiskEvent], bool], size: int, token: str
    ) -> tuple[list[rk.RiskEvent], str]:
        """Events newest first from `token` (an entry id; empty: the newest), and the next token."""
        size = size or 50
        if not 1 <= size <= _MAX_PAGE:
            raise InvalidArgument.field("page_size", f"{size} is not within 1-{_MAX_PAGE}")
        upper = "+" if not token else f"({_check_token(token)}"
        found: list[rk.RiskEvent] = []
        last = ""  # the last entry taken whole: the next page starts after it
        while True:
            entries = await read_back(self.redis, RISK, max=upper, min="-", count=_SCAN)
            for entry_id, fields in entries:
                text = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
                new = _events(text, fields, matches)
                if found and len(found) + len(new) > size:
                    return found, last
                found.extend(new)
                last, upper = text, f"({text}"
            if len(entries) < _SCAN:
                return found, ""


def _check_token(token: str) -> str:
    head, _, tail = token.partition("-")
    if not (head.isdigit() and tail.isdigit()):
        raise InvalidArgument.field("page_token", "is not a token this API gave")
    return token


def _events(
    entry_id: str, fields: dict[bytes, bytes], matches: Callable[[rk.RiskEvent], bool]
) -> list[rk.RiskEvent]:
    try:
        envelope = decode(fields)
    except Exception:  # not ours to judge: skipped, said once
        log.warning("inspector: risk entry %s cannot be read; skipped", entry_id)
        return []
    out = []
    for index, event in enumerate(envelope.risk.events):
        event.event_id = f"{entry_id}/{index}"
        if matches(event):
            out.append(event)
    # Newest first within the entry too.
    return out[::-1]
