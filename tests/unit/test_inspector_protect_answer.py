"""The venue's answer first: a market entry's PlaceOrder answer says FILLED (its filled_size and
average_fill_price) 100-350 ms before its fills come through ingest and the bus. A chaos run had
three entries sent at once after a 14 s freeze; the venue filled each within 40 ms, but their
fills reached the inspector one after the other over 650 ms, and the pair, sized by the fills
heard, closed the position's gap 1.08 s after the freeze (the bound is 1 s). Now what the venue
says an entry filled is protected at once, as at a first fill; its fills settle it and change
nothing at the venue. The position, PnL, fees and the limits stay the fills' (never counted
twice), and a replay of the journal gives the same state."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.inspector_support import MS, T0, D, cancelled, core, fill, intent, market, placed, update
from trademesh.advisor.v1 import messages_pb2 as am
from trademesh.common.v1 import common_pb2 as common
from trademesh.core.domain.convert import fill_to_pb, order_to_pb
from trademesh.core.domain.model import Fill, InstrumentKind, Order, OrderStatus, Side
from trademesh.core.inspector.audit import Audit
from trademesh.core.inspector.driver import apply_entry, new_core
from trademesh.core.inspector.engine.actions import (
    Amend,
    CancelAll,
    CancelOrder,
    OrderAction,
    OrderRole,
    PlaceOrder,
)
from trademesh.core.inspector.engine.core import InspectorCore
from trademesh.core.inspector.engine.events import RiskAction, RiskOutput, RiskVerdict
from trademesh.core.inspector.engine.instruments import InstrumentFacts
from trademesh.core.inspector.engine.policies import PolicySet, PositionPolicy, ProtectPolicy
from trademesh.core.inspector.snapshot import from_snapshot, to_snapshot
from trademesh.risk.v1 import journal_pb2 as jr
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

SL, TP = OrderRole.STOP_LOSS, OrderRole.TAKE_PROFIT
KEY = ("sim", "BTC/USDT")
NO_WAIT = PolicySet(protect=ProtectPolicy(coalesce_ms=0))
SECOND = 1_000 * MS


def answer(
    order: PlaceOrder, filled: str, price: str = "100", status: OrderStatus = OrderStatus.FILLED
) -> Order:
    """The venue's answer to a placement (or a later update) saying `filled` of it filled."""
    return replace(update(order, status, filled), average_fill_price=D(price))


def market_entry(
    c: InspectorCore, side: Side = Side.BUY, size: str = "0.02", mid: str = "100", **kw: str
) -> PlaceOrder:
    """A market entry allowed (kw: intent_id, stop, target)."""
    verdict = c.on_intent(intent(side, size, None, **kw), market(mid), T0)  # type: ignore[arg-type]
    assert verdict.orders, verdict.reasons
    return verdict.orders[0]


def venue_calls(out: RiskOutput) -> list[OrderAction]:
    return [a for a in out.actions if isinstance(a, PlaceOrder | CancelOrder | Amend | CancelAll)]


def test_a_market_entry_answered_filled_gets_its_pair_before_any_fill() -> None:
    c = core()
    entry = market_entry(c, stop="95", target="110")
    out = c.on_order_update(answer(entry, "0.02"), T0 + 8 * MS)
    (stop,), (target,) = placed(out.actions, SL), placed(out.actions, TP)
    assert (stop.side, stop.size, stop.trigger_price) == (Side.SELL, D("0.02"), D(95))
    assert (target.side, target.size, target.price) == (Side.SELL, D("0.02"), D(110))
    assert stop.reduce_only and target.reduce_only
    assert c.book.positions.size(KEY) == 0  # the position is the fills'
    assert c.book.venue_position(KEY) == D("0.02")  # protection is the venue's word
    for taken in (stop, target):
        c.on_order_update(update(taken, OrderStatus.OPEN), T0 + 20 * MS)
    # Its fills come through ingest and the bus 100-650 ms later: they settle the word.
    first = c.on_fill("sim", fill(entry, "0.0103", "100"), T0 + 300 * MS)
    second = c.on_fill("sim", fill(entry, "0.0097", "100.01"), T0 + 302 * MS)
    assert venue_calls(first) == [] and venue_calls(second) == []
    assert c.book.positions.size(KEY) == D("0.02") == c.book.venue_position(KEY)
    assert c.book.orders.get(entry.client_order_id) is None  # its fills are in: done
    assert c.protector.covered(KEY, c.book.orders, accepted=True) == D("0.02")


