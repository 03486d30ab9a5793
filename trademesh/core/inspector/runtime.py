"""The shell around the inspector's engine core: every input becomes a journal entry, written
before the core sees it (trademesh.core.inspector.input_journal), applied
(trademesh.core.inspector.driver), its risk events and transitions published
(trademesh.core.inspector.risk_log) and its order actions carried out
(trademesh.core.inspector.executor), whose answers come back as inputs in turn.

Time is the shell's: `clock` (wall time, ns) is read here and written into each entry.

An intent is checked against the market as of its signal's time (`Intent.ts_signal_ns`: the
board's quotes by event time, trademesh.core.inspector.market), as a backtest checks it at that time; the
quote journaled with it is that one.

Timers: the core asks to be woken (a refused protective order's retry, a coalescing window's
end, the unprotected bound); trademesh.core.inspector.timers wakes it with a journaled timer entry.

Instrument facts: before the core checks an intent, the facts of its market (minimum size and
notional, lot and tick size, from the venue's ListInstruments) are journaled when the core does
not have them yet or they changed, so its protective orders are sized to what the venue takes.

Marks: the core does not see every tick. Once a second (`mark_every_s`) each market the core
holds a position or an order in is marked at its latest mid (or last trade) when that changed:
a journaled input like any other, so a replay sees the same marks the live core saw.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol

from trademesh.advisor.v1 import messages_pb2 as am
from trademesh.common.v1 import common_pb2 as common
from trademesh.core.domain.decimals import format_decimal
from trademesh.core.inspector.audit import Audit
from trademesh.core.inspector.convert import (
    facts_from_pb,
    intent_from_pb,
    market_to_pb,
    risk_event_to_pb,
)
from trademesh.core.inspector.driver import apply_entry, new_core
from trademesh.core.inspector.engine.actions import Amend, OrderAction, OrderRole
from trademesh.core.inspector.engine.core import InspectorCore
from trademesh.core.inspector.engine.diff import diff_policies, loosenings
from trademesh.core.inspector.engine.events import RiskAction, RiskOutput, RiskState, RiskVerdict
from trademesh.core.inspector.engine.policies import ProtectPolicy
from trademesh.core.inspector.engine.policy_dump import dump_policies
from trademesh.core.inspector.engine.policy_file import read_policies
from trademesh.core.inspector.executor import Executor
from trademesh.core.inspector.input_journal import InputJournal, entry_text
from trademesh.core.inspector.market import MarketBoard
from trademesh.core.inspector.metrics import STATE, VERDICTS
from trademesh.core.inspector.published import Owed, Publications, RiskRecord, made_of
from trademesh.core.inspector.risk_log import RiskLog
from trademesh.core.inspector.shipped import operator_policies
from trademesh.core.inspector.snapshot import audit_from_snapshot
from trademesh.core.inspector.snapshots import SNAPSHOT_EVERY, Snapshots
from trademesh.core.inspector.timers import CoreTimer
from trademesh.core.platform.aio.retry import sleep_unless
from trademesh.core.platform.aio.unbroken import Unbroken
from trademesh.core.platform.errors import FailedPrecondition, InvalidArgument
from trademesh.risk.v1 import inspector_pb2 as rk
from trademesh.risk.v1 import journal_pb2 as jr
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

__all__ = ["MANUAL", "MarginReader", "Runtime", "Submitted"]

log = logging.getLogger(__name__)


class MarginReader(Protocol):
    async def ready(self, venue: str, symbol: str) -> None: ...


MANUAL = "manual"  # the strategy of an intent submitted without one (Studio's order ticket)
_MANUAL_TTL_NS = 30 * 1_000_000_000
_FILLS_WAIT_S = 1.0
_ANSWERS_KEPT = 10_000  # the venues' latest answers kept, per order (the newest orders)
_SHOWN_CHARS = 128  # of a refused intent's ids on its BLOCK event
_TERMINAL = frozenset(
    {tf.ORDER_STATUS_FILLED, tf.ORDER_STATUS_CANCELED, tf.ORDER_STATUS_REJECTED, tf.ORDER_STATUS_EXPIRED}
)
_COMMANDS = {
    rk.MODE_STAND_DOWN: jr.JournalCommand.KIND_STAND_DOWN,
    rk.MODE_RESUME: jr.JournalCommand.KIND_RESUME,
    rk.MODE_CLOSE_ALL: jr.JournalCommand.KIND_CLOSE_ALL,
}


@dataclass
class Submitted:
    """An intent's verdict, and its order as the venue answered (ALLOW)."""

    verdict: RiskVerdict
    reasons: list[rk.RiskEvent]
    order: tf.Order | None = None

    def log(self, origin: str, intent: am.Intent) -> None:
        """One line for the verdict (under the task's trace id, when it has one): `origin` is
        "manual" (the API's), "signal" (an advisor's intent from the bus) or "request" (an
        intent a strategy's position request made)."""
        placed = self.verdict.orders[0].client_order_id if self.verdict.allowed else ""
        outcome = f"order {placed}" if placed else "; ".join(r.reason for r in self.reasons)
        side = common.Side.Name(intent.side).removeprefix("SIDE_")
        log.info(
            "inspector: %s intent %s %s %s %s %s: %s, %s",
            origin, intent.intent_id, intent.venue, intent.symbol, side, intent.size,
            self.verdict.action.name, outcome,
        )  # fmt: skip


