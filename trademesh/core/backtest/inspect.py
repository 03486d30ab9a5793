"""The inspector's engine core in a backtest, moved only by journal entries
(trademesh.core.inspector.driver.apply_entry), the one way the live shell and its restart replay move it.
The venue's reports (a fill, an order update, an answer to a placement) and a mark, once a bar
while the core holds, take apply_entry's own call for their entry, the entry not made and read
back (issue 62: no protobuf round trip per hop), their decimals as the entry would carry them.
Its order actions go to the replayed venue as the live executor sends them to a venue service:
the same TradeFlow request (trademesh.core.inspector.convert.place_request, protective prices put on the
instrument's tick grid) checked by the venue runtime's own validation
(trademesh.core.domain.order_rules.place_order). A request the venue would refuse comes back at once as
a REJECTED update, as the executor reports a refusal.

The sim holds stop orders itself, so every stop-loss is placed natively (no emulation here).
An amendment goes as the live executor carries it out at a venue that amends natively (the sim
does): in place (TradeFlow.AmendOrder, the order renamed to the new client order id, refused
when anything of it filled) when the core knows nothing of it filled, its answer handed to the
core as the old order's end and the renamed order (trademesh.core.inspector.convert.amended_away); else,
or refused at the venue, the old order's cancel, then the new one.

The core is told the run's instrument facts at its start (as the live shell journals them from
the venue's ListInstruments), and woken when it asks (`wake_ns`: the run schedules a timer entry
on its simulated clock, trademesh.core.backtest.run).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial

from trademesh.advisor.v1 import messages_pb2 as am
from trademesh.core.backtest.twins import Held, HeldAt, ModelTiming, OrderTiming
from trademesh.core.domain.convert import (
    balance_to_pb,
    execution_to_pb,
    instrument_to_pb,
    leverage_to_pb,
    position_to_pb,
)
from trademesh.core.domain.decimals import format_decimal
from trademesh.core.domain.model import (
    Amendment,
    Balance,
    Execution,
    Fill,
    Instrument,
    LeverageSetting,
    Order,
    OrderRequest,
    OrderStatus,
    Position,
    Side,
)
from trademesh.core.domain.order_rules import place_order
from trademesh.core.inspector.replay import (
    Amend,
    CancelAll,
    CancelOrder,
    MarketView,
    OrderAction,
    PlaceOrder,
    QueryOrder,
    RiskOutput,
    RiskVerdict,
    amended_away,
    apply_entry,
    decode_intent,
    new_core,
    order_snapshot,
    place_request,
    put_on_grid,
    refusal_of,
    venue_reason,
)
from trademesh.core.platform.errors import TrademeshError
from trademesh.risk.v1 import journal_pb2 as jr
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

__all__ = ["InspectStage", "OrderDesk"]

_TERMINAL = frozenset({OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.REJECTED, OrderStatus.EXPIRED})


def _wire(value: Decimal) -> Decimal:
    """A decimal as the wire carries it and apply_entry reads it back (format_decimal's plain
    text, no trailing zeros): the same number, its exponent as live (the core's arithmetic, and
    what it reports, keep it)."""
    return Decimal(format_decimal(value))


def _wire_or_none(value: Decimal | None) -> Decimal | None:
    return None if value is None else Decimal(format_decimal(value))


def _wire_fill(fill: Fill) -> Fill:
    """The fill apply_entry hands the core for a fill entry of it (fill_from_pb of fill_to_pb)."""
    return Fill(
        fill.fill_id, fill.order_id, fill.client_order_id, fill.symbol, fill.side, _wire(fill.price),
        _wire(fill.size), _wire(fill.fee), fill.fee_asset, fill.liquidity, fill.trade_id, fill.ts_event_ns,
        fill.liquidation,
    )  # fmt: skip


def _wire_order(order: Order, venue: str = "") -> Order:
    """The order apply_entry hands the core for an order update entry of it (order_from_pb of
    order_to_pb; `venue` where the order names none, as the shell names it in an execution's)."""
    return Order(
        order.venue or venue, order.order_id, order.client_order_id, order.symbol, order.side, order.type,
        order.time_in_force, _wire_or_none(order.price), _wire(order.size), order.post_only,
        order.reduce_only, _wire(order.filled_size), _wire_or_none(order.average_fill_price),
        order.status, order.status_reason, order.created_ns, order.updated_ns,
        _wire_or_none(order.trigger_price), order.triggered, order.liquidation,
    )  # fmt: skip


# A venue's derivatives account: its positions, balances and the leverage in force per symbol.
Account = tuple[Sequence[Position], Sequence[Balance], Sequence[LeverageSetting]]


@dataclass(frozen=True)
class OrderDesk:
    """Where the inspector's orders go: the replayed venue's calls."""

    instruments: Mapping[str, Instrument]
    submit: Callable[[OrderRequest, int, int | None], object]
    cancel: Callable[[str, int, int | None], None]
    open_orders: Callable[[], Sequence[Order]]
    find: Callable[[str], Order | None]
    # When each order and cancel reaches the venue (None from it: the latency model's delay).
    timing: OrderTiming = field(default_factory=ModelTiming)
    # The venue's position in a symbol now (signed), as its account answers.
    position: Callable[[str], Decimal] = field(default=lambda symbol: Decimal(0))
    # The size the venue would hold a reduce-only order at, arriving at a time (None: not known).
    held_at: Callable[[OrderRequest, int], Decimal] | None = None
    # An amendment in place (ReplayedMarket.amend: the old order's id, the change, the new order
    # placed instead if the venue refuses it, now, arrival); None: amendments cancel and place.
    amend: Callable[[str, Amendment, OrderRequest, int, int | None], None] | None = None
    # A perpetual's leverage set at the venue (ReplayedMarket.set_leverage, the mode kept) before
    # an entry that names one, and read (ReplayedMarket.leverage); None: the venue has none.
    set_leverage: Callable[[str, Decimal], object] | None = None
    leverage: Callable[[str], Decimal] | None = None
    # The venue's derivatives account now (positions with their margin, balances, each
    # perpetual's leverage in force), for the margin reports the live shell journals
    # (trademesh/core/inspector/margin_watch.py); None: the venue has none.
    account: Callable[[], Account] | None = None


@dataclass
class InspectStage:
    venue: str
    desk: OrderDesk
    core_entry: jr.JournalEntry
    entries: int = 0
    marks: dict[tuple[str, str], Decimal] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.core = new_core(self.core_entry)
        self._held: set[tuple[str, str]] = set()
        self._held_at = -1  # the entries when `_held` was read
        self._listed: tuple[set[tuple[str, str]], list[str]] = (set(), [])  # `held()` of a `_held`
        # The core's wake_ns and still_from_ns, and the entries when they were read: only an input
        # moves the core, and the run asks for both at every step (several times a bar).
        self._wake: tuple[int, int | None] = (-1, None)
        self._still: tuple[int, int] = (-1, 0)
        self._margin_said = b""  # the last margin report fed (as the live shell, only a change)

    @classmethod
    def start(cls, venue: str, desk: OrderDesk, policies: str, equity: Decimal, now_ns: int) -> InspectStage:
        start = jr.JournalStart(
            policies=policies, starting_equity=format_decimal(equity), instance="backtest"
        )
        stage = cls(venue, desk, jr.JournalEntry(now_ns=now_ns, start=start))
        listed = [instrument_to_pb(i) for _, i in sorted(desk.instruments.items())]
        if listed:
            facts = jr.JournalInstruments(venue=venue, instruments=listed)
            stage._feed(jr.JournalEntry(now_ns=now_ns, instruments=facts))
        stage.margin(now_ns)  # the leverage in force before the first intent, as the live shell reads it
        return stage

    # ---- inputs

    def intent(self, message: am.Intent, market: MarketView, now_ns: int) -> RiskVerdict:
        if market.last is None and message.entry_price:
            market = MarketView(market.bid, market.ask, Decimal(message.entry_price))
        # apply_entry's call for an intent entry, without the entry made and read back: the
        # intent as it reads it (decode_intent) and the market's prices through their text.
        wired = MarketView(_wire_or_none(market.bid), _wire_or_none(market.ask), _wire_or_none(market.last))
        self.entries += 1
        verdict = self.core.on_intent(decode_intent(message), wired, now_ns)
        self._carry_out_all(verdict.output, now_ns)
        return verdict

    def execution(self, execution: Execution, now_ns: int) -> None:
        """A venue's execution as the live shell takes it (its fill first): apply_entry's calls
        for its fill and order update entries, the entries not made and read back (their values
        as the wire carries them: `_wire_fill`, `_wire_order`)."""
        fill = execution.fill
        if fill is not None:
            self._apply(self.core.on_fill(self.venue, _wire_fill(fill), now_ns), now_ns)
        order = execution.order
        if self.core.heeds(order.client_order_id, order.status in _TERMINAL):
            self._apply(self.core.on_order_update(_wire_order(order, self.venue), now_ns), now_ns)

    def answer(self, order: Order, now_ns: int, amended_from: str = "") -> None:
        """The venue's answer to a placement (the order as placed), as the live executor hands
        the core every PlaceOrder answer; to an amendment in place (`amended_from`: the id the
        order went by), the old order's end first, as the executor hands an AmendOrder answer."""
        if amended_from:
            message = execution_to_pb(self.venue, Execution(now_ns, order)).order
            self._feed(jr.JournalEntry(now_ns=now_ns, order_update=amended_away(message, amended_from)))
        self._apply(self.core.on_order_update(_wire_order(order), now_ns), now_ns)

    def mark(self, symbol: str, price: Decimal, now_ns: int) -> None:
        """The shell's once-a-second mark of a market the core holds, when it changed."""
        key = (self.venue, symbol)
        if self.marks.get(key) == price:
            return
        self.marks[key] = price
        # apply_entry's call for a mark entry, without the entry made and read back (a mark a
        # bar while the core holds): its price through the text the entry would carry.
        orders = self.core.book.orders
        held, version = self._held_at == self.entries, orders.version
        self.entries += 1
        output = self.core.on_mark(self.venue, symbol, Decimal(format_decimal(price)), now_ns)
        if held and orders.version == version:  # a mark moves no position: what is held is as read
            self._held_at = self.entries
        self._carry_out_all(output, now_ns)

    def margin(self, now_ns: int) -> None:
        """The venue's derivatives account as a margin report (risk.v1.JournalMargin), fed when it
        changed, as the live shell's margin watch journals it every second."""
        account = self.desk.account
        if account is None:
            return
        positions, balances, settings = account()
        entry = jr.JournalMargin(venue=self.venue, leverage=True, positions_said=True)
        entry.positions.extend(position_to_pb(p) for p in sorted(positions, key=lambda p: p.symbol))
        entry.balances.extend(balance_to_pb(b) for b in sorted(balances, key=lambda b: b.asset))
        entry.settings.extend(leverage_to_pb(s) for s in sorted(settings, key=lambda s: s.symbol))
        said = entry.SerializeToString(deterministic=True)
        if said == self._margin_said:
            return
        self._margin_said = said
        self._feed(jr.JournalEntry(now_ns=now_ns, margin=entry))

    @property
    def wake_ns(self) -> int | None:
        """When the core asked to be woken (InspectorCore.wake_ns), read again only after an input."""
        entries, wake = self._wake
        if entries != self.entries:
            wake = self.core.wake_ns
            self._wake = (self.entries, wake)
        return wake

    @property
    def still_from_ns(self) -> int:
        """From when the core's risk state stays as it is (InspectorCore.still_from_ns), read again
        only after an input."""
        entries, still = self._still
        if entries != self.entries:
            still = self.core.still_from_ns
            self._still = (self.entries, still)
        return still

    def timer(self, now_ns: int) -> None:
        """The time the core asked for has come: a timer entry, as the live shell journals it."""
        self.entries += 1  # apply_entry's call for a timer entry, the entry not made and read back
        self._carry_out_all(self.core.on_timer(now_ns), now_ns)

    def holds(self) -> bool:
        """Whether the core holds any position or working order (the run asks every step)."""
        return bool(self._held if self._held_at == self.entries else self._keys())

    def held(self) -> list[str]:
        """The symbols the core holds a position or a working order in (what is marked): sorted
        again only when the set was read again (a new set; the list is not to be changed)."""
        keys = self._keys()
        of, listed = self._listed
        if of is not keys:
            listed = sorted(symbol for venue, symbol in keys if venue == self.venue)
            self._listed = (keys, listed)
        return listed

    def _keys(self) -> set[tuple[str, str]]:
        """The (venue, symbol) of every position and working order the core holds. Only a journal
        entry moves the core, so they are read again only after one (the run asks every step)."""
        if self._held_at != self.entries:
            core = self.core
            self._held = {w.key for w in core.book.orders} | {
                k for k, p in core.book.positions.positions.items() if p.size != 0
            }
            self._held_at = self.entries
        return self._held

    # ---- the core, and its actions

    def _feed(self, entry: jr.JournalEntry) -> RiskOutput | RiskVerdict:
        self.entries += 1
        result = apply_entry(self.core, entry)
        self._carry_out_all(result.output if isinstance(result, RiskVerdict) else result, entry.now_ns)
        return result

    def _apply(self, output: RiskOutput, now_ns: int) -> None:
        """The core's answer to an input handed to it directly, as `_feed` applies an entry:
        counted as an entry, its actions carried out. The caller made the core's call (`entries`
        counts the inputs: nothing reads it during the call)."""
        self.entries += 1
        self._carry_out_all(output, now_ns)

    def _carry_out_all(self, output: RiskOutput, now_ns: int) -> None:
        for action in output.actions:
            self._carry_out(action, now_ns)

    def _carry_out(self, action: OrderAction, now_ns: int) -> None:
        if isinstance(action, PlaceOrder):
            self._place(action, now_ns)
        elif isinstance(action, CancelOrder):
            self._cancel(action.client_order_id, now_ns)
        elif isinstance(action, CancelAll):
            for order in self.desk.open_orders():
                self._cancel(order.client_order_id, now_ns)
        elif isinstance(action, QueryOrder):
            self._query(action, now_ns)
        elif isinstance(action, Amend) and not self._amend(action, now_ns):
            self._cancel(action.client_order_id, now_ns)
            self._place(action.order, now_ns)

    def _amend(self, action: Amend, now_ns: int) -> bool:
        """In place, as the live executor amends at a venue that amends natively: only an order
        of which the core knows nothing filled (the new order's size is its whole), into one the
        venue's rules take (else the cancel and the placement, whose refusal the core hears)."""
        amend, working = self.desk.amend, self.core.book.orders.get(action.client_order_id)
        if amend is None or working is None or working.venue_filled != 0:
            return False
        order = action.order
        try:
            checked = self._checked(order)
        except TrademeshError:
            return False
        change = Amendment(
            price=checked.price, size=checked.size, trigger_price=checked.trigger_price,
            client_order_id=checked.client_order_id, reason=venue_reason(action.reason),
            unfilled_only=True,
        )  # fmt: skip
        amend(
            action.client_order_id,
            change,
            checked,
            now_ns,
            self.desk.timing.place(order, now_ns, self._holding(order, checked)),
        )
        return True

    def _checked(self, order: PlaceOrder) -> OrderRequest:
        """The TradeFlow request the live executor would send, as the venue's rules take it
        (TrademeshError: as they refuse it)."""
        native = order.trigger_price is not None
        request = place_request(order, native)
        instrument = self.desk.instruments.get(order.symbol)
        if instrument is not None:
            put_on_grid(order, request, native, instrument.tick_size)
        return place_order(request, self.desk.instruments)

    def _place(self, order: PlaceOrder, now_ns: int) -> None:
        try:
            checked = self._checked(order)
        except TrademeshError as exc:
            refused = order_snapshot(order, tf.ORDER_STATUS_REJECTED, refusal_of(exc), now_ns)
            self._feed(jr.JournalEntry(now_ns=now_ns, order_update=refused))
            return
        if order.leverage is not None and not self._leverage_for(order, now_ns):
            return
        self.desk.submit(
            checked, now_ns, self.desk.timing.place(order, now_ns, self._holding(order, checked))
        )

    def _leverage_for(self, order: PlaceOrder, now_ns: int) -> bool:
        """The entry's leverage in force at the venue before it is placed, set only when it
        differs, as the live executor sets it; a refusal refuses the order (False)."""
        set_leverage, leverage = self.desk.set_leverage, self.desk.leverage
        if set_leverage is None or leverage is None or order.leverage is None:
            return True
        try:
            if leverage(order.symbol) != order.leverage:
                set_leverage(order.symbol, order.leverage)
        except TrademeshError as exc:
            refused = order_snapshot(order, tf.ORDER_STATUS_REJECTED, refusal_of(exc), now_ns)
            self._feed(jr.JournalEntry(now_ns=now_ns, order_update=refused))
            return False
        return True

    def _holding(self, order: PlaceOrder, checked: OrderRequest) -> Held:
        held_at = self.desk.held_at
        at: HeldAt | None = None
        if held_at is not None and checked.reduce_only:
            at = partial(held_at, checked)
        return Held(self._held_size(order), at)

    def _held_size(self, order: PlaceOrder) -> Decimal:
        """The size the venue takes the order at now, for its live twin's key when the live
        plan is not known (trademesh.core.backtest.twins): a reduce-only order sized to the
        position it reduces there, as the sim sizes it
        (trademesh/core/domain/matching/order_manager.py) and as its twin's size was recorded.
        The venue's position may be smaller than the core's: a stop's fills on their way. (A
        resize planned before them, for the position with the entry's last fill, went to the
        live venue as the entry's last fill alone, and its twin was recorded so.) The sim also
        trims by the reduce-only orders open when it arrives: without a twin of this size, the
        timing pairs it by the size it would be held at on a twin's arrival (`desk.held_at`;
        trademesh.core.backtest.twins)."""
        held = self.desk.position(order.symbol) if order.reduce_only else Decimal(0)
        if held == 0 or (held > 0) == (order.side is Side.BUY) or abs(held) >= order.size:
            return order.size  # as asked (a venue refuses one that would increase the position)
        return abs(held)

    def _cancel(self, client_order_id: str, now_ns: int) -> None:
        self.desk.cancel(client_order_id, now_ns, self.desk.timing.cancel(client_order_id, now_ns))

    def _query(self, action: QueryOrder, now_ns: int) -> None:
        found = self.desk.find(action.client_order_id)
        result = jr.JournalQueryResult(client_order_id=action.client_order_id)
        if found is not None:
            result.order.CopyFrom(execution_to_pb(self.venue, Execution(now_ns, found)).order)
        self._feed(jr.JournalEntry(now_ns=now_ns, query_result=result))