def test_without_levels_in_the_intent_the_policy_distances_are_taken_from_the_average_fill_price() -> None:
    c = core(PolicySet(protect=ProtectPolicy(stop_loss=D("0.02"), take_profit=D("0.04"))))
    entry = market_entry(c)
    out = c.on_order_update(answer(entry, "0.02", "200"), T0 + MS)
    (stop,), (target,) = placed(out.actions, SL), placed(out.actions, TP)
    assert (stop.trigger_price, target.price) == (D(196), D(208))  # from 200, not the market's 100
    assert venue_calls(c.on_fill("sim", fill(entry, price="201"), T0 + 300 * MS)) == []  # no re-price
    assert c.protector.levels[KEY].stop == D(196)


def test_an_answer_heard_again_changes_nothing() -> None:
    """The answer comes once from PlaceOrder and again on the execution stream: the most said is
    kept, so the second is no news (and the shell leaves it out of the journal)."""
    c = core()
    entry = market_entry(c, stop="95", target="110")
    coid = entry.client_order_id
    assert c.heeds(coid, terminal=False, filled=D("0.01"))  # an entry said filled more: heeded
    c.on_order_update(answer(entry, "0.01", status=OrderStatus.PARTIALLY_FILLED), T0 + MS)
    assert not c.heeds(coid, terminal=False, filled=D("0.01"))  # the same word again
    assert c.heeds(coid, terminal=False, filled=D("0.02"))
    again = c.on_order_update(answer(entry, "0.01", status=OrderStatus.PARTIALLY_FILLED), T0 + 2 * MS)
    assert again.actions == () and c.book.venue_position(KEY) == D("0.01")
    c.on_fill("sim", fill(entry, "0.01"), T0 + 3 * MS)
    assert not c.heeds(coid, terminal=False, filled=D("0.01"))  # the execution's own update: no news


def test_a_burst_answered_after_a_freeze_is_covered_at_each_answer_and_its_fills_place_nothing() -> None:
    """The chaos run's BTC/USDT (seed 2400305156, its journal replayed by tests.chaos_journal): a
    protected position of 0.02, an entry answered FILLED 17 ms before the freeze, three more sent at once
    after it, each answered FILLED within 40 ms; their fills heard 100-650 ms later, one after the
    other. Each answer gets its layer at once; the fills ask nothing of the venue."""
    c, venue = core(NO_WAIT), Venue()
    first = market_entry(c, mid="65010", stop="64000", target="66000")
    venue.run(c, c.on_fill("sim", fill(first, price="65010"), T0))
    assert venue.covers() == (D("0.02"), D("0.02"))
    burst = [market_entry(c, mid="65012", intent_id=f"b{n}", stop="64000", target="66000") for n in range(4)]
    for n, entry in enumerate(burst):  # the answers: the first before the freeze, three after it
        at = T0 + (8 if n == 0 else 14_000 + 20 * n) * MS
        venue.run(c, c.on_order_update(answer(entry, "0.02", "65012"), at))
        assert venue.covers() == (D("0.02") * (n + 2),) * 2  # the position the venue holds, at once
    for n, entry in enumerate(burst):  # their fills, one after the other
        for part, size in enumerate(("0.00069", "0.01931")):
            at = T0 + (14_200 + 150 * n + part) * MS
            assert venue_calls(c.on_fill("sim", fill(entry, size, "65012"), at)) == []
    assert c.book.positions.size(KEY) == D("0.10") == c.book.venue_position(KEY)
    assert len(c.book.orders.layers(KEY, SL)) == 4  # the first pair, three layers and the newest amended
    assert venue.covers() == (D("0.10"), D("0.10"))


