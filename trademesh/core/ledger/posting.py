"""The ledger's posting: events through the engine core, then into PostgreSQL, once.

Events are posted in batches, one at a time (a lock): the events already in the books
(`ledger_events`) are left out, the core builds and checks each chain (a chain that would
break an account's flag is refused whole, with the reason, and logged), and the batch's chains
go to the store in one transaction. Should the store fail or disagree (a database refusing
what the core allowed), the core is rebuilt from the stored balances, so it never runs ahead
of the books; the caller does not acknowledge the events, and they come again. The API reads
the books as committed (`view`): never a batch still being stored.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from prometheus_client import Counter

from trademesh.core.ledger.engine.core import LedgerCore
from trademesh.core.ledger.engine.events import Event
from trademesh.core.ledger.engine.model import Chain, Transfer
from trademesh.core.ledger.store import LedgerStore

__all__ = ["Poster", "Refused"]

log = logging.getLogger(__name__)

POSTED = Counter("trademesh_ledger_events_posted_total", "Events posted to the books.")
TRANSFERS = Counter("trademesh_ledger_transfers_total", "Transfers posted to the books.")
REFUSED = Counter("trademesh_ledger_events_refused_total", "Events the books refused (an account flag).")
_REMEMBERED_REFUSALS = 100


@dataclass(frozen=True)
class Refused:
    event_id: str
    reason: str
    ts_ns: int


class Poster:
    def __init__(self, store: LedgerStore, on_posted: Callable[[Sequence[Transfer]], None]) -> None:
        self.store = store
        self.core = LedgerCore()
        self.on_posted = on_posted
        self.refusals: deque[Refused] = deque(maxlen=_REMEMBERED_REFUSALS)
        self.posted = 0
        self._lock = asyncio.Lock()
        self._stale = False  # the core may hold chains the store did not keep: rebuild first

    async def load(self) -> None:
        """The core rebuilt from the stored accounts and balances."""
        accounts, balances = await self.store.load()
        self.core = LedgerCore(accounts.values(), balances)

    async def view(self) -> LedgerCore:
        """The books as committed, for the API's reads: a batch the core has posted but the store
        is still keeping is waited for (read alone, the core would show balances PostgreSQL may
        not have yet, and the PnL, read from the store, would not agree with them), and a core
        left ahead of a store that refused or failed is rebuilt first (Unavailable while the
        store cannot answer). Its balances are read without an await in between."""
        async with self._lock:
            if self._stale:
                await self.load()
                self._stale = False
            return self.core

    async def post(self, events: Sequence[Event]) -> list[Chain]:
        """Post what is new of `events`; the chains posted."""
        if not events:
            return []
        async with self._lock:
            if self._stale:
                await self.load()
                self._stale = False
            done = await self.store.posted(e.event_id for e in events)
            chains = self._chains([e for e in events if e.event_id not in done])
            if not chains:
                return []
            self._stale = True
            result = await self.store.post(chains)
            if result.refused or result.duplicates:
                log.error(
                    "ledger: the store refused %s, had %s; the core is rebuilt",
                    result.refused,
                    result.duplicates,
                )
            else:
                self._stale = False
            kept = set(result.posted)
            posted = [c for c in chains if c.event_id in kept]
        self._count(posted)
        return posted

    def _chains(self, events: Sequence[Event]) -> list[Chain]:
        chains: list[Chain] = []
        seen: set[str] = set()
        for event in events:
            if event.event_id in seen:
                continue
            seen.add(event.event_id)
            posting = self.core.post(event)
            if posting.chain is not None:
                chains.append(posting.chain)
                continue
            REFUSED.inc()
            self.refusals.append(Refused(event.event_id, posting.refusal, event.ts_ns))
            log.warning("ledger: refused %s", posting.refusal)
        return chains

    def _count(self, posted: Sequence[Chain]) -> None:
        transfers = [t for chain in posted for t in chain.transfers]
        self.posted += len(posted)
        POSTED.inc(len(posted))
        TRANSFERS.inc(len(transfers))
        if transfers:
            self.on_posted(transfers)
