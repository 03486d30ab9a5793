"""The backtest's own orders sent at their live twins' recorded arrivals (`latency = "recorded"`,
docs/backtest-parity.md, "Parity with live").

Live, an order reaches the venue when the live chain got it there (with the detector's hold,
~3 s after its signal); a backtest's reaches it after the latency model's delay. In a recorded
run each order the backtest's inspector places is paired with its live twin, the order the live
inspector made at the same step of the same signal, and sent to arrive at the twin's recorded
arrival (the venue's `created_ns`), its cancel at the twin's recorded cancel. The replayed venue
then meets the book the live order met (trademesh.core.backtest.recorded_orders).

How an order finds its twin (`TwinKey`, and exactly with the live inspector's journal), when
an order or cancel without a twin arrives, and when our inspector hears the venue:
docs/backtest-parity.md, "Twins: the recorded latency".
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal

import asyncpg

from trademesh.advisor.v1 import messages_pb2 as am
from trademesh.core.backtest.recorded_orders import RecordedOrder, load_recorded_orders
from trademesh.core.domain.model import Execution, OrderRequest, OrderType
from trademesh.core.inspector.replay import (
    AMENDED_IN_PLACE,
    InspectorCore,
    OrderRole,
    PlaceOrder,
    RiskVerdict,
    apply_entry,
    entry_order_id,
    new_core,
    placed_by,
)
from trademesh.risk.v1 import journal_pb2 as jr
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

__all__ = [
    "Held",
    "HeldAt",
    "LiveHearing",
    "ModelTiming",
    "OrderTiming",
    "PlanReplay",
    "PlannedOrder",
    "SignalKey",
    "TwinArrivals",
    "TwinKey",
    "live_checks",
    "live_hearing",
    "live_intents",
    "live_plan",
    "live_repeats",
    "live_twins",
    "load_twin_arrivals",
]

HeldAt = Callable[[int], Decimal]  # an arrival time -> the size the venue would hold the order at


@dataclass(frozen=True)
class Held:
    """The size the venue takes an order at now, and (a reduce-only one) were it to arrive at a
    given time (ReplayedMarket.held_at)."""

    now: Decimal
    at: HeldAt | None = None


SignalKey = tuple[str, str, int]  # strategy, symbol, the signal's time (ns)
TwinKey = tuple[SignalKey, str, Decimal]  # the intent's signal, the role, the size (0 an intent's)
_INTENT = "intent"  # an entry or an exit: the intent's own order
# Live, an order is made after its signal (the detector's hold, the decision) and a protective
# one after its entry's fill: the ranges read reach this far past the run's end.
_LATE_NS = 120 * 1_000_000_000
_ENDED = frozenset(
    {tf.ORDER_STATUS_FILLED, tf.ORDER_STATUS_CANCELED, tf.ORDER_STATUS_REJECTED, tf.ORDER_STATUS_EXPIRED}
)
# The live inspector's journal, as the recorder keeps it: every journal that took an input of a
# venue in a range, and one journal's entries in order.
_INSTANCES = (
    "SELECT DISTINCT instance FROM inspector_journal WHERE venue = $1 AND now_ns >= $2 AND now_ns < $3 "
    "ORDER BY instance"
)
_PREFETCH = 2_000  # journal entries a cursor fetches at a time
_JOURNAL = "SELECT entry, venue FROM inspector_journal WHERE instance = $1 ORDER BY entry_ms, entry_seq"
_DECISIONS = (
    "SELECT ts_decision_ns, decision FROM decisions WHERE venue = $1 AND ts_decision_ns >= $2 "
    "AND ts_decision_ns < $3 AND NOT hypothetical ORDER BY ts_decision_ns"
)


class OrderTiming:
    """When the backtest's orders and cancels reach the venue: None is the latency model's; and
    when the inspector checks an intent: None is at once, at its signal's time."""

    def intent(self, intent: am.Intent) -> None:
        """An intent about to go to the inspector (its orders follow)."""

    def check_at(self, intent: am.Intent) -> int | None:
        return None

    def place(self, order: PlaceOrder, now_ns: int, held: Held | None = None) -> int | None:
        """`order` as the core asked it; `held`: the size the venue takes it at (a reduce-only
        order sized to the position there)."""
        return None

    def cancel(self, client_order_id: str, now_ns: int) -> int | None:
        return None

    def wake_at(self, wake_ns: int) -> int:
        """When the inspector's core, asking to be woken at `wake_ns`, is woken."""
        return wake_ns

    def heard_at(self, execution: Execution) -> int | None:
        """When the report of our execution reaches the inspector: None is the report latency's."""
        return None

    def answered_at(self, client_order_id: str) -> int | None:
        """When the venue's answer to our placement reaches the inspector: None is never (the
        inspector hears its executions alone)."""
        return None

    @property
    def amends_in_place(self) -> bool:
        """Whether the inspector's amendments go to the venue as amendments in place (as the live
        inspector amends at the sim today), or as the old order's cancel and the new one."""
        return True


