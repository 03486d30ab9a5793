"""Issue 37, item 2: a refused protective order is placed again on the core's own timer (an
injected, journaled input), never at the market's next mark; a new position never inherits the
last one's refusal; a position without its whole protective pair past the bound
(`protect.unprotected_max_ms`) is a risk event the operator is notified of."""

from __future__ import annotations

from tests.inspector_support import MS, T0, D, amended, cancelled, core, fill, intent, market, placed, update
from trademesh.advisor.v1 import messages_pb2 as am
from trademesh.common.v1 import common_pb2 as common
from trademesh.core.domain.convert import fill_to_pb, order_to_pb
from trademesh.core.domain.model import OrderStatus, Side
from trademesh.core.inspector.convert import risk_event_to_pb
from trademesh.core.inspector.driver import apply_entry, new_core
from trademesh.core.inspector.engine.actions import OrderRole, PlaceOrder
from trademesh.core.inspector.engine.core import InspectorCore
from trademesh.core.inspector.engine.events import RiskAction, RiskEvent, RiskOutput
from trademesh.core.inspector.engine.policies import PolicySet, ProtectPolicy
from trademesh.core.inspector.notify import wanted
from trademesh.risk.v1 import journal_pb2 as jr
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

SL, TP = OrderRole.STOP_LOSS, OrderRole.TAKE_PROFIT
KEY = ("sim", "BTC/USDT")


def entered(c: InspectorCore, size: str = "2") -> tuple[PlaceOrder, PlaceOrder]:
    """A filled entry and its pair, which the venue took."""
    order = c.on_intent(intent(size=size, stop="95", target="110"), market(), T0).orders[0]
    out = c.on_fill("sim", fill(order), T0 + MS)
    (stop,), (target,) = placed(out.actions, SL), placed(out.actions, TP)
    for taken in (stop, target):
        c.on_order_update(update(taken, OrderStatus.OPEN), T0 + MS)
    return stop, target


def unprotected(out: RiskOutput) -> list[RiskEvent]:
    return [e for e in out.events if e.policy == "protect.unprotected"]


def test_a_refused_protective_order_is_placed_again_on_the_cores_timer_without_any_mark() -> None:
    """Seen: a BTC entry without stop or take-profit for 13.4 s: the refused pair waited for a
    changed mark, and the market was quiet. Now the refusal asks for a wake-up `retry_ms` later
    and the timer places it; no mark is fed here at all."""
    c = core()
    _, target = entered(c)
    refused = c.on_order_update(update(target, OrderStatus.REJECTED), T0 + 2 * MS)
    assert placed(refused.actions) == []  # not at once: a refusal is often a fill on its way
    assert c.wake_ns == T0 + 2 * MS + 500 * MS  # protect.retry_ms
    (again,) = placed(c.on_timer(T0 + 502 * MS).actions)
    assert (again.role, again.size, again.price) == (TP, D(2), D(110))