def test_a_limit_entry_answered_filled_in_part_is_covered_within_the_coalescing_window() -> None:
    """A limit entry crossing the book in part and resting: PARTIALLY_FILLED 0.5 of 2. The venue
    is still filling it, so its pair waits as a first fill's would (at most the coalescing window),
    then covers what the venue said; what the fills bring after that word adds nothing."""
    c = core()
    entry = c.on_intent(intent(size="2", stop="95", target="110"), market(), T0).orders[0]
    held = c.on_order_update(answer(entry, "0.5", status=OrderStatus.PARTIALLY_FILLED), T0 + MS)
    assert placed(held.actions) == [] and c.wake_ns == T0 + 251 * MS  # protect.coalesce_ms
    due = c.on_timer(T0 + 251 * MS)
    (stop,), (target,) = placed(due.actions, SL), placed(due.actions, TP)
    assert stop.size == target.size == D("0.5")
    assert venue_calls(c.on_fill("sim", fill(entry, "0.5"), T0 + 300 * MS)) == []
    assert c.book.venue_position(KEY) == D("0.5") and c.book.positions.size(KEY) == D("0.5")


def test_an_entry_cancelled_after_a_partial_fill_is_protected_for_what_the_venue_filled() -> None:
    c = core()
    entry = c.on_intent(intent(size="2", stop="95", target="110"), market(), T0).orders[0]
    c.on_order_update(update(entry, OrderStatus.OPEN), T0 + MS)
    out = c.on_order_update(answer(entry, "0.8", status=OrderStatus.CANCELED), T0 + 2 * MS)
    (stop,), (target,) = placed(out.actions, SL), placed(out.actions, TP)  # done: no window to wait
    assert stop.size == target.size == D("0.8")
    assert venue_calls(c.on_fill("sim", fill(entry, "0.8"), T0 + 300 * MS)) == []
    assert c.book.orders.get(entry.client_order_id) is None and c.book.positions.size(KEY) == D("0.8")


def test_an_opposite_entry_the_venue_says_filled_shrinks_the_pair_before_its_fill() -> None:
    """A sell entry of 0.5 against a protected long of 2: answered FILLED, the long is 1.5 at the
    venue, and the pair is brought down to it at once (the venue would refuse reduce-only orders
    beyond the position); its fill then changes nothing."""
    c, venue = core(NO_WAIT), Venue()
    long = market_entry(c, size="2", stop="95", target="110")
    venue.run(c, c.on_fill("sim", fill(long), T0))
    sell = market_entry(c, Side.SELL, "0.5", intent_id="the-sell")
    venue.run(c, c.on_order_update(answer(sell, "0.5"), T0 + MS))
    assert venue.covers() == (D("1.5"), D("1.5")) and c.protector.levels[KEY].sign == 1
    assert venue_calls(c.on_fill("sim", fill(sell, "0.5"), T0 + 300 * MS)) == []
    assert c.book.positions.size(KEY) == D("1.5")


def test_a_short_entry_answered_filled_gets_a_buy_side_pair_above() -> None:
    c = core(PolicySet(protect=ProtectPolicy(stop_loss=D("0.01"), take_profit=D("0.02"))))
    entry = market_entry(c, Side.SELL, "1")
    out = c.on_order_update(answer(entry, "1", "100"), T0 + MS)
    (stop,), (target,) = placed(out.actions, SL), placed(out.actions, TP)
    assert (stop.side, stop.trigger_price, target.side, target.price) == (Side.BUY, D(101), Side.BUY, D(98))
    assert c.book.venue_position(KEY) == D(-1)