class ModelTiming(OrderTiming):
    """Every order after the latency model's delay (the default)."""


def live_checks(decisions: Iterable[tuple[int, am.Decision]]) -> dict[SignalKey, int]:
    """Each live intent's decision time (the recorder's `ts_decision_ns`), by its signal."""
    return {_signal_key(d.intent): at for at, d in decisions if d.HasField("intent")}


def live_intents(decisions: Iterable[am.Decision]) -> dict[str, SignalKey]:
    """The live intents' orders' client order ids, each with its intent's signal."""
    out: dict[str, SignalKey] = {}
    for decision in decisions:
        if decision.HasField("intent"):
            intent = decision.intent
            out[entry_order_id(intent.intent_id)] = _signal_key(intent)
    return out


@dataclass(frozen=True)
class PlannedOrder:
    """A live order as its core planned it (`live_plan`): its place among the core's orders
    (its journal's start, then its number there) and the size it asked."""

    place: tuple[int, int]
    size: Decimal


Plan = Mapping[str, PlannedOrder]  # by live client order id


def live_twins(
    orders: Sequence[RecordedOrder], intents: Mapping[str, SignalKey], plan: Plan | None = None
) -> dict[TwinKey, RecordedOrder]:
    """The live orders by their place in the chain (`TwinKey`), the first of each key; an order
    that is neither an intent's nor protective after one (a flatten, one placed by hand) is left
    out. `plan` (`live_plan`): the order the live core placed them in, where known."""
    return {key: found[0] for key, found in _keyed(orders, intents, plan).items()}


def live_repeats(
    orders: Sequence[RecordedOrder], intents: Mapping[str, SignalKey], plan: Plan | None = None
) -> dict[TwinKey, list[RecordedOrder]]:
    """The live orders of a key after its first, in order: two plans the sim trimmed to the same
    position (a stop planned on a position heard late, and the next, both held at what was
    left)."""
    return {key: found[1:] for key, found in _keyed(orders, intents, plan).items() if len(found) > 1}


def _keyed(
    orders: Sequence[RecordedOrder], intents: Mapping[str, SignalKey], plan: Plan | None
) -> dict[TwinKey, list[RecordedOrder]]:
    steps = _Steps()
    out: dict[TwinKey, list[RecordedOrder]] = {}
    for order in _in_plan_order(orders, plan or {}):
        request = order.request
        signal = intents.get(request.client_order_id)
        key: TwinKey | None
        if signal is not None:
            key = steps.intent(request.symbol, signal)
        else:
            role = _protective_role(request)
            planned = plan.get(request.client_order_id) if plan else None
            size = request.size if planned is None else planned.size
            key = None if role is None else steps.protective(request.symbol, role, size)
        if key is not None:
            out.setdefault(key, []).append(order)
    return out