def test_the_retry_backs_off_by_injected_time_with_each_refusal_in_a_row() -> None:
    c = core(PolicySet(protect=ProtectPolicy(retry_ms=100, unprotected_max_ms=60_000)))
    stop, _ = entered(c)
    now, waits = T0 + 2 * MS, []
    for _ in range(2):
        c.on_order_update(update(stop, OrderStatus.REJECTED), now)
        assert c.wake_ns is not None
        waits.append((c.wake_ns - now) // MS)
        now = c.wake_ns
        (stop,) = placed(c.on_timer(now).actions, SL)
    assert waits == [100, 200]
    c.on_order_update(update(stop, OrderStatus.OPEN), now + MS)  # accepted: the backoff starts over
    outside = c.on_order_update(update(stop, OrderStatus.CANCELED), now + 2 * MS)
    (stop,) = placed(outside.actions, SL)  # cancelled from outside: placed again at once
    c.on_order_update(update(stop, OrderStatus.REJECTED), now + 3 * MS)
    assert c.wake_ns == now + 3 * MS + 100 * MS


def test_a_new_position_never_inherits_the_refusal_of_the_last_one() -> None:
    """The refusal's wait belonged to the position that went flat (its stop filled): the next
    entry's pair is placed at its first fill, not left naked until a mark."""
    c = core()
    stop, target = entered(c)
    c.on_order_update(update(target, OrderStatus.REJECTED), T0 + 2 * MS)
    c.on_fill("sim", fill(stop, price="95"), T0 + 3 * MS)  # the position closes
    assert c.book.positions.size(KEY) == 0
    order = c.on_intent(intent(size="1", stop="90", target="120"), market(), T0 + 4 * MS).orders[0]
    out = c.on_fill("sim", fill(order), T0 + 5 * MS)
    assert [(o.role, o.size) for o in placed(out.actions)] == [(SL, D(1)), (TP, D(1))]
    assert c.guard.retry_at == {}  # nothing of the last position's refusal is left


def test_a_position_without_its_pair_past_the_bound_is_a_risk_event_the_operator_hears_of() -> None:
    c = core()
    stop, _ = entered(c)
    c.on_order_update(update(stop, OrderStatus.REJECTED), T0 + 2 * MS)  # retry at +500 ms
    (stop,) = placed(c.on_timer(T0 + 502 * MS).actions, SL)
    c.on_order_update(update(stop, OrderStatus.REJECTED), T0 + 503 * MS)  # again: retry at +1000 ms
    assert c.wake_ns == T0 + 1002 * MS  # the bound (1 s) comes before the retry (1503 ms)
    said = c.on_timer(T0 + 1002 * MS)
    (event,) = unprotected(said)
    assert event.action is RiskAction.NOTICE and (event.venue, event.symbol) == KEY
    assert event.value("state") == "unprotected" and event.value("uncovered") == "2"
    assert event.value("unprotected_ms") == "1000" and "refused" in event.value("why")
    assert wanted(risk_event_to_pb(event))  # an operator notice (webhook, Telegram)
    assert unprotected(c.on_timer(T0 + 1100 * MS)) == []  # said once
    (stop,) = placed(c.on_timer(T0 + 1503 * MS).actions, SL)
    back = c.on_order_update(update(stop, OrderStatus.OPEN), T0 + 1504 * MS)
    (event,) = unprotected(back)
    assert event.value("state") == "protected" and event.value("unprotected_ms") == "1502"


def test_the_bound_is_a_policy_and_a_short_gap_is_not_said() -> None:
    c = core(PolicySet(protect=ProtectPolicy(unprotected_max_ms=3000)))
    _, target = entered(c)
    c.on_order_update(update(target, OrderStatus.REJECTED), T0 + 2 * MS)
    assert c.wake_ns == T0 + 502 * MS
    out = c.on_timer(T0 + 502 * MS)
    assert unprotected(out) == [] and c.wake_ns == T0 + 3002 * MS  # the gap's bound, still open
    (target,) = placed(out.actions)
    assert unprotected(c.on_order_update(update(target, OrderStatus.OPEN), T0 + 503 * MS)) == []
    assert c.wake_ns is None


def test_a_late_wake_up_loses_nothing_any_input_after_the_time_does_what_is_due() -> None:
    """A freeze or a loaded machine wakes the core late, or another input comes first: the
    input does what was due before its own work."""
    c = core()
    _, target = entered(c)
    c.on_order_update(update(target, OrderStatus.REJECTED), T0 + 2 * MS)
    other = c.on_intent(intent(Side.BUY, size="1", intent_id="late"), market(), T0 + 900 * MS)
    assert [o.role for o in placed(other.output.actions)] == [TP, OrderRole.ENTRY]


def _intent_entry() -> jr.JournalEntry:
    message = am.Intent(
        intent_id="replayed", decision_id="d", signal_id="s", venue="sim", symbol="BTC/USDT",
        side=common.SIDE_BUY, size="2", entry_type=tf.ORDER_TYPE_LIMIT, entry_price="100",
        stop_loss="95", take_profit="110", time_in_force=tf.TIME_IN_FORCE_GTC, strategy_id="trend",
        expires_at_ns=T0 + 60_000 * MS, ts_intent_ns=T0,
    )  # fmt: skip
    return jr.JournalEntry(
        now_ns=T0, intent=jr.JournalIntent(intent=message, bid="99.95", ask="100.05", last="100")
    )


def test_the_timer_is_a_journal_entry_and_a_replay_makes_the_same_orders() -> None:
    """Live and replay (a restart, the backtest) move the core only by journal entries: the
    timer entry places the refused order again in both, with the same id."""
    start = jr.JournalStart(policies="", starting_equity="100000", instance="i")
    live = new_core(jr.JournalEntry(now_ns=T0, start=start))
    entries = [_intent_entry()]
    verdict = apply_entry(live, entries[0])
    entry_order = verdict.orders[0]  # type: ignore[union-attr]
    first_fill = jr.JournalFill(venue="sim", fill=fill_to_pb(fill(entry_order)))
    entries.append(jr.JournalEntry(now_ns=T0 + MS, fill=first_fill))
    out = apply_entry(live, entries[-1])
    (target,) = placed(out.actions, TP)  # type: ignore[union-attr]
    refusal = order_to_pb(update(target, OrderStatus.REJECTED))
    entries.append(jr.JournalEntry(now_ns=T0 + 2 * MS, order_update=refusal))
    apply_entry(live, entries[-1])
    due = live.wake_ns
    assert due is not None
    entries.append(jr.JournalEntry(now_ns=due + 3 * MS, timer=jr.JournalTimer(due_ns=due)))
    (again,) = placed(apply_entry(live, entries[-1]).actions)  # type: ignore[union-attr]
    replayed = new_core(jr.JournalEntry(now_ns=T0, start=start))
    results = [apply_entry(replayed, e) for e in entries]
    assert placed(results[-1].actions) == [again]  # type: ignore[union-attr]


def test_while_a_refusals_retry_waits_a_take_profit_filling_leaves_the_stops_covering() -> None:
    """Seen in a chaos run under load: a second layer's take-profit refused (the venue's
    reduce-only orders already covered), then the first take-profit filled in part; the core,
    waiting for the retry, cancelled the stop it could not amend down, and the position had no
    stop until the retry (1.99 s after three refusals). The stop as it is still covers what is
    left (a reduce-only order closes no more than the position): it stays, amended at the retry."""
    c = core(PolicySet(protect=ProtectPolicy(retry_ms=500, unprotected_max_ms=60_000)))
    _, target1 = entered(c, size="2")
    second = c.on_intent(intent(size="1", stop="95", target="110"), market(), T0 + 2 * MS).orders[0]
    out = c.on_fill("sim", fill(second), T0 + 3 * MS)
    (stop2,), (target2,) = placed(out.actions, SL), placed(out.actions, TP)
    c.on_order_update(update(stop2, OrderStatus.OPEN), T0 + 4 * MS)
    c.on_order_update(update(target2, OrderStatus.REJECTED), T0 + 4 * MS)  # retry at +504 ms
    shrunk = c.on_fill("sim", fill(target1, size="0.5", price="110"), T0 + 10 * MS)
    assert c.book.positions.size(KEY) == D("2.5")
    assert cancelled(shrunk.actions) == []  # both stops (3) stay over the position (2.5)
    retried = c.on_timer(T0 + 504 * MS)
    (amend,) = amended(retried.actions)
    assert amend.client_order_id == stop2.client_order_id
    assert (amend.order.role, amend.order.size) == (SL, D("0.5"))
    assert [(o.role, o.size) for o in placed(retried.actions, TP)] == [(TP, D(1))]
