"""Each leveraged venue's derivatives account into the core, as a journaled input
(risk.v1.JournalMargin): its positions' margin figures and liquidation prices, its balances and
the leverage in force. Read every `every_s` (the account stream's view while it is up, else
GetPositions and GetBalances) and journaled when it changed, so the core watches the distance
to liquidation of each position it holds (liquidation.min_distance_open); read before an intent
whose market's leverage the core does not know yet (GetLeverage), so the intent is checked
against the leverage it would be held at. A venue without leverage (Admin capabilities.leverage
false) is never read: its markets are not leveraged."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

import grpc

from trademesh.core.inspector.account import VenueAccounts
from trademesh.core.inspector.engine.margin import derivative
from trademesh.core.inspector.runtime import Runtime
from trademesh.core.inspector.venues import VenueLinks
from trademesh.core.platform.aio.retry import sleep_unless
from trademesh.risk.v1 import journal_pb2 as jr
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

__all__ = ["MarginWatch"]

log = logging.getLogger(__name__)


class MarginWatch:
    def __init__(self, links: VenueLinks, accounts: VenueAccounts, runtime: Runtime) -> None:
        self.links = links
        self.accounts = accounts
        self.runtime = runtime
        self._last: dict[str, bytes] = {}  # venue -> its last journaled account

    @property
    def timeout_s(self) -> float:
        return self.runtime.executor.timeout_s

    async def ready(self, venue: str, symbol: str) -> None:
        """Before an intent: the venue's account and the market's leverage in force into the
        core when it does not know them yet (nothing when the venue has no leverage, or the
        market is spot)."""
        await self.runtime.executor.learn(venue)
        core = self.runtime.ready_core
        key = (venue, symbol)
        if not self.links.leverage(venue) or not derivative(symbol, core.instruments.get(key)):
            return
        if core.margin.capable.get(venue, False) and key in core.margin.settings:
            return
        await self.read(venue, (symbol,))

    async def read(self, venue: str, symbols: Iterable[str] = ()) -> None:
        """The venue's account (and the leverage of `symbols`) journaled when it changed; a venue
        that does not answer is read again next time."""
        try:
            entry = await self._account(venue, symbols)
        except grpc.aio.AioRpcError as exc:
            log.info("inspector: %s margin not read: %s", venue, exc.code().name)
            return
        said = entry.SerializeToString(deterministic=True)
        if self._last.get(venue) == said and not entry.settings:
            return
        self._last[venue] = said
        await self.runtime.feed(jr.JournalEntry(now_ns=self.runtime.clock(), margin=entry))

    async def _account(self, venue: str, symbols: Iterable[str]) -> jr.JournalMargin:
        desk = self.links.desk(venue)
        entry = jr.JournalMargin(venue=venue, leverage=True, positions_said=True)
        view = self.accounts.live(venue)
        if view is not None:
            positions, balances = list(view.positions.values()), list(view.balances.values())
        else:
            held = await desk.tradeflow.GetPositions(
                tf.GetPositionsRequest(), timeout=self.timeout_s, metadata=desk.metadata
            )
            cash = await desk.tradeflow.GetBalances(
                tf.GetBalancesRequest(), timeout=self.timeout_s, metadata=desk.metadata
            )
            positions, balances = list(held.positions), list(cash.balances)
        entry.positions.extend(sorted(positions, key=lambda p: p.symbol))
        entry.balances.extend(sorted(balances, key=lambda b: b.asset))
        for symbol in symbols:
            answer = await desk.tradeflow.GetLeverage(
                tf.GetLeverageRequest(symbol=symbol), timeout=self.timeout_s, metadata=desk.metadata
            )
            entry.settings.append(answer.setting)
        return entry

    def venues(self) -> list[str]:
        """The leveraged venues the core deals in: a position or an order there, or one that
        reported its account before."""
        core = self.runtime.ready_core
        held = core.book.keys()  # positions and open entries
        dealt = {venue for venue, _ in held} | {v for v, able in core.margin.capable.items() if able}
        return sorted(v for v in dealt if self.links.leverage(v))

    async def run(self, stop: asyncio.Event, every_s: float) -> None:
        while not stop.is_set():
            if self.runtime.core is not None:
                for venue in self.venues():
                    await self.read(venue)
            await sleep_unless(stop, every_s)