def _in_plan_order(orders: Sequence[RecordedOrder], plan: Plan) -> list[RecordedOrder]:
    """The orders by arrival, but those the live core's plan knows in the order it placed them
    (in the places the arrivals give them): the live shell carries out its inputs' actions side
    by side, so an order can reach the venue after one planned after it (a take-profit waiting
    for its stop's answer while the next intent's entry goes out), and the step it belongs to
    is the one it was planned in, as the backtest's inspector keys its own."""
    by_arrival = sorted(orders, key=lambda o: o.arrival_ns)
    planned = [o for o in by_arrival if o.request.client_order_id in plan]
    planned.sort(key=lambda o: plan[o.request.client_order_id].place)
    queue = iter(planned)
    return [next(queue) if o.request.client_order_id in plan else o for o in by_arrival]


def live_plan(entries: Iterable[jr.JournalEntry]) -> dict[str, PlannedOrder]:
    """The orders one live inspector's core placed, in order, with the sizes it asked: its
    journal replayed through the core (trademesh.core.inspector.driver, as a restart replays it; pure).
    Empty when the journal does not begin with its start (its first entries dropped)."""
    replay = PlanReplay()
    for entry in entries:
        replay.add(entry)
    return replay.placed


@dataclass
class PlanReplay:
    """`live_plan` an entry at a time, so a journal read from a cursor need not be held whole."""

    placed: dict[str, PlannedOrder] = field(default_factory=dict)
    _core: InspectorCore | None = None
    _began: int = 0  # the start's time
    _dropped: bool = False  # the journal does not begin with its start: no plan

    def add(self, entry: jr.JournalEntry) -> None:
        if self._dropped:
            return
        if self._core is None:
            kind = entry.WhichOneof("input")
            if kind not in ("start", "snapshot"):
                self._dropped = True
                return
            began = entry.snapshot.start_ns if kind == "snapshot" else entry.now_ns
            self._core, self._began = new_core(entry), began
            return
        result = apply_entry(self._core, entry)
        output = result.output if isinstance(result, RiskVerdict) else result
        for action in output.actions:
            order = placed_by(action)  # an amendment places its new order
            if order is not None and order.client_order_id not in self.placed:
                place = (self._began, len(self.placed))
                self.placed[order.client_order_id] = PlannedOrder(place, order.size)


