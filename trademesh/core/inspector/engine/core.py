"""InspectorCore: the risk governor as an engine core.

    core = InspectorCore(policies, starting_equity=Decimal(100_000), now_ns=t0)
    verdict = core.on_intent(intent, MarketView(bid, ask, last), now_ns)  # ALLOW + orders, or reasons
    out = core.on_fill(venue, fill, now_ns)          # position, PnL, protective orders
    out = core.on_order_update(order, now_ns)        # acks, cancels, an entry's fills said by the venue
    out = core.on_mark(venue, symbol, price, now_ns) # equity, drawdown, trailing stop
    out = core.on_placement_unknown(client_order_id, now_ns)  # -> QueryOrder: query first
    out = core.on_query_result(client_order_id, order_or_none, now_ns)
    out = core.stand_down(reason, now_ns) / core.resume(...) / core.close_all(...)
    out = core.update_policies(policies, now_ns)      # a recorded change naming what changed
    out = core.on_legacy(venue, symbol, size, entry_price, now_ns)  # found at the first start
    out = core.on_venue_stand(venue, reason, now_ns)  # the venue's positions diverged ("": agree)
    out = core.on_instruments(venue, facts, now_ns)  # the venue's minimums, lot and tick sizes
    out = core.on_margin(report, now_ns)              # a venue's leverage, margins, liquidation prices
    out = core.on_timer(now_ns)                       # at or after core.wake_ns: what is due

The core asks to be woken (`wake_ns`: a protective order's retry, the end of a coalescing
window, the unprotected bound) and does what is due at any input at or after that time.

Protection is sized by the venue's word (`RiskBook.venue_position`): the fills heard and what an
entry's updates say filled beyond them (a market entry's PlaceOrder answer comes before its
fills through ingest and the bus), in whole lots (`RiskBook.held`: closing orders too; what is
under a lot is dust, never an order); the position, PnL, fees and the limits are the fills'. A
spot fill's fee paid in the base is off the position (spot.held_fee).

Pure: no I/O, no wall clock; the same calls give the same verdicts, orders and events.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from decimal import Decimal

from trademesh.core.domain.contracts.intent import ExecutionIntent
from trademesh.core.domain.decimals import WIDE
from trademesh.core.domain.decimals import format_decimal as text
from trademesh.core.domain.model import Fill, Order, OrderStatus, TimeInForce
from trademesh.core.inspector.engine.actions import CancelAll, CancelOrder, OrderRole, PlaceOrder, QueryOrder
from trademesh.core.inspector.engine.book import RiskBook
from trademesh.core.inspector.engine.checks import (
    Breach,
    OrderProposal,
    entry_checks,
    exit_checks,
    on_the_grid,
    order_checks,
)
from trademesh.core.inspector.engine.diff import describe_changes, diff_policies
from trademesh.core.inspector.engine.equity import EquityCurve, LossStreak
from trademesh.core.inspector.engine.events import RiskAction, RiskOutput, RiskState, RiskVerdict
from trademesh.core.inspector.engine.exits import cancel_entries_of
from trademesh.core.inspector.engine.guard import Gap, Guard, refused_for_the_request
from trademesh.core.inspector.engine.instruments import InstrumentFacts, Minimum
from trademesh.core.inspector.engine.leverage import leverage_checks
from trademesh.core.inspector.engine.liquidation import near_liquidation
from trademesh.core.inspector.engine.margin import MarginBook, MarginReport
from trademesh.core.inspector.engine.market import MarketView
from trademesh.core.inspector.engine.orders import entry_order, flatten_order
from trademesh.core.inspector.engine.policies import PolicySet
from trademesh.core.inspector.engine.positions import Key, average_entry, money
from trademesh.core.inspector.engine.protect import Protector
from trademesh.core.inspector.engine.rates import RateWindow, rate_time
from trademesh.core.inspector.engine.spot import cancel_outlived, held_fee
from trademesh.core.inspector.engine.state import Collector, StateMachine
from trademesh.core.inspector.engine.working import WorkingOrder
from trademesh.core.platform.errors import InvalidArgument

__all__ = ["CapitalUse", "InspectorCore"]

ZERO = Decimal(0)
# A position whose protective orders the venue refuses this many times in a row is left
# unprotected and the inspector stands down (no loop of refused placements).
_MAX_PROTECT_REJECTS = 3
# After CLOSE_ALL, a position still open once its flatten order ended (an IOC on a thin book, a
# refusal) is flattened again at the next marks, up to this many orders in all.
_MAX_FLATTENS = 5
# A drawdown as a risk event shows it: a ratio of two amounts is 28 digits, 8 say it.
_RATIO_SHOWN = Decimal("1e-8")
_TERMINAL = (OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.REJECTED, OrderStatus.EXPIRED)


@dataclass(frozen=True)
class CapitalUse:
    """A strategy's capital: reserved by policy, in use now, and asked for but refused."""

    reserved: Decimal | None
    used: Decimal
    suppressed: Decimal


def _sign(value: Decimal) -> int:
    return (value > 0) - (value < 0)