def test_the_limits_count_an_answered_entry_once_and_a_spot_holding_is_the_fills() -> None:
    """The limits are checked on the fills and the working entries: an entry said filled counts
    once, its fills heard or not. On a spot market what a strategy may sell is its fills' holding."""
    c = core(PolicySet(position=PositionPolicy(max_size=D("0.03"))))
    spot = InstrumentFacts(kind=InstrumentKind.SPOT)
    c.on_instruments("sim", {"BTC/USDT": spot}, T0)
    entry = market_entry(c, stop="95", target="110")
    c.on_order_update(answer(entry, "0.02"), T0 + MS)
    more = c.on_intent(intent(size="0.02", price=None, intent_id="more"), market(), T0 + 2 * MS)
    assert [e.policy for e in more.reasons] == ["position.max_size"]
    assert c.on_intent(intent(size="0.01", price=None, intent_id="fits"), market(), T0 + 2 * MS).allowed
    sell = c.on_intent(intent(Side.SELL, "0.01", None, intent_id="sell"), market(), T0 + 3 * MS)
    assert [e.policy for e in sell.reasons] == ["position.spot_short"]  # nothing heard yet to sell
    c.on_fill("sim", fill(entry, price="100", fee="0.002"), T0 + 300 * MS)
    assert (c.book.positions.size(KEY), c.fees) == (D("0.02"), D("0.002"))


def test_close_all_flattens_what_the_venue_said_filled_and_a_stand_down_leaves_a_done_entry_alone() -> None:
    c = core()
    entry = market_entry(c, stop="95", target="110")
    c.on_order_update(answer(entry, "0.02"), T0 + MS)
    stood = c.stand_down("test", T0 + 2 * MS)
    assert entry.client_order_id not in cancelled(stood.actions)  # done at the venue: nothing to cancel
    out = c.close_all("test", T0 + 3 * MS)
    (flatten,) = placed(out.actions, OrderRole.FLATTEN)
    assert (flatten.side, flatten.size, flatten.reduce_only) == (Side.SELL, D("0.02"), True)
    c.on_fill("sim", fill(entry), T0 + 300 * MS)  # the entry's fills, then the flatten's
    c.on_order_update(answer(flatten, "0.02"), T0 + 301 * MS)
    c.on_fill("sim", fill(flatten), T0 + 302 * MS)
    assert c.book.positions.size(KEY) == 0 == c.book.venue_position(KEY)
    assert placed(c.on_mark("sim", "BTC/USDT", D(100), T0 + SECOND).actions) == []  # nothing left


def test_a_position_only_the_venue_has_spoken_of_is_protected_again_when_resumed() -> None:
    """Its pair refused three times in a row (the inspector stood down, the levels dropped)
    before any fill was heard: resumed, the position the venue said is filled gets levels at the
    policy distances from the mark (nothing is heard to average) once the retry is due."""
    c = core(PolicySet(protect=ProtectPolicy(stop_loss=D("0.02"), take_profit=D("0.04"))))
    entry = market_entry(c)
    (stop,) = placed(c.on_order_update(answer(entry, "0.02", "100"), T0 + MS).actions, SL)
    refused = replace(update(stop, OrderStatus.REJECTED), status_reason="FAILED_PRECONDITION: x")
    now = T0 + 2 * MS
    for _ in range(2):
        c.on_order_update(replace(refused, client_order_id=stop.client_order_id), now)
        now = c.guard.retry_at[KEY]
        (stop,) = placed(c.on_timer(now).actions, SL)
    c.on_order_update(replace(refused, client_order_id=stop.client_order_id), now)  # the third
    assert not c.machine.takes_entries and KEY not in c.protector.levels
    c.resume("operator", now + MS)
    assert c.protector.levels[KEY].stop == D(98)  # from the mark: 100
    assert c.wake_ns is not None
    (again,) = placed(c.on_timer(c.wake_ns).actions, SL)
    assert (again.size, again.trigger_price) == (D("0.02"), D(98))