@dataclass
class PolicySource:
    text: str
    path: str = ""
    loaded_ns: int = 0

    @property
    def protect(self) -> ProtectPolicy:
        """Its protective distances (read over the shipped set), for a takeover before the replay."""
        return operator_policies(self.text, self.path or None).policies.protect


@dataclass
class _Marks:
    fed: dict[tuple[str, str], Decimal] = field(default_factory=dict)


class Runtime:
    def __init__(
        self,
        journal: InputJournal,
        risk_log: RiskLog,
        executor_factory: Callable[[Runtime], Executor],
        board_factory: Callable[[Runtime], MarketBoard],
        clock: Callable[[], int],
        instance: str = "inspector",
        snapshot_every: int = SNAPSHOT_EVERY,
    ) -> None:
        self.instance = instance
        self.journal = journal
        self.risk_log = risk_log
        self.clock = clock
        self.executor = executor_factory(self)
        self.executor.venue_filled = self._venue_filled
        self.timer = CoreTimer(lambda: None if self.core is None else self.core.wake_ns, self.feed, clock)
        self.board = board_factory(self)
        self.board.held = self.held_markets
        self.audit = Audit(self._face_of, self._multiplier_of)
        self.core: InspectorCore | None = None
        self.policies = PolicySource("")
        self.orders: dict[str, tf.Order] = {}  # client order id -> the venue's latest answer
        self.replayed = 0
        # SubmitIntent's waits for the fills its answer reports: order -> (size, when in).
        self._fills_awaited: dict[str, tuple[Decimal, asyncio.Future[None]]] = {}
        self._marks = _Marks()
        # Venue -> when its positions were read as legacy (a fresh start): fills stamped before.
        self.legacy_as_of: dict[str, int] = {}
        self.snapshots = Snapshots(journal, snapshot_every)
        self._publications = Publications()
        # The API's commands run here: a caller that leaves (its deadline passed across a freeze)
        # does not stop an order's protection halfway (trademesh.core.platform.aio.unbroken).
        self.commands = Unbroken("inspector")
        # Reads the leveraged venues' accounts into the core (trademesh.core.inspector.margin_watch); the
        # service sets it.
        self.margin: MarginReader | None = None

    @property
    def ready_core(self) -> InspectorCore:
        if self.core is None:
            raise FailedPrecondition("the inspector is starting: its state is being rebuilt")
        return self.core

    # ---- start: replay, or begin

    async def start(
        self,
        policies: PolicySource,
        starting_equity: Decimal,
        replayed: Callable[[], Awaitable[object]] | None = None,
    ) -> None:
        """Rebuild the core from the journal (or begin one), then ask the venues about every
        order the journal left working, before anything new is placed. `replayed` runs between
        the two (the takeover's interim protection withdrawn: trademesh.core.inspector.takeover)."""
        owed = Owed()
        async for entry_id, entry in self.journal.entries():
            if self.core is None:
                self.core = new_core(entry)
                self._began(entry)
            else:
                result = apply_entry(self.core, entry)
                self._observe(entry, result)
                owed.add(entry_id, made_of(result, entry.now_ns))
            self.snapshots.applied(entry_id, entry)
            self.replayed += 1
        await self._publish_owed(owed)
        given = operator_policies(policies.text, policies.path or None).policies
        if self.core is None:
            start = jr.JournalStart(
                policies=dump_policies(given),
                starting_equity=format_decimal(starting_equity),
                instance=self.instance,
            )
            entry = jr.JournalEntry(now_ns=self.clock(), start=start)
            self.snapshots.applied(await self.journal.append(entry), entry)
            self.core = new_core(entry)
            self._began(entry)
        elif given != self.core.policies:
            await self.feed(jr.JournalEntry(now_ns=self.clock(), policies=dump_policies(given)))
        self.policies = policies
        self._show_state()
        log.info("inspector: %d journal entries replayed; state %s", self.replayed, self.core.state.value)
        self.snapshots.take(self.core, self.audit)
        if replayed is not None:
            await replayed()
        await self._recover()

    async def _publish_owed(self, owed: Owed) -> None:
        """What replayed inputs made and the stream `risk` has no entry for (published_inputs):
        the inspector was killed after journaling them, before publishing
        (trademesh.core.inspector.published)."""
        if not owed.made:
            return
        stream = self.journal.stream
        published = await self.risk_log.published_inputs(stream, owed.since_ms)
        missing = [(i, m) for i, m in owed.made if entry_text(i) not in published]
        for entry_id, made in missing:
            await self.risk_log.publish(
                made.events, made.transitions, made.now_ns, made.links, (stream, entry_text(entry_id))
            )
        if missing:
            log.warning(
                "inspector: %d replayed inputs' events were never published (killed in between): now",
                len(missing),
            )

    def _began(self, entry: jr.JournalEntry) -> None:
        """The journal's first entry read: a snapshot holds the audit as it was."""
        if entry.WhichOneof("input") == "snapshot":
            self.audit = audit_from_snapshot(entry.snapshot, self._face_of, self._multiplier_of)

    def _face_of(self, venue: str, symbol: str) -> Decimal | None:
        """An inverse contract's face value, as the core knows the venue's instruments."""
        return None if self.core is None else self.core.book.inverse((venue, symbol))

    def _multiplier_of(self, venue: str, symbol: str) -> Decimal:
        """A linear contract's value a unit of size, as the core knows the venue's instruments."""
        return Decimal(1) if self.core is None else self.core.book.multiplier((venue, symbol))

    async def _recover(self) -> None:
        """Working orders after a replay: emulated stops are held again; every other order is
        queried at its venue (it may have filled, or never been placed)."""
        core = self.ready_core
        for working in list(core.book.orders):
            order = working.order
            await self.executor.learn(order.venue)
            # Unknown (the venue did not answer): queried below, as any order it may hold.
            emulated = self.executor.links.knows(order.venue) and not self.executor.native_stops(order.venue)
            if order.role is OrderRole.STOP_LOSS and emulated and not working.triggered:
                self.executor.stops.hold(order)
                continue
            self.board.follow(order.venue, order.symbol)
            await self.feed(jr.JournalEntry(now_ns=self.clock(), placement_unknown=order.client_order_id))
        for key, position in list(core.book.positions.positions.items()):
            if position.size != 0:
                self.board.follow(*key)
                await self.learn(*key)

    async def learn(self, venue: str, symbol: str) -> None:
        """The market's instrument facts into the core (journaled) when it has none or they
        changed; nothing when the venue cannot be asked now (asked again at the next intent)."""
        listed = await self.executor.ticks.instruments(venue)
        item = None if listed is None else listed.get(symbol)
        if item is None or self.ready_core.instruments.get((venue, symbol)) == facts_from_pb(item):
            return
        facts = jr.JournalInstruments(venue=venue, instruments=[item])
        await self.feed(jr.JournalEntry(now_ns=self.clock(), instruments=facts))

    async def on_listing(self, venue: str, delisted: frozenset[str]) -> int:
        """A venue's delisted markets now (md.{<venue>}.instruments): each change from what the core
        holds journaled as a listing input (its NOTICE goes to `risk`); how many changed."""
        held = {symbol for v, symbol in self.ready_core.book.delisted if v == venue}
        changes = [(s, True) for s in sorted(delisted - held)] + [(s, False) for s in sorted(held - delisted)]
        for symbol, now_delisted in changes:
            listing = jr.JournalListing(venue=venue, symbol=symbol, delisted=now_delisted)
            await self.feed(jr.JournalEntry(now_ns=self.clock(), listing=listing))
        return len(changes)

    # ---- inputs

    async def feed(self, entry: jr.JournalEntry) -> RiskOutput | RiskVerdict:
        """Journal the input, apply it, publish what it made, carry out its actions.

        Inputs are applied in the journal's order: appends complete in the order they were made
        (trademesh.core.platform.bus.publisher, Publisher.write), and nothing is awaited between an
        append's end and the apply."""
        entry_id = await self.journal.append(entry)
        result = apply_entry(self.ready_core, entry)
        self.timer.nudge()
        self._observe(entry, result)
        self.snapshots.applied(entry_id, entry)
        output = result.output if isinstance(result, RiskVerdict) else result
        if output.transitions:
            self._show_state()
        made = made_of(result, entry.now_ns)
        if not made:
            if self._publications.settled:
                self.snapshots.take(self.ready_core, self.audit)
            await self._carry_out(output.actions)
            return result
        # The orders go out while the risk events are written (they may share a round trip with
        # the orders' acknowledgements' journal entries: Publisher.write).
        published = asyncio.ensure_future(self._publish(made, entry_text(entry_id)))
        try:
            await self._carry_out(output.actions)
        finally:
            await published
        return result

    async def _publish(self, made: RiskRecord, entry_id: str) -> None:
        """What an input made, named by its journal entry. Until it is written no snapshot is
        taken; if it fails, none until a restart has published it (Publications)."""
        self._publications.running += 1
        try:
            made_by = (self.journal.stream, entry_id)
            await self.risk_log.publish(made.events, made.transitions, made.now_ns, made.links, made_by)
        except BaseException:
            self._publications.failed = True
            raise
        finally:
            self._publications.running -= 1

    async def _carry_out(self, actions: Sequence[OrderAction]) -> None:
        """The actions in order, but the amendments of protective orders for their price alone
        (the same size: the levels moved), which go all at once after the rest. A burst of
        entries moves the levels with each: eight such amendments, one round trip after the
        other, held the next fill (and the layer it needed) for 250 ms."""
        book = self.ready_core.book.orders
        first: list[OrderAction] = []
        moved: list[OrderAction] = []
        for action in actions:
            old = book.get(action.client_order_id) if isinstance(action, Amend) else None
            repriced = isinstance(action, Amend) and old is not None and action.order.size == old.remaining
            (moved if repriced else first).append(action)
        await self.executor.carry_out(first)
        await self.executor.carry_out_together(moved)

    def _venue_filled(self, client_order_id: str) -> Decimal | None:
        working = None if self.core is None else self.core.book.orders.get(client_order_id)
        return None if working is None else working.venue_filled

    def _observe(self, entry: jr.JournalEntry, result: RiskOutput | RiskVerdict) -> None:
        """What the shell keeps beside the core: the venues' answers and the audit."""
        kind = entry.WhichOneof("input")
        if kind == "order_update":
            self._answer(entry.order_update)
        self.audit.observe(entry, result)
        if kind == "fill" and (awaited := self._fills_awaited.get(entry.fill.fill.client_order_id)):
            record = self.audit.records.get(entry.fill.fill.client_order_id)
            if record is not None and record.filled >= awaited[0] and not awaited[1].done():
                awaited[1].set_result(None)

    async def submit(self, message: am.Intent) -> Submitted:
        """An intent from the bus or the API: checked, and placed when allowed."""
        core = self.ready_core
        intent = intent_from_pb(message)
        if core.handled(intent.intent_id):
            raise FailedPrecondition(f"intent {intent.intent_id} was handled already")
        await self.check_market(intent.venue, intent.symbol)
        # The market as of the intent's signal time, as the backtest checks it (the latest when
        # it has none, or the board's quotes do not reach back).
        await self.learn(intent.venue, intent.symbol)
        if self.margin is not None:  # a leveraged market's account and leverage known first
            await self.margin.ready(intent.venue, intent.symbol)
        market = await self.board.view(intent.venue, intent.symbol, message.ts_signal_ns)
        if market.last is None and message.entry_price:
            market = type(market)(market.bid, market.ask, Decimal(message.entry_price))
        journaled = jr.JournalIntent(intent=message)
        market_to_pb(market, journaled)
        result = await self.feed(jr.JournalEntry(now_ns=self.clock(), intent=journaled))
        assert isinstance(result, RiskVerdict)
        VERDICTS.labels(result.action.value).inc()
        reasons = [risk_event_to_pb(e) for e in result.reasons]
        order = None
        if result.allowed:
            order = self.orders.get(result.orders[0].client_order_id)
            if order is not None:
                await self._fills_in(order)
        return Submitted(result, reasons, order)

    async def check_market(self, venue: str, symbol: str) -> None:
        """NotFound for a venue nobody serves, InvalidArgument for a symbol it does not list: an
        intent for either is refused as such before anything follows its market (Unavailable
        when the venue's instruments cannot be read)."""
        await self.board.check(venue, symbol, "intent.symbol")

    async def refuse_invalid(self, message: am.Intent, error: InvalidArgument) -> None:
        """An intent from the bus whose fields mean nothing as an order (the API answers
        INVALID_ARGUMENT instead): a BLOCK on the risk stream naming each bad field. The core
        never sees it (nothing journaled); a redelivery is refused the same way."""
        bad = {v.field for v in error.violations}
        about = {
            name: getattr(message, name)[:_SHOWN_CHARS]
            for name in ("intent_id", "strategy_id", "venue", "symbol")
            if f"intent.{name}" not in bad
        }
        event = rk.RiskEvent(
            ts_ns=self.clock(), action=rk.RISK_ACTION_BLOCK, policy="intent.invalid",
            reason="; ".join(f"{v.field}: {v.description}" for v in error.violations),
            values=[rk.Value(name=v.field, value=v.description) for v in error.violations], **about,
        )  # fmt: skip
        VERDICTS.labels(RiskAction.BLOCK.value).inc()
        await self.risk_log.publish([event], [], event.ts_ns)

    async def _fills_in(self, order: tf.Order) -> None:
        """Wait (a moment at most) for the fills the venue's answer reports: they come on its
        execution stream, and the caller will read the position next."""
        coid = order.client_order_id
        wanted = Decimal(order.filled_size or "0")
        record = self.audit.records.get(coid)
        if record is None or record.filled >= wanted:
            return
        done = asyncio.get_running_loop().create_future()
        self._fills_awaited[coid] = (wanted, done)
        try:
            await asyncio.wait_for(done, _FILLS_WAIT_S)
        except TimeoutError:
            log.warning("inspector: the fills of %s did not come within %g s", coid, _FILLS_WAIT_S)
        finally:
            self._fills_awaited.pop(coid, None)

    def manual(self, message: am.Intent) -> am.Intent:
        """A copy of an intent given through the API, with what it may leave out filled in."""
        intent = am.Intent()
        intent.CopyFrom(message)
        now = self.clock()
        intent.intent_id = intent.intent_id or f"manual-{uuid.uuid4().hex}"
        intent.strategy_id = intent.strategy_id or MANUAL
        intent.ts_intent_ns = intent.ts_intent_ns or now
        intent.expires_at_ns = intent.expires_at_ns or now + _MANUAL_TTL_NS
        return intent

    async def on_execution(self, execution: tf.Execution) -> None:
        """A venue's order update, with its fill when it is one (the fill first: the update may
        finish the order)."""
        now = self.clock()
        if execution.HasField("fill") and self._in_legacy(execution):
            log.info(
                "inspector: fill %s at %s of an order not ours is older than the legacy positions read "
                "at start: counted there", execution.fill.fill_id, execution.venue,
            )  # fmt: skip
        elif execution.HasField("fill"):
            if execution.order.liquidation:  # the venue's liquidation order: its fill is one
                execution.fill.liquidation = True
            fill = jr.JournalFill(venue=execution.venue, fill=execution.fill)
            await self.feed(jr.JournalEntry(now_ns=now, fill=fill))
        order = execution.order
        if not order.venue:
            order.venue = execution.venue
        # An entry's update saying more filled than its fills heard is the venue's word the core
        # protects on (an execution's fill is fed first, so its own update says nothing more).
        filled = Decimal(order.filled_size or "0")
        if self.ready_core.heeds(order.client_order_id, order.status in _TERMINAL, filled):
            await self.feed(jr.JournalEntry(now_ns=now, order_update=order))
        else:  # nothing for the core: kept for the answers and the audit only
            self._answer(order)
            self.audit.status(order)

    def _answer(self, order: tf.Order) -> None:
        """The venue's latest answer on an order, for SubmitIntent's reply: the newest kept (an
        update of the execution stream can come after the PlaceOrder answer it precedes at the
        venue: a FILLED answer read back as OPEN, seen in a chromium test)."""
        kept = self.orders.get(order.client_order_id)
        if kept is not None and _says_more(kept, order):
            return
        self.orders.pop(order.client_order_id, None)
        self.orders[order.client_order_id] = order
        while len(self.orders) > _ANSWERS_KEPT:
            del self.orders[next(iter(self.orders))]

    def _in_legacy(self, execution: tf.Execution) -> bool:
        """A fill of an order not ours, stamped before the venue's positions were read at a
        fresh start: the legacy position has it already (the bus may bring it after)."""
        as_of = self.legacy_as_of.get(execution.venue, 0)
        fill = execution.fill
        return 0 < fill.ts_event_ns < as_of and fill.client_order_id not in self.ready_core.book.orders

    async def on_gap(self, venue: str) -> None:
        """Executions of `venue` may be missing: each of its working orders is queried there."""
        core = self.ready_core
        log.warning("inspector: executions of %s may be missing (a gap): querying its orders", venue)
        for working in list(core.book.orders):
            if working.key[0] == venue and not self.executor.stops.holds(working.order.client_order_id):
                unknown = working.order.client_order_id
                await self.feed(jr.JournalEntry(now_ns=self.clock(), placement_unknown=unknown))

    async def command(self, mode: rk.Mode.ValueType, reason: str) -> RiskOutput:
        if mode not in _COMMANDS:
            raise InvalidArgument.field("mode", "must be STAND_DOWN, RESUME or CLOSE_ALL")
        if not reason.strip():
            raise InvalidArgument.field("reason", "an operator command needs a reason")
        command = jr.JournalCommand(kind=_COMMANDS[mode], reason=reason)
        result = await self.feed(jr.JournalEntry(now_ns=self.clock(), command=command))
        assert isinstance(result, RiskOutput)
        return result

    async def update_policies(
        self, text: str, path: str = "", over_current: bool = False, tighten_only: bool = False
    ) -> RiskOutput:
        """A policy file read over the shipped set, or (`over_current`) over the set in force
        (InvalidArgument naming every bad key before anything changes); the journal holds the
        complete set it makes. `tighten_only`: FailedPrecondition naming every change that
        does not lower a limit (engine.diff.loosenings), and nothing changes."""
        if over_current:
            given = read_policies(text, self.ready_core.policies).policies
            text = dump_policies(
                given
            )  # the source is now the whole set: the shipped one under it would differ
        else:
            given = operator_policies(text, path or None).policies
        if tighten_only:
            loosened = loosenings(diff_policies(self.ready_core.policies, given))
            if loosened:
                raise FailedPrecondition(f"only a tightening may change the policies: {'; '.join(loosened)}")
        result = await self.feed(jr.JournalEntry(now_ns=self.clock(), policies=dump_policies(given)))
        self.policies = PolicySource(text, path, self.clock())
        assert isinstance(result, RiskOutput)
        return result

    # ---- marks

    async def mark_loop(self, stop: asyncio.Event, every_s: float) -> None:
        while not await sleep_unless(stop, every_s):
            await self.mark_once()

    def held_markets(self) -> set[tuple[str, str]]:
        """The markets the core holds a working order or an open position in."""
        if self.core is None:
            return set()
        book = self.core.book
        return {w.key for w in book.orders} | {k for k, p in book.positions.positions.items() if p.size != 0}

    async def mark_once(self) -> None:
        for venue, symbol in sorted(self.held_markets()):
            quote = self.board.quotes.get((venue, symbol))
            price = None if quote is None else quote.mark
            if price is None or self._marks.fed.get((venue, symbol)) == price:
                continue
            self._marks.fed[(venue, symbol)] = price
            mark = jr.JournalMark(venue=venue, symbol=symbol, price=format_decimal(price))
            await self.feed(jr.JournalEntry(now_ns=self.clock(), mark=mark))

    def _show_state(self) -> None:
        state = self.ready_core.state
        for each in RiskState:
            STATE.labels(each.value).set(1 if each is state else 0)


def _says_more(kept: tf.Order, order: tf.Order) -> bool:
    """Whether the venue's answer `kept` is later than `order`: a later state at the venue, or as
    late and more filled or ended."""
    if kept.updated_ns != order.updated_ns:
        return kept.updated_ns > order.updated_ns
    more = (Decimal(kept.filled_size or "0"), kept.status in _TERMINAL)
    return more > (Decimal(order.filled_size or "0"), order.status in _TERMINAL)