class InspectorCore:
    def __init__(self, policies: PolicySet, starting_equity: Decimal, now_ns: int, book: str = "") -> None:
        """`book` names this core's lifetime (the shell: its journal's start) in the ids of its
        protective orders; the same name gives the same ids (a replay)."""
        self.policies = policies
        self.book = RiskBook()
        self.protector = Protector(book)
        self.machine = StateMachine()
        self.curve = EquityCurve(starting_equity)
        self.curve.update(starting_equity, now_ns, policies.schedule.zone)
        self.streak = LossStreak()
        self._rates = RateWindow()
        self._fees = ZERO
        self._intents: dict[str, str] = {}  # intent id -> its order's client order id ("" if refused)
        self._levels: dict[str, tuple[Decimal | None, Decimal | None]] = {}  # order -> its intent's SL/TP
        self._fills: set[str] = set()  # "<venue>/<fill id>" of every fill applied
        self._suppressed: dict[str, Decimal] = {}
        self._rejected: dict[Key, int] = {}  # protective orders refused in a row, per position
        # Per position, the orders asked for by the last counted refusal: a refusal of one of
        # them was sent before that refusal was heard, so it is not another try.
        self._tried: dict[Key, int] = {}
        # When protection may be placed and when its absence is said (guard.py).
        self.guard = Guard()
        self._short: dict[Key, Minimum | None] = {}  # what the venue's minimum left uncovered
        self._flattens: dict[Key, int] = {}  # flatten orders placed since CLOSE_ALL, per position
        # The venues' derivatives accounts as they report them (on_margin), and the positions
        # reduced near their liquidation price (liquidation.py).
        self.margin = MarginBook()

    @property
    def instruments(self) -> dict[Key, InstrumentFacts]:
        """The venues' facts (on_instruments), kept in the book: they value its markets."""
        return self.book.facts

    @instruments.setter
    def instruments(self, facts: dict[Key, InstrumentFacts]) -> None:
        self.book.facts = facts

    @property
    def state(self) -> RiskState:
        return self.machine.state

    def handled(self, intent_id: str) -> bool:
        """Whether an intent of this id was checked already (a redelivery is not checked again)."""
        return intent_id in self._intents

    @property
    def fees(self) -> Decimal:
        return self._fees

    @property
    def wake_ns(self) -> int | None:
        """When the core wants an input (`on_timer`) to do what is due then; None: nothing."""
        return self.guard.wake_ns()

    def rate_counts(self, now_ns: int) -> dict[str, int]:
        """Orders placed within the rate window, per "venue/<name>" and "strategy/<id>"."""
        window_ns = self.policies.rate.window_ms * 1_000_000
        return {name: self._rates.count(name, now_ns, window_ns) for name in self._rates.names()}

    @property
    def still_from_ns(self) -> int:
        """From when the core's risk state stays as it is until the next input (0: now): what
        moves in it with time alone, a cooldown after a loss running out and orders leaving the
        rate window, has moved for the last time by then. A reader that read it at or after this
        time, no input since, has it as it is."""
        still = 0
        cooling = self.streak.cooling_until(self.policies.loss.cooldown_after_loss_ms)
        if cooling is not None:
            still = cooling
        latest = self._rates.latest()
        if latest is not None:
            still = max(still, latest + self.policies.rate.window_ms * 1_000_000)
        return still

    def capital(self, strategy: str) -> CapitalUse:
        reserved = self.policies.capital.reserved_for(strategy)
        return CapitalUse(reserved, self.book.strategy_used(strategy), self._suppressed.get(strategy, ZERO))

    # ---- intents

    def on_intent(self, intent: ExecutionIntent, market: MarketView, now_ns: int) -> RiskVerdict:
        out = self._begin(now_ns)
        self._tick(out)
        early = self._refuse_early(intent, out)
        if early is not None:
            return self._verdict(intent, RiskAction.BLOCK, [early], out)
        gridded = on_the_grid(intent, self.instruments.get((intent.venue, intent.symbol)))
        if isinstance(gridded, Breach):
            return self._verdict(intent, RiskAction.BLOCK, [gridded], out)
        intent = gridded
        price = intent.entry_price if intent.entry_price is not None else market.taker_price(intent.side)
        if price is None or price <= 0:
            breach = Breach("market.price", "no price to value the order at", ())
            return self._verdict(intent, RiskAction.BLOCK, [breach], out)
        key = (intent.venue, intent.symbol)
        # The intent's market is the freshest price there is: it values the position too.
        fresh = market.mid or market.last
        self.book.marks[key] = fresh if fresh is not None else self.book.marks.get(key, price)
        proposal = OrderProposal(intent, price, market.mid, now_ns, self.instruments.get(key))
        breaches = order_checks(self.policies, self.book, self._rates, proposal)
        if intent.reduce_only:
            breaches += exit_checks(self.book, proposal)
        else:
            facts = self.instruments.get(key)
            breaches += entry_checks(self.policies, self.book, self.streak, proposal, facts)
            breaches += leverage_checks(self.policies, self.margin, self.book, proposal, self.curve.equity)
        if breaches:
            return self._refuse(proposal, breaches, out)
        return self._allow(proposal, out)

    def _refuse_early(self, intent: ExecutionIntent, out: Collector) -> Breach | None:
        """Refusals before any price is looked at: duplicates, expiry, the state."""
        if intent.intent_id in self._intents:
            order = self._intents[intent.intent_id] or "none"
            return Breach(
                "intent.duplicate", f"intent already handled; its order: {order}", (("order", order),)
            )
        if out.now_ns > intent.expires_ns:
            return Breach("intent.expired", "the intent expired", (("expires_ns", str(intent.expires_ns)),))
        if self.state is RiskState.HALTED:
            return Breach("state", "halted after CLOSE_ALL: nothing is placed until resumed", ())
        if not intent.reduce_only and not self.machine.takes_entries:
            return Breach("state", f"{self.state.value}: no new entries (exits only)", ())
        return None

    def _refuse(self, proposal: OrderProposal, breaches: list[Breach], out: Collector) -> RiskVerdict:
        intent = proposal.intent
        if all(b.throttle for b in breaches):
            window_ns = self.policies.rate.window_ms * 1_000_000
            self.machine.throttled_until_ns = out.now_ns + window_ns
            out.moved(self.machine.move(RiskState.THROTTLED, breaches[0].reason, out.now_ns))
            return self._verdict(intent, RiskAction.THROTTLE, breaches, out, consume=False)
        if any(b.policy == "capital.reserved" for b in breaches):
            self._suppressed[intent.strategy_id] = (
                self._suppressed.get(intent.strategy_id, ZERO) + proposal.notional
            )
        return self._verdict(intent, RiskAction.BLOCK, breaches, out)

    def _allow(self, proposal: OrderProposal, out: Collector) -> RiskVerdict:
        intent = proposal.intent
        leveraged = self.margin.leveraged(proposal.key, proposal.facts) and not intent.reduce_only
        leverage = intent.leverage if leveraged else None
        if leverage is not None:  # in force at the venue from this order on (set before it)
            self.margin.settings[proposal.key] = leverage
        order = entry_order(intent, leverage)
        self.book.orders.add(order)
        if self.state is RiskState.THROTTLED:
            out.moved(self.machine.move(RiskState.ACTIVE, "an order passed the rate limits", out.now_ns))
        self._levels[order.client_order_id] = (intent.stop_loss, intent.take_profit)
        at_ns, window_ns = rate_time(intent, out.now_ns), self.policies.rate.window_ms * 1_000_000
        self._rates.record(f"venue/{intent.venue}", at_ns, out.now_ns, window_ns)
        self._rates.record(f"strategy/{intent.strategy_id}", at_ns, out.now_ns, window_ns)
        self._intents[intent.intent_id] = order.client_order_id
        if intent.reduce_only:  # protection shrinks to what the exit leaves, before the exit goes
            cancel_entries_of(self.book, intent, out)  # the strategy's entries working there
            self._protect((intent.venue, intent.symbol), out)
        out.actions.append(order)
        values: tuple[tuple[str, str], ...] = (
            ("price", text(proposal.price)),
            ("size", text(intent.size)),
            ("notional", text(proposal.notional)),
            ("order", order.client_order_id),  # the ledger attributes the order's fills by it
        )
        coin = proposal.coin_notional
        if coin is not None:
            values += (("notional_coin", text(coin)),)
        held_at = self.margin.settings.get(proposal.key) if leveraged else None
        if held_at is not None:
            values += (("leverage", text(held_at)),)
        event = out.event(RiskAction.ALLOW, "", "every policy passed", values, **_about(intent))
        return RiskVerdict(intent.intent_id, RiskAction.ALLOW, (order,), (event,), out.output())

    def _verdict(
        self,
        intent: ExecutionIntent,
        action: RiskAction,
        breaches: list[Breach],
        out: Collector,
        consume: bool = True,
    ) -> RiskVerdict:
        if consume and intent.intent_id not in self._intents:
            self._intents[intent.intent_id] = ""
        reasons = tuple(out.event(action, b.policy, b.reason, b.values, **_about(intent)) for b in breaches)
        return RiskVerdict(intent.intent_id, action, (), reasons, out.output())

    # ---- venue events

    def on_fill(self, venue: str, fill: Fill, now_ns: int) -> RiskOutput:
        out = self._begin(now_ns)
        # A fill id is the venue's: two venues (two accounts, two sims) may both number a fill
        # "1". A bare id is one a snapshot kept before fills were known by venue too.
        seen = f"{venue}/{fill.fill_id}"
        if seen in self._fills or fill.fill_id in self._fills:
            return out.output()
        self._fills.add(seen)
        key = (venue, fill.symbol)
        facts = self.instruments.get(key)
        inverse = self.book.inverse(key)
        # A spot fee paid in the base is what the holding lacks of the fill: a buy holds its size
        # less it, a sell gives up its size and it (the venue holds that much less).
        taken = held_fee(fill.symbol, facts, fill.fee, fill.fee_asset)
        signed = fill.size * fill.side.sign - taken
        # An inverse contract's fee is in its coin, a spot fee in the base: valued in the quote
        # asset at the fill's price.
        fee = fill.fee if inverse is None and taken == 0 else fill.fee * fill.price
        self._fees += fee
        self.book.marks[key] = fill.price
        before = self.book.positions.size(key)
        lot = ZERO if facts is None else facts.lot_size
        multiplier = self.book.multiplier(key)
        trade = self.book.positions.apply(key, signed, fill.price, fee, inverse, multiplier, lot)
        self._after_fill(key, signed, fill, out)
        self._dust(key, before, out)
        if trade is not None:
            self._record_trade(trade.pnl, out)
        self._revalue(out)
        self._protect(key, out)
        cancel_outlived(self.book, key, self.instruments.get(key), out)  # spot: no sale of what is gone
        if fill.liquidation:
            self._liquidated(key, fill, out)
        return out.output()

    def _liquidated(self, key: Key, fill: Fill, out: Collector) -> None:
        """A liquidation at the venue (its fill): a risk event, and by policy a stand-down."""
        values = (
            ("size", text(fill.size)), ("price", text(fill.price)), ("fee", text(fill.fee)),
            ("order", fill.order_id), ("position", text(self.book.held(key))),
        )  # fmt: skip
        reason = f"{fill.symbol} liquidated at {key[0]}: {text(fill.size)} at {text(fill.price)}"
        out.event(RiskAction.NOTICE, "liquidation.venue", reason, values, **_at(key))
        if self.policies.liquidation.stand_down and self.machine.takes_entries:
            self._stand_down("liquidation.stand_down", reason, values, out)

    def _dust(self, key: Key, before: Decimal, out: Collector) -> None:
        """A NOTICE when a fill leaves the position under one lot (a spot fee paid in the base
        took it off the lot grid): held, but no order can sell it, so it is neither protected
        nor closed (docs/inspector.md, "Dust"). Said once: at the fill that made it dust."""
        after = self.book.positions.size(key)
        dust = after != 0 and self.book.lots(key, after) == 0
        if not dust or (before != 0 and self.book.lots(key, before) == 0):
            return
        lot = self.instruments[key].lot_size
        values = (("size", text(after)), ("lot_size", text(lot)))
        reason = f"{text(after)} left, under one lot ({text(lot)}): dust, not sold nor protected"
        out.event(RiskAction.NOTICE, "position.dust", reason, values, **_at(key))

    def _after_fill(self, key: Key, signed: Decimal, fill: Fill, out: Collector) -> None:
        working = self.book.orders.get(fill.client_order_id)
        if working is None:
            self.book.positions.attribute_pro_rata(key, signed)
            if fill.liquidation:
                return  # said as the liquidation it is (_liquidated)
            values = (("size", str(fill.size)), ("price", str(fill.price)))
            out.event(RiskAction.NOTICE, "orders.unknown", "a fill of an order not ours", values, **_at(key))
            return
        settles = working.unheard > 0  # the venue's word was ahead of this fill
        working.filled += fill.size
        working.unknown = False
        working.accepted = True
        stop, target = self._levels.get(fill.client_order_id, (None, None))
        if working.remaining <= 0:
            self._finish(fill.client_order_id)
        role = working.order.role
        if role in (OrderRole.ENTRY, OrderRole.EXIT):
            self.book.positions.attribute(working.order.strategy_id, key, signed)
        else:
            self.book.positions.attribute_pro_rata(key, signed)
        if role is OrderRole.ENTRY and _sign(self.book.venue_position(key)) == _sign(signed):
            self._levels_of(key, working.order, stop, target, fill.price, settles)

    def _levels_of(
        self,
        key: Key,
        entry: PlaceOrder,
        stop: Decimal | None,
        target: Decimal | None,
        price: Decimal,
        settles: bool,
    ) -> None:
        """An entry that opened or added to the position sets its levels at its first fill; its
        later fills keep them (what they add is covered at the same prices: the layers of one
        entry need no amendment as its average moves). A fill the venue's word announced
        (`settles`) had its moment at that word: it sets levels only where none stand."""
        sign = _sign(self.book.venue_position(key))
        if self._levels_stand(key, sign, entry, any_source=settles):
            return
        position = self.book.positions.positions[key]
        avg = position.avg_price if _sign(position.size) == sign else price
        self.protector.set_levels(key, sign, avg, stop, target, self.policies.protect, entry)

    def _levels_stand(self, key: Key, sign: int, entry: PlaceOrder, *, any_source: bool) -> bool:
        """Whether the position's levels stay as they are: they are of its side, and set by this
        entry (or by any, `any_source`: this entry's first word that it filled has passed)."""
        levels = self.protector.levels.get(key)
        if levels is None or levels.sign != sign:
            return False
        return any_source or levels.source == entry.client_order_id

    def _venue_word(self, working: WorkingOrder, order: Order) -> bool:
        """An entry's update saying the venue filled more of it than the inspector knows (a
        market entry's PlaceOrder answer says FILLED 100-350 ms before its fills come through
        ingest and the bus; frozen, then sent in a burst, three entries' fills reached the
        inspector one after the other and their pair came 1.08 s after the venue had filled
        them): what it says is filled is protected at once, as at a first fill (levels
        included), and its fills settle it when they come. Recorded as the most said, so the
        same update heard again (on the execution stream) changes nothing. True when it said
        more."""
        if working.order.role is not OrderRole.ENTRY or order.filled_size <= working.venue_filled:
            return False
        first = working.venue_filled == 0
        working.reported = order.filled_size
        self._word_levels(working, order, first)
        return True

    def _word_levels(self, working: WorkingOrder, order: Order, first: bool) -> None:
        """The levels of an entry the venue says opened or added to the position: its intent's
        stop and target, else the policy distances from the position's average with what it
        says filled at its average fill price. Set at its first word that it filled (a fill, or
        this), kept after (no re-pricing as its fills come)."""
        key, entry = working.key, working.order
        sign = _sign(self.book.venue_position(key))
        if sign != entry.side.sign:
            return  # it reduced the position at the venue: no levels of its own
        if self._levels_stand(key, sign, entry, any_source=not first):
            return  # its levels stand, or another entry's set since its first word
        price = order.average_fill_price or entry.price or self.book.marks.get(key)
        if price is None:
            return  # nothing to set the policy's distances from: its first fill will
        position = self.book.positions.positions.get(key)
        if position is not None and _sign(position.size) == sign:
            held, more = abs(position.size), working.unheard
            price = average_entry(held, position.avg_price, more, price, self.book.inverse(key))
        stop, target = self._levels.get(entry.client_order_id, (None, None))
        self.protector.set_levels(key, sign, price, stop, target, self.policies.protect, entry)

    def heeds(self, client_order_id: str, terminal: bool, filled: Decimal = ZERO) -> bool:
        """Whether an order update would change anything: it is of a working order, and ends it,
        answers an unknown placement, is the first word that the venue took a protective
        order (its position is protected from then), or says an entry filled more (`filled`,
        its filled_size) than the inspector knows. The shell leaves the others out of the
        journal (an acknowledgement heard again on the execution stream, updates of orders not
        ours)."""
        working = self.book.orders.get(client_order_id)
        if working is None:
            return False
        said = working.order.role is OrderRole.ENTRY and filled > working.venue_filled
        return terminal or said or working.unknown or (working.order.role.protective and not working.accepted)

    def on_order_update(self, order: Order, now_ns: int) -> RiskOutput:
        out = self._begin(now_ns)
        working = self.book.orders.get(order.client_order_id)
        if working is None:
            return out.output()
        working.unknown = False
        said = self._venue_word(working, order)
        if order.status not in _TERMINAL:
            working.accepted = True
            self._trimmed(working, order)
            if working.order.role.protective:
                self._rejected.pop(working.key, None)
                self.guard.accepted(working.key)
                self._watch(working.key, out)  # at the venue now: its gap may end
            if working.cancelling and self.state is RiskState.HALTED:
                # Open at the venue after CLOSE_ALL: placed while its CancelAll was on its way.
                out.actions.append(CancelOrder(order.client_order_id, *working.key, "closing all"))
            elif said:  # filled in part at the venue: what it says filled is protected now
                self._protect(working.key, out)
            return out.output()
        if working.order.role.protective and self._protection_refused(working, order, out):
            return out.output()
        working.final_size = max(order.filled_size, working.filled)
        if working.remaining <= 0:
            self._finish(order.client_order_id)
        if (
            working.order.role.protective
            and not working.cancelling
            and order.status is not OrderStatus.FILLED
        ):
            self._ended_from_outside(working, order, out)
        self._protect(working.key, out)
        return out.output()

    @staticmethod
    def _trimmed(working: WorkingOrder, order: Order) -> None:
        """The venue took the order for less than asked (a reduce-only order trimmed to what
        the orders already covering the position leave: the sim, and venues that adjust
        reduce-only sizes): its size is what the venue says, and the next re-plan (the fill
        or the cancel's answer the venue was ahead by) covers what it left out. Not at once:
        a venue ahead of the core's fills trims every new order the same way, and a re-plan
        per trim amended one stop nine times in 100 ms (the 30-minute chaos bench)."""
        if working.final_size is None and 0 < order.size < working.order.size:
            working.final_size = order.size

    def _ended_from_outside(self, working: WorkingOrder, order: Order, out: Collector) -> None:
        """A NOTICE: a protective order cancelled, refused or expired at the venue; it is
        re-planned at once, or (refused) once its retry is due."""
        retry = self.guard.retry_at.get(working.key)
        when = "" if retry is None else f" in {(retry - out.now_ns) // 1_000_000} ms"
        reason = f"{working.order.role.value} {order.status.value} from outside; re-planned{when}"
        values: tuple[tuple[str, str], ...] = (("order", order.client_order_id),)
        if order.status_reason:
            values += (("reason", order.status_reason),)
        out.event(RiskAction.NOTICE, "protect", reason, values, **_at(working.key))

    def _protection_refused(self, working: WorkingOrder, order: Order, out: Collector) -> bool:
        """A protective order the venue refused: counted per position; past the limit the
        position is left unprotected (a NOTICE) and the inspector stands down, rather than
        place the same refused order again and again. A refusal of an order the plan had
        already dropped (being cancelled, or the position gone: fills overtook the placement)
        is not counted, nor one of an order sent before the last counted refusal was heard (the
        pair's other order, or a re-plan's on its way): a try is what the inspector sends
        knowing of the refusals before it. True when it stopped here."""
        key = working.key
        if order.status is not OrderStatus.REJECTED:
            if order.status is OrderStatus.FILLED:
                self._rejected.pop(key, None)
            return False
        if working.cancelling or self.book.held(key) == 0:
            return False  # an order the plan had already dropped: no failure to protect
        if working.number <= self._tried.get(key, 0):
            return False  # sent before the last refusal was heard (a pair's other order): not another try
        self._tried[key] = self.book.orders.asked
        self.guard.refused(key, order.status_reason, out.now_ns, self.policies.protect.retry_ms)
        if refused_for_the_request(order.status_reason):
            return False  # the inspector's own doing (below a minimum, off a grid): not the strategy's
        count = self._rejected[key] = self._rejected.get(key, 0) + 1
        if count < _MAX_PROTECT_REJECTS:
            return False
        self._finish(order.client_order_id)
        self.protector.levels.pop(key, None)
        values = (("order", order.client_order_id), ("reason", order.status_reason), ("refusals", str(count)))
        reason = f"the venue refused {count} protective orders in a row: the position is unprotected"
        self._stand_down("protect.rejected", reason, values, out)
        out.event(RiskAction.NOTICE, "protect.rejected", reason, values, **_at(key))
        self.guard.uncovered(key, self.policies.protect.unprotected_max_ms).reported = True  # said here
        return True

    def on_stop_triggered(self, client_order_id: str, now_ns: int) -> RiskOutput:
        """An emulated stop's trigger was crossed (the shell watches the trades): the rest of its
        pair is cancelled first (a venue may refuse reduce-only orders beyond the position),
        then the stop goes to the venue as a reduce-only market order under its own id."""
        out = self._begin(now_ns)
        working = self.book.orders.get(client_order_id)
        if working is None or working.order.role is not OrderRole.STOP_LOSS or working.triggered:
            return out.output()
        working.triggered = True
        self._protect(working.key, out)
        market = replace(working.order, trigger_price=None, time_in_force=TimeInForce.IOC)
        out.actions.append(market)
        return out.output()

    def on_mark(self, venue: str, symbol: str, price: Decimal, now_ns: int) -> RiskOutput:
        out = self._begin(now_ns)
        key = (venue, symbol)
        self.book.marks[key] = price
        self._tick(out)
        if self.state is RiskState.HALTED:
            self._keep_closing(key, out)
        sign = _sign(self.book.venue_position(key))
        moved = self.protector.trail(key, sign, price, self.policies.protect)
        self._revalue(out)
        if moved:  # nothing else a mark changes is in the protective plan
            self._protect(key, out)
        self._watch_liquidation(key, out)
        return out.output()

    def on_margin(self, report: MarginReport, now_ns: int) -> RiskOutput:
        """A venue's derivatives account as it reports it (the shell reads it): the leverage in
        force, the positions' margins and liquidation prices, the settle assets' balances. A
        held position nearer its liquidation than liquidation.min_distance_open is reduced."""
        out = self._begin(now_ns)
        self.margin.apply(report)
        for key in sorted(k for k in self.margin.positions if k[0] == report.venue):
            self._watch_liquidation(key, out)
        return out.output()

    def _watch_liquidation(self, key: Key, out: Collector) -> None:
        """liquidation.min_distance_open (liquidation.py): the reducing order goes after the
        protection is re-planned for what it leaves (as an exit's)."""
        if self.state is RiskState.HALTED:
            return
        found = near_liquidation(self.policies.liquidation, self.margin, self.book, key, out.now_ns)
        if found is None:
            return
        order, values, reason = found
        self.book.orders.add(order)
        self._protect(key, out)
        out.actions.append(order)
        out.event(RiskAction.REDUCE, "liquidation.min_distance_open", reason, values, **_at(key))

    def on_timer(self, now_ns: int) -> RiskOutput:
        """The time the core asked for (`wake_ns`) has come: what is due is done (any input at
        or after it but a placement's unknown result does the same first)."""
        return self._begin(now_ns).output()

    def on_instruments(self, venue: str, facts: Mapping[str, InstrumentFacts], now_ns: int) -> RiskOutput:
        """The venue's facts of some of its instruments (the shell reads them from the venue's
        ListInstruments): protection is sized to what the venue accepts."""
        out = self._begin(now_ns)
        for symbol, each in facts.items():
            self.instruments[(venue, symbol)] = each
        for key in sorted(self._held_keys()):
            if key[0] == venue and key[1] in facts:
                self._protect(key, out)
        return out.output()

    def on_placement_unknown(self, client_order_id: str, now_ns: int) -> RiskOutput:
        """A placement timed out or its connection broke: query the venue before any retry (and
        before anything due is done: a restart asks about every working order this way first)."""
        working = self.book.orders.get(client_order_id)
        if working is None:
            return RiskOutput()
        working.unknown = True
        return RiskOutput(actions=(QueryOrder(client_order_id, *working.key),))

    def on_query_result(self, client_order_id: str, order: Order | None, now_ns: int) -> RiskOutput:
        """The venue's answer to a QueryOrder: the order as it is, or None (never placed: place
        it again, with the same client order id). An order the plan was cancelling is never
        placed again (when its cancel may not have gone out, as across a restart, it goes
        again)."""
        working = self.book.orders.get(client_order_id)
        if working is None or not working.unknown:
            return RiskOutput()
        if working.cancelling:
            return self._cancel_again(working, order, now_ns)
        if order is not None:
            return self.on_order_update(order, now_ns)
        working.unknown = False
        return RiskOutput(actions=(working.order,))

    def _cancel_again(self, working: WorkingOrder, order: Order | None, now_ns: int) -> RiskOutput:
        if order is not None and order.status in _TERMINAL:
            return self.on_order_update(order, now_ns)
        working.unknown = False
        coid = working.order.client_order_id
        if order is None:
            self._finish(coid)
            return RiskOutput()
        return RiskOutput(actions=(CancelOrder(coid, *working.key, "still open after its cancel"),))

    # ---- operator commands and policies

    def stand_down(self, reason: str, now_ns: int) -> RiskOutput:
        out = self._begin(now_ns)
        self._stand_down("operator", _reason(reason), (), out)
        return out.output()

    def resume(self, reason: str, now_ns: int) -> RiskOutput:
        out = self._begin(now_ns)
        out.moved(self.machine.move(RiskState.ACTIVE, _reason(reason), now_ns))
        out.event(RiskAction.RESUME, "operator", reason, (("loss_streak", str(self.streak.count)),))
        self.streak.count = 0
        self.curve.rebase()
        for key in self._held_keys():
            size = self.book.held(key)
            if size != 0 and key not in self.protector.levels:
                price = self._average(key, _sign(size))
                self.protector.set_levels(key, _sign(size), price, None, None, self.policies.protect)
            self._protect(key, out)
        return out.output()

    def _held_keys(self) -> list[Key]:
        """The markets of every position, then (sorted) those only the venue's word holds yet
        (an entry it says filled, none of its fills heard)."""
        keys = list(self.book.positions.positions)
        said = {w.key for w in self.book.orders.entries() if w.unheard > 0}
        return keys + sorted(said.difference(keys))

    def _average(self, key: Key, sign: int) -> Decimal:
        """The price the policy's distances are taken from for a position left without levels:
        its average, or the mark when none of it is heard yet."""
        position = self.book.positions.positions.get(key)
        if position is not None and _sign(position.size) == sign:
            return position.avg_price
        return self.book.marks.get(key, ZERO)

    def close_all(self, reason: str, now_ns: int) -> RiskOutput:
        """Cancel everything and flatten every position; HALTED until an operator resumes."""
        out = self._begin(now_ns)
        _reason(reason)
        venues = {w.key[0] for w in self.book.orders} | {
            k[0] for k, p in self.book.positions.positions.items() if p.size
        }
        for working in self.book.orders:
            working.cancelling = True
        out.actions.extend(CancelAll(venue, reason) for venue in sorted(venues))
        self.protector.levels.clear()
        self.guard.clear()
        self._flattens.clear()
        for key in sorted(self._held_keys()):
            size = self.book.held(key)  # what the venue says filled is closed too
            if size != 0:
                self._flattens[key] = 1
                out.actions.append(self._flatten(key, size, now_ns))
        out.moved(self.machine.move(RiskState.HALTED, reason, now_ns))
        out.event(RiskAction.CLOSE_ALL, "operator", reason, (("venues", ",".join(sorted(venues))),))
        return out.output()

    def on_legacy(
        self, venue: str, symbol: str, size: Decimal, entry_price: Decimal | None, now_ns: int
    ) -> RiskOutput:
        """A position found at a venue at the first start: legacy, never ours (no protection,
        no exit, not in our positions), but no entry of ours may go against it (checks.py)."""
        self.book.legacy[(venue, symbol)] = (size, entry_price)
        return RiskOutput()

    def on_listing(self, venue: str, symbol: str, delisted: bool, now_ns: int) -> RiskOutput:
        """The venue delisted a market (md.{<venue>}.instruments; the shell reports it), or listed
        it again: while delisted, no new entry goes there (checks.check_listed). Said with a
        NOTICE either way, naming the position held there if any (the operator's to close)."""
        out = self._begin(now_ns)
        key = (venue, symbol)
        held = self.book.held(key)
        values: tuple[tuple[str, str], ...] = (("position", text(held)),)
        if delisted:
            if key in self.book.delisted:
                return out.output()
            self.book.delisted[key] = "the venue no longer lists it"
            reason = f"{symbol} delisted at {venue}: new entries there are refused"
            if held != 0:
                reason += f"; a position of {text(held)} is held there: close it at the venue"
        else:
            if self.book.delisted.pop(key, None) is None:
                return out.output()
            reason = f"{symbol} listed again at {venue}: entries are taken again"
        out.event(RiskAction.NOTICE, "instrument.delisted", reason, values, venue=venue, symbol=symbol)
        return out.output()

    def on_venue_stand(self, venue: str, reason: str, now_ns: int) -> RiskOutput:
        """The reconciliation's finding (the shell reports it): a venue's positions diverged
        (`reason`; its entries are refused, checks.check_venue) or agree again ("")."""
        if reason:
            self.book.venues_down[venue] = reason
        else:
            self.book.venues_down.pop(venue, None)
        return RiskOutput()

    def update_policies(self, policies: PolicySet, now_ns: int) -> RiskOutput:
        out = self._begin(now_ns)
        changes = diff_policies(self.policies, policies)
        self.policies = policies
        if changes:
            values = tuple((c.key, f"{c.old} -> {c.new}") for c in changes)
            out.event(RiskAction.POLICY_CHANGE, "policies", describe_changes(changes), values)
        return out.output()

    # ---- internals

    def _keep_closing(self, key: Key, out: Collector) -> None:
        """HALTED after CLOSE_ALL, at a mark: a position left open with no flatten order working
        (the last one ended short, or an order placed before CLOSE_ALL filled after it) is
        flattened again, up to _MAX_FLATTENS orders; then a NOTICE leaves it to the operator."""
        size = self.book.held(key)
        if size == 0 or any(w.order.role is OrderRole.FLATTEN and w.key == key for w in self.book.orders):
            return
        tries = self._flattens[key] = self._flattens.get(key, 0) + 1
        values = (("size", str(size)), ("flatten_orders", str(tries - 1)))
        if tries > _MAX_FLATTENS:
            if tries == _MAX_FLATTENS + 1:
                reason = f"still {size} after {_MAX_FLATTENS} flatten orders: left to the operator"
                out.event(RiskAction.NOTICE, "close_all", reason, values, **_at(key))
            return
        out.event(RiskAction.NOTICE, "close_all", f"{size} still open: flattened again", values, **_at(key))
        out.actions.append(self._flatten(key, size, out.now_ns))

    def _flatten(self, key: Key, size: Decimal, now_ns: int) -> PlaceOrder:
        order = flatten_order(key, size, now_ns)
        self.book.orders.add(order)
        return order

    def _finish(self, client_order_id: str) -> None:
        self.book.orders.remove(client_order_id)
        self._levels.pop(client_order_id, None)

    def _tick(self, out: Collector) -> None:
        if self.state is RiskState.THROTTLED and out.now_ns >= self.machine.throttled_until_ns:
            out.moved(self.machine.move(RiskState.ACTIVE, "the rate window passed", out.now_ns))

    def _record_trade(self, pnl: Decimal, out: Collector) -> None:
        self.streak.record(pnl, out.now_ns)
        limit = self.policies.loss.max_loss_streak
        if limit is not None and self.streak.count >= limit and self.machine.takes_entries:
            values = (("value", str(self.streak.count)), ("limit", str(limit)))
            self._stand_down(
                "loss.max_loss_streak", f"{self.streak.count} losing trades in a row", values, out
            )

    def _revalue(self, out: Collector) -> None:
        equity = self.book.equity(self.curve.start, self._fees)
        self.curve.update(equity, out.now_ns, self.policies.schedule.zone)
        if not self.machine.takes_entries:
            return
        loss = self.policies.loss
        for policy, value, limit in (
            ("loss.max_daily_drawdown", self.curve.daily_drawdown, loss.max_daily_drawdown),
            ("loss.max_drawdown", self.curve.drawdown, loss.max_drawdown),
        ):
            if limit is not None and value > limit:
                # Shown as the API shows decimals: a ratio's 28 digits cut to 8, money to PNL_QUANTUM.
                shown = value.quantize(_RATIO_SHOWN, context=WIDE)
                values = (("value", text(shown)), ("limit", text(limit)), ("equity", text(money(equity))))
                self._stand_down(policy, f"drawdown {value:.4%} is past the limit {limit}", values, out)
                return

    def _stand_down(
        self, policy: str, reason: str, values: tuple[tuple[str, str], ...], out: Collector
    ) -> None:
        """No new entries: working entry orders are cancelled (not those the venue said are done:
        their fills are on their way, and protected); exits and protection go on."""
        out.moved(self.machine.move(RiskState.STANDING_DOWN, reason, out.now_ns))
        out.event(RiskAction.STAND_DOWN, policy, reason, values)
        for working in self.book.orders.entries():
            if not working.cancelling and working.final_size is None:
                working.cancelling = True
                out.actions.append(CancelOrder(working.order.client_order_id, *working.key, "standing down"))

    def _begin(self, now_ns: int) -> Collector:
        """An input's collector, after what was due by its time (guard.py): retries and
        coalescing windows re-plan their positions, gaps past the bound are said."""
        out = Collector(now_ns)
        for key in self.guard.due(now_ns):
            self._protect(key, out)
        for key in self.guard.overdue():
            self._watch(key, out)  # as it is now: a gap that ended goes unsaid
            gap = self.guard.gaps.get(key)
            if gap is not None:
                self._report(key, gap, out)
        return out

    def _protect(self, key: Key, out: Collector) -> None:
        """The position's protective orders made to fit it (protect.py), as far as the guard
        lets: nothing is placed while a refusal's retry is not due (a refusal is mostly the
        venue ahead of us: the position closed there, its fills not heard yet; placed again at
        once, three refusals stood the inspector down with nothing to protect), and what an
        entry still filling adds waits for the coalescing window, and a re-price waits for the
        last one's window to end. Then its gap is watched."""
        if self.state is RiskState.HALTED:
            return
        size = self.book.held(key)  # what the venue's answers say filled included
        if size == 0:
            self.guard.flat(key)
            self._rejected.pop(key, None)
        grow = not self._coalescing(key, size)
        if grow:
            self.guard.grown(key)
        facts = self.instruments.get(key)
        place, reprice = not self.guard.waiting(key), self.guard.may_reprice(key)
        plan = self.protector.plan(
            key, size, self.book.orders, place=place, grow=grow, facts=facts, reprice=reprice
        )
        if plan.repriced:
            self.guard.repriced(key, self.policies.protect.coalesce_ms)
        out.actions.extend(plan.actions)
        self._short[key] = plan.short
        self._watch(key, out)

    def _coalescing(self, key: Key, size: Decimal) -> bool:
        """Whether what the position added waits: an entry adding to it is still filling, within
        the window since its first uncovered fill (an entry's fills heard together, as a sweep's
        are, get one pair for all of them). The window doubles with each layer already there
        (fewer layers for a slow fill; venues count open stop orders), at most half the
        unprotected bound."""
        if size == 0 or key not in self.protector.levels:
            return False
        orders = self.book.orders
        if self.protector.covered(key, orders) >= self.protector.wanted(key, size, orders):
            return False
        sign = _sign(size)
        filling = any(
            w.venue_filled > 0 and w.venue_remaining > 0 and not w.cancelling and w.order.side.sign == sign
            for w in orders.entries(key)
        )
        if not filling:
            return False
        p = self.policies.protect
        layers = len(orders.layers(key, OrderRole.STOP_LOSS))
        window = min(p.coalesce_ms << min(max(layers - 1, 0), 16), p.unprotected_max_ms // 2)
        return self.guard.hold(key, window)

    def _watch(self, key: Key, out: Collector) -> None:
        """A position without its whole pair opens a gap (said past the bound); one protected
        again, or closed, ends it (said when the gap was)."""
        size = self.book.held(key)
        orders = self.book.orders
        want = self.protector.wanted(key, size, orders) if size != 0 else ZERO
        covered = self.protector.covered(key, orders, accepted=True)  # at the venue, not on its way
        if want == 0 or (key in self.protector.levels and covered >= want):
            self._short.pop(key, None)
            gap = self.guard.covered(key)
            if gap is not None and gap.reported:
                state = "protected" if size != 0 else "closed"
                ms = (out.now_ns - gap.since_ns) // 1_000_000
                values = (("state", state), ("size", str(size)), ("unprotected_ms", str(ms)))
                reason = f"{state} after {ms} ms without its whole protective pair"
                out.event(RiskAction.NOTICE, "protect.unprotected", reason, values, **_at(key))
            return
        self.guard.uncovered(key, self.policies.protect.unprotected_max_ms)

    def _report(self, key: Key, gap: Gap, out: Collector) -> None:
        """A gap past the bound: a risk event saying what is unprotected and why."""
        gap.reported = True
        size = self.book.held(key)
        orders = self.book.orders
        want = self.protector.wanted(key, size, orders)
        covered = self.protector.covered(key, orders, accepted=True)
        ms = (out.now_ns - gap.since_ns) // 1_000_000
        why, extra = self._why(key)
        values = (
            ("state", "unprotected"), ("size", str(size)), ("covered", str(covered)),
            ("uncovered", str(want - covered)), ("unprotected_ms", str(ms)), ("why", why), *extra,
        )  # fmt: skip
        reason = f"{want - covered} of the position without a protective pair for {ms} ms: {why}"
        out.event(RiskAction.NOTICE, "protect.unprotected", reason, values, **_at(key))

    def _why(self, key: Key) -> tuple[str, tuple[tuple[str, str], ...]]:
        if key not in self.protector.levels:
            return "no protective levels (not opened by an entry of ours, or left after refusals)", ()
        if self.guard.waiting(key):
            reason = self.guard.reasons.get(key, "")
            return "the venue refused it" + (f": {reason}" if reason else ""), ()
        short = self._short.get(key)
        if short is not None:
            return "below the venue's minimum", short.values()
        if self.guard.coalesce_until.get(key, 0) > self.guard.now_ns:
            return "an entry is still filling", ()
        return "placed, not confirmed yet", ()


def _about(intent: ExecutionIntent) -> dict[str, str]:
    return {
        "intent_id": intent.intent_id,
        "strategy_id": intent.strategy_id,
        "venue": intent.venue,
        "symbol": intent.symbol,
    }


def _at(key: Key) -> dict[str, str]:
    return {"venue": key[0], "symbol": key[1]}


def _reason(reason: str) -> str:
    if not reason.strip():
        raise InvalidArgument.field("reason", "an operator command needs a reason")
    return reason