@dataclass
class Venue:
    """The protective orders resting at a venue that takes every placement and cancel at once,
    answering the core (which may ask for more)."""

    resting: dict[str, PlaceOrder] = field(default_factory=dict)

    def run(self, c: InspectorCore, out: RiskOutput | RiskVerdict) -> None:
        actions = list(out.output.actions if isinstance(out, RiskVerdict) else out.actions)
        while actions:
            action = actions.pop(0)
            if isinstance(action, Amend):
                actions[:0] = [CancelOrder(action.client_order_id, *KEY, "amended"), action.order]
            elif isinstance(action, CancelOrder) and action.client_order_id in self.resting:
                gone = self.resting.pop(action.client_order_id)
                actions += c.on_order_update(update(gone, OrderStatus.CANCELED), c.guard.now_ns).actions
            elif isinstance(action, PlaceOrder) and action.role.protective:
                self.resting[action.client_order_id] = action
                actions += c.on_order_update(update(action, OrderStatus.OPEN), c.guard.now_ns).actions

    def covers(self) -> tuple[Decimal, Decimal]:
        """What the resting stops and targets cover."""
        return tuple(  # type: ignore[return-value]
            sum((o.size for o in self.resting.values() if o.role is role), Decimal(0)) for role in (SL, TP)
        )


# ---- any interleaving


@st.composite
def interleavings(draw: st.DrawFn) -> tuple[list[tuple[str, int, int]], list[list[str]]]:
    """Up to three market buys, each filled whole at the venue when placed, in 1-3 parts; its
    answer (FILLED, or none), maybe heard twice, and its fills heard in any order among the rest
    (each entry's own fills in order). Steps: ("intent" | "answer" | "fill", entry, part)."""
    entries = draw(st.integers(1, 3))
    parts = [
        draw(st.lists(st.sampled_from(["0.01", "0.005", "0.02"]), min_size=1, max_size=3))
        for _ in range(entries)
    ]
    queues = []
    for n in range(entries):
        steps = [("fill", n, p) for p in range(len(parts[n]))]
        words = draw(st.integers(0, 2))  # no answer, the answer, the answer heard again
        for _ in range(words):
            steps.insert(draw(st.integers(0, len(steps))), ("answer", n, 0))
        queues.append([("intent", n, 0), *steps])
    order: list[tuple[str, int, int]] = []
    while any(queues):
        live = [q for q in queues if q]
        order.append(draw(st.sampled_from(live)).pop(0))
    return order, parts


@given(interleavings())
@settings(max_examples=200, deadline=None)
def test_any_interleaving_keeps_protection_covering_the_venues_position(
    case: tuple[list[tuple[str, int, int]], list[list[str]]],
) -> None:
    """Whatever the order of answers and fills: after each input, the resting stops and targets
    cover exactly what the core knows the venue holds (fills heard, and the answers' word), never
    more than the venue holds; a fill its entry's answer announced asks nothing of the venue; and
    the position, fees and PnL are those of the fills alone (a core that never heard an answer)."""
    steps, parts = case
    c, venue, plain = core(NO_WAIT), Venue(), core(NO_WAIT)
    entries: dict[int, PlaceOrder] = {}
    held = Decimal(0)  # the venue's position: every entry filled whole when placed
    for at, (kind, n, part) in enumerate(steps, start=1):
        now = T0 + at * MS
        if kind == "intent":
            size = str(sum(map(D, parts[n]), Decimal(0)))
            made = intent(size=size, price=None, intent_id=f"e{n}", stop="95", target="110")
            verdict = c.on_intent(made, market(), now)
            venue.run(c, verdict)
            entries[n] = verdict.orders[0]
            plain.on_intent(made, market(), now)
            held += entries[n].size
        elif kind == "answer":
            venue.run(c, c.on_order_update(answer(entries[n], str(entries[n].size)), now))
        else:
            said = c.book.orders.get(entries[n].client_order_id)
            announced = said is not None and said.unheard >= D(parts[n][part])
            one = _fill(entries[n], parts[n][part], n, part)
            out = c.on_fill("sim", one, now)
            if announced:
                assert venue_calls(out) == [], (steps, kind, n, part)
            venue.run(c, out)
            plain.on_fill("sim", one, now)
        known = c.book.venue_position(KEY)
        assert venue.covers() == (known, known), (steps, kind, n, part)
        assert known <= held
    assert c.book.positions.size(KEY) == held == plain.book.positions.size(KEY)
    assert (c.fees, c.curve.equity) == (plain.fees, plain.curve.equity)
    assert c.book.positions.positions[KEY] == plain.book.positions.positions[KEY]
    assert c.book.positions.by_strategy == plain.book.positions.by_strategy


