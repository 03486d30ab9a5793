"""Reconciliation: every N seconds the inspector compares its own book with each venue's.

- A position that differs from the core's (plus a legacy position's size) by the same amount on
  two checks in a row (trademesh.core.inspector.discrepancy: two different differences are two fills in
  flight, one at each check, not a divergence) is a divergence: a NOTICE risk event, and the
  venue is stood down until the sizes agree again (a second NOTICE says so). The stand-down is
  a journaled input of the core (`venue_stand`), whose checks refuse the venue's entries from
  every way in (the API, the bus) and after a restart.
- An order open at the venue that the inspector never placed is reported, once.
- An order the inspector placed that the core no longer works (its position closed, its pair
  filled) but is still open at the venue is cancelled: no orphaned stop is left behind. One the
  core is cancelling but the venue still lists has its state asked (the core cancels it again).
- A venue's refusal of a reduce-only order as beyond what its open orders leave (the executor
  says it: `wake`) has that venue's open orders compared at once, not at the next round.
- When a ledger is registered, each venue's balances are compared with the ledger's books (the
  cash it expects per asset, Ledger.GetBalances): the same difference of an asset on two checks
  in a row (trademesh.core.inspector.discrepancy: two different ones are two fills in flight, not one
  alarm) is a NOTICE (`reconcile.ledger`), and a second NOTICE when they agree again. The venue
  is not stood down: the books may be behind (a ledger down) while the positions are right.

The positions and balances come from each venue's account stream (TradeFlow.StreamAccount,
trademesh.core.inspector.account) while it is up, and are asked (GetPositions, GetBalances) only while it
is not; the open orders are asked every round. The legacy positions at start are always asked.

At a fresh start (no journal) every position found is legacy: reported, and never touched.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol

import grpc

from trademesh.core.domain.decimals import format_decimal
from trademesh.core.inspector.account import VenueAccounts
from trademesh.core.inspector.discrepancy import Discrepancies
from trademesh.core.inspector.engine.actions import CancelOrder
from trademesh.core.inspector.engine.positions import Key
from trademesh.core.inspector.metrics import ACCOUNT_READS, DIVERGENCES, RECONCILIATIONS
from trademesh.core.inspector.runtime import Runtime
from trademesh.core.inspector.takeover import interim
from trademesh.core.inspector.venues import VenueLinks
from trademesh.core.platform.aio.retry import wait_any
from trademesh.core.platform.rpc.client import auth_metadata
from trademesh.ledger.v1 import ledger_pb2 as lg
from trademesh.risk.v1 import inspector_pb2 as rk
from trademesh.risk.v1 import journal_pb2 as jr
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

__all__ = ["Reconciler"]

log = logging.getLogger(__name__)

ZERO = Decimal(0)
_STRIKES = 2


class Shell(Protocol):
    @property
    def runtime(self) -> Runtime: ...

    @property
    def links(self) -> VenueLinks: ...

    @property
    def legacy(self) -> dict[Key, tuple[Decimal, Decimal | None]]: ...

    @property
    def stood_down(self) -> dict[str, str]: ...  # the core's venues_down: read, never written

    @property
    def accounts(self) -> VenueAccounts: ...


def _notice(
    now_ns: int, policy: str, reason: str, venue: str, symbol: str = "", **values: str
) -> rk.RiskEvent:
    return rk.RiskEvent(
        ts_ns=now_ns, action=rk.RISK_ACTION_NOTICE, policy=policy, reason=reason, venue=venue, symbol=symbol,
        values=[rk.Value(name=k, value=v) for k, v in values.items()],
    )  # fmt: skip


@dataclass
class Divergence:
    diverged: list[tuple[str, Decimal, Decimal]] = field(default_factory=list)
    differing: list[str] = field(default_factory=list)


class Reconciler:
    def __init__(self, shell: Shell) -> None:
        self.shell = shell
        self.checks = 0
        self._sizes: Discrepancies[Key] = Discrepancies(repeats=_STRIKES)
        self._books: Discrepancies[Key] = Discrepancies(repeats=_STRIKES)
        self._reported: set[str] = set()
        self._reported_books: dict[Key, bool] = {}
        self._woken: set[str] = set()  # venues whose open orders are to be compared now
        self._wakeup = asyncio.Event()

    @property
    def runtime(self) -> Runtime:
        return self.shell.runtime

    async def _positions(self, venue: str, streamed: bool = True) -> dict[str, tf.Position]:
        """The venue's positions: as its account stream has them when it is up, else asked."""
        view = self.shell.accounts.live(venue) if streamed else None
        ACCOUNT_READS.labels("positions", "asked" if view is None else "stream").inc()
        if view is not None:
            return {s: p for s, p in view.positions.items() if p.size and Decimal(p.size) != 0}
        desk = self.shell.links.desk(venue)
        answer = await desk.tradeflow.GetPositions(
            tf.GetPositionsRequest(),
            timeout=self.runtime.executor.timeout_s,
            metadata=desk.metadata,
        )
        return {p.symbol: p for p in answer.positions if p.size and Decimal(p.size) != 0}

    async def find_legacy(self) -> None:
        """Positions at the venues before the inspector's first start: legacy, never touched.
        A fill stamped before a venue was asked is in its answer: the shell leaves such a fill
        of an order not ours out, when the bus brings it after (Runtime.legacy_as_of)."""
        events = []
        for venue in self.shell.links.names():
            asked_ns = self.runtime.clock()
            try:
                positions = await self._positions(venue, streamed=False)
            except Exception as exc:  # a venue away (gRPC error, or not known yet): its positions unknown
                log.warning("inspector: %s positions at start: %s", venue, exc)
                continue
            self.runtime.legacy_as_of[venue] = asked_ns
            for symbol, position in positions.items():
                legacy = jr.JournalLegacy(
                    venue=venue, symbol=symbol, size=position.size, entry_price=position.entry_price
                )
                await self.runtime.feed(jr.JournalEntry(now_ns=self.runtime.clock(), legacy=legacy))
                reason = "a position found at start: reported, never touched"
                events.append(
                    _notice(
                        self.runtime.clock(),
                        "legacy",
                        reason,
                        venue,
                        symbol,
                        size=position.size,
                        entry_price=position.entry_price,
                    )
                )
        await self.runtime.risk_log.publish(events, [], self.runtime.clock())

    def wake(self, venue: str) -> None:
        """A venue refused a reduce-only order as beyond what its open orders leave of the
        position: it holds orders the core does not count (an orphan of ours, a cancel that did
        not go through). Its open orders are compared now, not at the next round (a chaos run:
        three refusals in a row, 3.5 s, made the core give the position up)."""
        self._woken.add(venue)
        self._wakeup.set()

    async def run(self, stop: asyncio.Event, every_s: float) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time() + every_s
        while not stop.is_set():
            if await self._woken_before(stop, due - loop.time()):
                await self._orders_now()
                continue
            if stop.is_set():
                return
            await self.check_once()
            due = loop.time() + every_s

    async def _woken_before(self, stop: asyncio.Event, delay_s: float) -> bool:
        """Wait up to delay_s for stop or a wake; True when woken."""
        if not self._woken:
            self._wakeup.clear()
            await wait_any(stop, self._wakeup, timeout_s=max(delay_s, 0.0))
        return bool(self._woken) and not stop.is_set()

    async def _orders_now(self) -> None:
        """The woken venues' open orders compared (the positions wait for the round: two checks
        close together would see a fill in flight twice, as a divergence)."""
        events: list[rk.RiskEvent] = []
        while self._woken:
            venue = self._woken.pop()
            try:
                events += await self._compare_orders(venue, await self._open_orders(venue))
            except grpc.aio.AioRpcError as exc:
                log.info("inspector: the open orders of %s: %s", venue, exc.code().name)
        await self.runtime.risk_log.publish(events, [], self.runtime.clock())

    async def _open_orders(self, venue: str) -> list[tf.Order]:
        desk = self.shell.links.desk(venue)
        opened = await desk.tradeflow.ListOpenOrders(
            tf.ListOpenOrdersRequest(),
            timeout=self.runtime.executor.timeout_s,
            metadata=desk.metadata,
        )
        return list(opened.orders)

    async def check_once(self) -> list[rk.RiskEvent]:
        events: list[rk.RiskEvent] = []
        for venue in self.shell.links.names():
            try:
                events += await self._check(venue)
            except grpc.aio.AioRpcError as exc:
                log.warning("inspector: reconciling %s: %s", venue, exc.code().name)
        self.checks += 1
        RECONCILIATIONS.inc()
        self._show_divergences()
        await self.runtime.risk_log.publish(events, [], self.runtime.clock())
        return events

    def _show_divergences(self) -> None:
        DIVERGENCES.labels("position").set(len(self.shell.stood_down))
        DIVERGENCES.labels("ledger").set(sum(1 for said in self._reported_books.values() if said))

    async def _check(self, venue: str) -> list[rk.RiskEvent]:
        positions = await self._positions(venue)
        opened = await self._open_orders(venue)
        events = await self._stand(venue, self._diverged(venue, positions))
        events += await self._compare_orders(venue, opened)
        try:
            return events + await self._compare_books(venue)
        except grpc.aio.AioRpcError as exc:  # the books unreadable now: the positions still count
            log.info("inspector: the ledger's books of %s: %s", venue, exc.code().name)
            return events

    async def _compare_books(self, venue: str) -> list[rk.RiskEvent]:
        ledger = self.shell.links.ledger()
        if ledger is None:
            return []
        timeout = self.runtime.executor.timeout_s
        books = await ledger.GetBalances(
            lg.GetBalancesRequest(venue=venue, ledger=lg.LEDGER_KIND_CASH),
            timeout=timeout,
            metadata=auth_metadata(),
        )
        expected = {
            b.account.asset: Decimal(b.balance) for b in books.balances if b.account.code_name == "venue_cash"
        }
        if not expected:
            return []  # the books have not opened this venue
        return self._books_agree(venue, await self._balances(venue), expected)

    async def _balances(self, venue: str) -> dict[str, Decimal]:
        """Each asset's total at the venue: as its account stream has it when up, else asked."""
        view = self.shell.accounts.live(venue)
        ACCOUNT_READS.labels("balances", "asked" if view is None else "stream").inc()
        if view is not None:
            balances = list(view.balances.values())
        else:
            held = await self.shell.links.desk(venue).tradeflow.GetBalances(
                tf.GetBalancesRequest(),
                timeout=self.runtime.executor.timeout_s,
                metadata=self.shell.links.desk(venue).metadata,
            )
            balances = list(held.balances)
        return {b.asset: Decimal(b.total or "0") for b in balances}

    def _books_agree(
        self, venue: str, actual: dict[str, Decimal], expected: dict[str, Decimal]
    ) -> list[rk.RiskEvent]:
        now = self.runtime.clock()
        events = []
        for asset in sorted(set(actual) | set(expected)):
            key = (venue, f"ledger/{asset}")
            theirs, ours = actual.get(asset, ZERO), expected.get(asset, ZERO)
            alarm = self._books.check(key, theirs - ours)
            if theirs == ours:
                if self._reported_books.pop(key, False):
                    events.append(
                        _notice(now, "reconcile.ledger", f"{asset} agrees with the ledger again", venue)
                    )
                continue
            if alarm and not self._reported_books.get(key):
                self._reported_books[key] = True
                venue_total, ledger_total = format_decimal(theirs), format_decimal(ours)
                reason = f"{asset} is {venue_total} at the venue, {ledger_total} in the ledger's books"
                events.append(
                    _notice(now, "reconcile.ledger", reason, venue, asset=asset, venue_total=venue_total,
                            ledger_total=ledger_total)
                )  # fmt: skip
        return events

    def _diverged(self, venue: str, positions: dict[str, tf.Position]) -> Divergence:
        """Each position that differs now, and those that differed by the same amount twice in a
        row (symbol, the venue's size, the book's)."""
        core = self.runtime.ready_core
        ours = {k[1]: p.size for k, p in core.book.positions.positions.items() if k[0] == venue and p.size}
        found = Divergence()
        for symbol in sorted(set(ours) | set(positions)):
            legacy = self.shell.legacy.get((venue, symbol), (ZERO, None))[0]
            theirs = Decimal(positions[symbol].size) if symbol in positions else ZERO
            expected = ours.get(symbol, ZERO) + legacy
            if self._sizes.check((venue, symbol), theirs - expected):
                found.diverged.append((symbol, theirs, expected))
            if theirs != expected:
                found.differing.append(symbol)
        return found

    async def _stand(self, venue: str, found: Divergence) -> list[rk.RiskEvent]:
        """The venue stood down (a journaled input: the core refuses its entries) on a divergence,
        and taken up again once its positions agree (every one: a difference that changed while
        it stood down is no agreement)."""
        now = self.runtime.clock()
        differ = found.diverged
        if not differ:
            if venue not in self.shell.stood_down or found.differing:
                return []
            await self._journal_stand(venue, "")
            return [
                _notice(now, "reconcile.resolved", "the venue's positions agree again: intents taken", venue)
            ]
        if venue in self.shell.stood_down:
            return []
        symbol, theirs, expected = differ[0]
        venue_size, book_size = format_decimal(theirs), format_decimal(expected)
        reason = f"position {symbol} is {venue_size} at the venue, {book_size} in our book"
        await self._journal_stand(venue, reason)
        return [
            _notice(now, "reconcile.position", reason + ": the venue is stood down", venue, symbol,
                    venue_size=venue_size, book_size=book_size)
        ]  # fmt: skip

    async def _journal_stand(self, venue: str, reason: str) -> None:
        stand = jr.JournalVenueStand(venue=venue, reason=reason)
        await self.runtime.feed(jr.JournalEntry(now_ns=self.runtime.clock(), venue_stand=stand))

    async def _compare_orders(self, venue: str, orders: list[tf.Order]) -> list[rk.RiskEvent]:
        core, executor = self.runtime.ready_core, self.runtime.executor
        events = []
        for order in orders:
            coid = order.client_order_id
            working = core.book.orders.get(coid)
            if working is not None:
                if working.cancelling and not working.unknown:  # its cancel did not take: asked
                    asked = jr.JournalEntry(now_ns=self.runtime.clock(), placement_unknown=coid)
                    await self.runtime.feed(asked)
                continue
            now = self.runtime.clock()
            if interim(
                coid
            ):  # a takeover's, left open (trademesh.core.inspector.takeover): the core protects
                await executor.cancel_outside_core(venue, coid, "takeover's interim protection left open")
                continue
            if coid in self.runtime.audit.records:  # ours, finished in the core: an orphan
                await executor.cancel(CancelOrder(coid, venue, order.symbol, "orphaned: no longer worked"))
                reason = "an order of ours left open: cancelled"
                events.append(
                    _notice(now, "reconcile.orphan", reason, venue, order.symbol, client_order_id=coid)
                )
            elif (coid or order.order_id) not in self._reported:
                self._reported.add(coid or order.order_id)
                reason = "an order open at the venue that the inspector did not place"
                ids = {"order_id": order.order_id, "client_order_id": coid}
                events.append(_notice(now, "reconcile.unknown_order", reason, venue, order.symbol, **ids))
        return events