@dataclass
class TwinArrivals(OrderTiming):
    """The backtest's orders at their live twins' arrivals; `order_ns` the model's delay."""

    twins: Mapping[TwinKey, RecordedOrder]
    order_ns: int
    # The live advisor's decision time of each intent, by its signal (`live_checks`).
    checks: Mapping[SignalKey, int] = field(default_factory=dict)
    paired: int = 0
    unpaired: int = 0
    _signals: dict[str, SignalKey] = field(default_factory=dict)  # intent id -> its signal
    _steps: _Steps = field(default_factory=lambda: _Steps())
    _used: dict[TwinKey, int] = field(default_factory=dict)  # the live orders of each key taken
    _sent: dict[str, tuple[int, RecordedOrder | None]] = field(default_factory=dict)  # -> arrival, twin
    _last_ns: int = 0  # the latest arrival of what was sent so far
    # The live orders of a key after its first (`live_repeats`): the backtest's k-th order of the
    # key is paired with the live k-th.
    repeats: Mapping[TwinKey, Sequence[RecordedOrder]] = field(default_factory=dict)
    # When the live inspector heard its orders' executions (None: not known; the model's).
    hearing: LiveHearing | None = None
    _fills_heard: dict[str, int] = field(default_factory=dict)  # our client order id -> fills so far
    # The live orders were keyed by the sizes their core asked (`live_plan`), not those held.
    by_plan: bool = False
    _by_step: dict[tuple[SignalKey, str], list[TwinKey]] | None = None  # (signal, role) -> the keys

    def intent(self, intent: am.Intent) -> None:
        self._signals[intent.intent_id] = _signal_key(intent)

    @property
    def amends_in_place(self) -> bool:
        """As the live inspector amended in the recorded session: in place when its journal shows
        an order amended in place, else as cancel and place (a session recorded before the
        inspector amended in place, 2026-11-27, or one that amended nothing: the same then);
        without the journal, as the live inspector amends today."""
        return self.hearing is None or bool(self.hearing.amended)

    def check_at(self, intent: am.Intent) -> int | None:
        """When the live inspector had the intent of the same signal: when its journal took it
        (`hearing`), else the live decision's time (the intent reached it a bus hop later)."""
        key = _signal_key(intent)
        taken = None if self.hearing is None else self.hearing.intents.get(key)
        return taken if taken is not None else self.checks.get(key)

    def place(self, order: PlaceOrder, now_ns: int, held: Held | None = None) -> int | None:
        # The live orders keyed by the size their core asked (its plan known): ours by ours too;
        # else by the size the venue holds them at.
        key = self._key(order if self.by_plan or held is None else replace(order, size=held.now))
        twin = None if key is None else self._next_twin(key)
        if twin is None and key is not None and not self.by_plan and held is not None and held.at:
            twin = self._twin_held_at(key, now_ns, held.at)
        if twin is None:
            self.unpaired += 1
            # The live shell sends in turn: not before what was sent before it.
            return self._sent_at(order.client_order_id, max(now_ns + self.order_ns, self._last_ns), None)
        self.paired += 1
        # A twin already past: at once, as near it as can be.
        return self._sent_at(order.client_order_id, max(twin.arrival_ns, now_ns), twin)

    def _next_twin(self, key: TwinKey) -> RecordedOrder | None:
        """The key's first live order not taken yet, taken."""
        twin = self._peek(key)
        if twin is not None:
            self._used[key] = self._used.get(key, 0) + 1
        return twin

    def _peek(self, key: TwinKey) -> RecordedOrder | None:
        used = self._used.get(key, 0)
        first = self.twins.get(key)
        if first is None:
            return None
        later = self.repeats.get(key, ())
        return first if used == 0 else later[used - 1] if used <= len(later) else None

    def _twin_held_at(self, key: TwinKey, now_ns: int, held_at: HeldAt) -> RecordedOrder | None:
        """A protective order without a twin of its size: the first live order of its step and
        role still to come that the venue would hold it at its size, were it to arrive then (a
        stop planned for the whole position while the old stop's cancel is on its way: the sim
        holds it at what the old one leaves, and so it was recorded live)."""
        signal, role, _ = key
        if self._by_step is None:
            self._by_step = {}
            for twin_key in self.twins:
                self._by_step.setdefault(twin_key[:2], []).append(twin_key)
        found: list[tuple[int, TwinKey]] = []
        for other in self._by_step.get((signal, role), ()):
            twin = self._peek(other)
            if twin is not None and twin.arrival_ns >= now_ns and held_at(twin.arrival_ns) == other[2]:
                found.append((twin.arrival_ns, other))
        return self._next_twin(min(found)[1]) if found else None

    def _sent_at(self, client_order_id: str, arrival_ns: int, twin: RecordedOrder | None) -> int:
        self._sent[client_order_id] = (arrival_ns, twin)
        self._last_ns = max(self._last_ns, arrival_ns)
        return arrival_ns

    @property
    def taken(self) -> frozenset[TwinKey]:
        """The live twins the backtest's orders were sent at."""
        return frozenset(self._used)

    def twin_of(self, client_order_id: str) -> RecordedOrder | None:
        """The live twin a backtest's order was sent at (None: it kept the model)."""
        sent = self._sent.get(client_order_id)
        return None if sent is None else sent[1]

    def cancel(self, client_order_id: str, now_ns: int) -> int | None:
        sent = self._sent.get(client_order_id)
        if sent is None:
            return None
        arrival_ns, twin = sent
        if twin is not None and twin.cancel_ns is None and twin.ended_ns is not None:
            # Live the cancel came too late to change the twin (a stop the venue filled first):
            # just after its end, and not a step of the shell's turn (nothing waits for it).
            return max(twin.ended_ns + 1, now_ns, arrival_ns)
        at = None if twin is None else twin.cancel_ns
        arrival = max(now_ns if at is None else at, now_ns, arrival_ns)
        self._last_ns = max(self._last_ns, arrival)
        return arrival

    def wake_at(self, wake_ns: int) -> int:
        """When the live inspector's core, asking for the same time, was woken (its journal's
        timer entry for it): the backtest's plans then meet the fills heard by then, as live."""
        woken = None if self.hearing is None else self.hearing.timers.get(wake_ns)
        return wake_ns if woken is None or woken < wake_ns else woken

    def heard_at(self, execution: Execution) -> int | None:
        """When the live inspector heard its twin's execution of the same step (the k-th fill, or
        the end): the report of ours reaches our inspector then (ReplayedMarket.hear). None: no
        twin, or not heard live (the model's report latency)."""
        order = execution.order
        twin = self.twin_of(order.client_order_id)
        if twin is None or self.hearing is None:
            return None
        live = twin.request.client_order_id
        if execution.fill is not None:
            index = self._fills_heard.get(order.client_order_id, 0)
            self._fills_heard[order.client_order_id] = index + 1
            times = self.hearing.fills.get(live, ())
            return times[index] if index < len(times) else None
        return None if order.status.is_open else self.hearing.ends.get(live)

    def answered_at(self, client_order_id: str) -> int | None:
        """When the live inspector heard the venue's answer on the twin of our order (the
        replayed venue's answer reaches our inspector then: ReplayedMarket.answer). None: no
        twin, or not heard live (no answer is heard)."""
        twin = self.twin_of(client_order_id)
        if twin is None or self.hearing is None:
            return None
        return self.hearing.answers.get(twin.request.client_order_id)

    def _key(self, order: PlaceOrder) -> TwinKey | None:
        if order.role in (OrderRole.ENTRY, OrderRole.EXIT):
            signal = self._signals.get(order.intent_id)
            return None if signal is None else self._steps.intent(order.symbol, signal)
        if order.role.protective:
            return self._steps.protective(order.symbol, order.role.value, order.size)
        return None