def _fill(order: PlaceOrder, size: str, n: int, part: int) -> Fill:
    return replace(fill(order, size, "100", fee="0.01"), fill_id=f"f{n}-{part}")


# ---- the journal


def _market_intent(intent_id: str) -> jr.JournalEntry:
    message = am.Intent(
        intent_id=intent_id, decision_id="d", signal_id="s", venue="sim", symbol="BTC/USDT",
        side=common.SIDE_BUY, size="0.02", entry_type=tf.ORDER_TYPE_MARKET, stop_loss="95",
        take_profit="110", time_in_force=tf.TIME_IN_FORCE_IOC, strategy_id="manual",
        expires_at_ns=T0 + 60_000 * MS, ts_intent_ns=T0,
    )  # fmt: skip
    return jr.JournalEntry(
        now_ns=T0, intent=jr.JournalIntent(intent=message, bid="99.95", ask="100.05", last="100")
    )


def test_a_replay_of_the_journal_and_a_snapshot_after_the_answer_give_the_same_state() -> None:
    """The answer is a journal entry like any update: a restart replaying the journal (or
    restoring a snapshot taken between the answer and the fills) holds the same word, places
    nothing again, and its fills settle it as live."""
    start = jr.JournalEntry(
        now_ns=T0, start=jr.JournalStart(policies="", starting_equity="100000", instance="i")
    )
    live = new_core(start)
    entries = [_market_intent("replayed")]
    verdict = apply_entry(live, entries[0])
    assert isinstance(verdict, RiskVerdict)
    entry = verdict.orders[0]
    entries.append(jr.JournalEntry(now_ns=T0 + 5 * MS, order_update=order_to_pb(answer(entry, "0.02"))))
    out = apply_entry(live, entries[-1])
    assert isinstance(out, RiskOutput)
    for taken in placed(out.actions):
        entries.append(
            jr.JournalEntry(now_ns=T0 + 9 * MS, order_update=order_to_pb(update(taken, OrderStatus.OPEN)))
        )
        apply_entry(live, entries[-1])
    replayed = new_core(start)
    for journaled in entries:
        apply_entry(replayed, journaled)
    restored = from_snapshot(to_snapshot(live, Audit(), start, "", (1, 0)))
    snap = to_snapshot(live, Audit(), start, "", (1, 0))
    assert (
        to_snapshot(replayed, Audit(), start, "", (1, 0))
        == snap
        == to_snapshot(restored, Audit(), start, "", (1, 0))
    )
    assert restored.book.orders.get(entry.client_order_id).reported == D("0.02")  # type: ignore[union-attr]
    the_fill = jr.JournalEntry(
        now_ns=T0 + 300 * MS, fill=jr.JournalFill(venue="sim", fill=fill_to_pb(fill(entry)))
    )
    results = [apply_entry(each, the_fill) for each in (live, replayed, restored)]
    assert results[0] == results[1] == results[2] and results[0].actions == ()  # type: ignore[union-attr]
    assert all(
        each.book.venue_position(KEY) == D("0.02") == each.book.positions.size(KEY)
        for each in (live, replayed, restored)
    )
    assert not any(e.action is RiskAction.NOTICE for e in results[0].events)  # type: ignore[union-attr]