@dataclass
class _Steps:
    """Per symbol, the signal of the last intent's order."""

    last: dict[str, SignalKey] = field(default_factory=dict)

    def intent(self, symbol: str, signal: SignalKey) -> TwinKey:
        self.last[symbol] = signal
        return signal, _INTENT, Decimal(0)

    def protective(self, symbol: str, role: str, size: Decimal) -> TwinKey | None:
        signal = self.last.get(symbol)
        return None if signal is None else (signal, role, size.normalize())


@dataclass(frozen=True)
class LiveHearing:
    """When the live inspector heard its orders' executions, by live client order id: each fill
    (in order) and the end; and when it took each intent (its journal's times:
    trademesh.core.inspector.input_journal)."""

    fills: dict[str, list[int]]
    ends: dict[str, int]
    # When it took each intent, by the intent's signal (its journal's time).
    intents: dict[SignalKey, int] = field(default_factory=dict)
    # When its core was woken, by the time it had asked for (its journal's timer entries).
    timers: dict[int, int] = field(default_factory=dict)
    # When it heard the venue's first word on each order: its first update journaled (the
    # PlaceOrder answer, which the shell journals whatever it says, unless the execution
    # stream's word came first).
    answers: dict[str, int] = field(default_factory=dict)
    # The orders it amended in place (their old client order ids: AMENDED_IN_PLACE updates).
    amended: set[str] = field(default_factory=set)

    def add(self, entry: jr.JournalEntry) -> None:
        """Hear one journal entry (`live_hearing` an entry at a time)."""
        kind = entry.WhichOneof("input")
        if kind == "fill":
            self.fills.setdefault(entry.fill.fill.client_order_id, []).append(entry.now_ns)
        elif kind == "order_update":
            update = entry.order_update
            self.answers.setdefault(update.client_order_id, entry.now_ns)
            if update.status in _ENDED:
                self.ends.setdefault(update.client_order_id, entry.now_ns)
            if update.status_reason.startswith(AMENDED_IN_PLACE):
                self.amended.add(update.client_order_id)
        elif kind == "intent":
            self.intents.setdefault(_signal_key(entry.intent.intent), entry.now_ns)
        elif kind == "timer":
            self.timers.setdefault(entry.timer.due_ns, entry.now_ns)


def live_hearing(entries: Iterable[jr.JournalEntry]) -> LiveHearing:
    """The hearing times in the live inspector's journal (its fills, the venue's first word on
    its orders and the updates that ended them, and the intents it took)."""
    hearing = LiveHearing({}, {}, {})
    for entry in entries:
        hearing.add(entry)
    return hearing


def _signal_key(intent: am.Intent) -> SignalKey:
    return intent.strategy_id, intent.symbol, intent.ts_signal_ns


def _protective_role(request: OrderRequest) -> str | None:
    """A live order's protective role, read off its request as the inspector makes them
    (trademesh.core.inspector.engine.protect): a stop-loss reduce-only with a trigger, a take-profit a
    reduce-only limit."""
    if not request.reduce_only:
        return None
    if request.trigger_price is not None:
        return OrderRole.STOP_LOSS.value
    return OrderRole.TAKE_PROFIT.value if request.type is OrderType.LIMIT else None


async def load_twin_arrivals(
    database_url: str, venue: str, start_ns: int, end_ns: int, order_ns: int
) -> TwinArrivals:
    """The live session's orders of `venue` and its decisions recorded from `start_ns` (to
    `end_ns` and the late ones after it), paired for a backtest of that range; with the live
    inspector's journal, when the recorder kept it, when it heard each execution."""
    connection = await asyncpg.connect(database_url)
    try:
        rows = await connection.fetch(_DECISIONS, venue, start_ns, end_ns + _LATE_NS)
        plan, hearing = await _from_journals(connection, venue, start_ns, end_ns + _LATE_NS)
    finally:
        await connection.close()
    decisions = [(row["ts_decision_ns"], am.Decision.FromString(row["decision"])) for row in rows]
    intents = live_intents(d for _, d in decisions)
    orders = await load_recorded_orders(database_url, venue, start_ns, end_ns + _LATE_NS)
    arrivals = TwinArrivals(live_twins(orders, intents, plan), order_ns, live_checks(decisions))
    arrivals.repeats = live_repeats(orders, intents, plan)
    arrivals.by_plan = bool(plan)
    arrivals.hearing = hearing
    return arrivals


async def _from_journals(
    connection: asyncpg.Connection, venue: str, start_ns: int, end_ns: int
) -> tuple[dict[str, PlannedOrder], LiveHearing | None]:
    """The plan (`live_plan`) of every live journal that took an input of `venue` in the range,
    each replayed from its start, and the hearing (`live_hearing`) of their entries of the venue
    (and their cores' timers) in the range; no hearing from a database recorded before the
    recorder kept the journal (no such table) or with none in the range. A journal is read
    through a cursor, never whole (a day's is some hundred thousand entries)."""
    try:
        instances = await connection.fetch(_INSTANCES, venue, start_ns, end_ns)
    except asyncpg.UndefinedTableError:
        return {}, None
    plan: dict[str, PlannedOrder] = {}
    hearing = LiveHearing({}, {}, {})
    for instance in instances:
        replay = PlanReplay()
        async with connection.transaction():  # a cursor lives in a transaction
            async for row in connection.cursor(_JOURNAL, instance["instance"], prefetch=_PREFETCH):
                entry = jr.JournalEntry.FromString(row["entry"])
                replay.add(entry)
                ours = row["venue"] == venue or entry.WhichOneof("input") == "timer"  # the core's own
                if ours and start_ns <= entry.now_ns < end_ns:
                    hearing.add(entry)
        plan.update(replay.placed)
    return plan, hearing if instances else None
