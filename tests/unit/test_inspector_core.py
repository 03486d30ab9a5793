"""The inspector core's states, operator commands, idempotence and policy changes."""

from __future__ import annotations

import pytest

from tests.inspector_support import MS, T0, D, cancelled, core, fill, intent, market, placed, state, update
from trademesh.core.domain.model import OrderStatus, Side
from trademesh.core.inspector.engine.actions import CancelAll, CancelOrder, OrderRole, QueryOrder
from trademesh.core.inspector.engine.events import RiskAction, RiskState
from trademesh.core.inspector.engine.ids import entry_order_id
from trademesh.core.inspector.engine.policies import LossPolicy, OrderPolicy, PolicySet
from trademesh.core.platform.errors import InvalidArgument

DRAWDOWN = PolicySet(loss=LossPolicy(max_drawdown=D("0.1")))


def test_a_drawdown_past_its_limit_stands_down_then_blocks_entries_and_allows_exits() -> None:
    c = core(DRAWDOWN, equity=D(1000))
    entry = c.on_intent(intent(size="5"), market(), T0).orders[0]
    c.on_fill("sim", fill(entry, price="100"), T0)
    working = c.on_intent(intent(size="1", price="90", symbol="ETH/USDT"), market("90"), T0).orders[0]
    # 5 x (80 - 100) = -100: exactly 10% of 1000 — at the limit, still active.
    assert c.on_mark("sim", "BTC/USDT", D(80), T0 + MS).events == ()
    assert state(c) is RiskState.ACTIVE
    out = c.on_mark("sim", "BTC/USDT", D("79.99"), T0 + 2 * MS)
    assert state(c) is RiskState.STANDING_DOWN
    event = next(e for e in out.events if e.action is RiskAction.STAND_DOWN)
    assert event.policy == "loss.max_drawdown"
    assert D(event.value("value")) > D(event.value("limit")) == D("0.1")
    assert [t.after for t in out.transitions] == [RiskState.STANDING_DOWN]
    assert working.client_order_id in cancelled(out.actions)  # a working entry is cancelled
    blocked = c.on_intent(intent(), market("80"), T0 + 3 * MS)
    assert blocked.action is RiskAction.BLOCK and blocked.reasons[0].policy == "state"
    exit_ = c.on_intent(intent(Side.SELL, size="5", price="80", reduce_only=True), market("80"), T0 + 3 * MS)
    assert exit_.allowed and exit_.orders[0].reduce_only and exit_.orders[0].role is OrderRole.EXIT


def test_the_operator_resumes_and_entries_pass_again() -> None:
    c = core(DRAWDOWN, equity=D(1000))
    entry = c.on_intent(intent(size="5"), market(), T0).orders[0]
    c.on_fill("sim", fill(entry, price="100"), T0)
    c.on_mark("sim", "BTC/USDT", D(79), T0 + MS)
    assert state(c) is RiskState.STANDING_DOWN
    out = c.resume("checked the feed; the loss is real and accepted", T0 + 2 * MS)
    assert state(c) is RiskState.ACTIVE
    assert out.events[0].action is RiskAction.RESUME
    assert c.on_intent(intent(size="0.1", price="79"), market("79"), T0 + 3 * MS).allowed
    # The resume re-based the peak: the same equity does not stand down again.
    assert c.on_mark("sim", "BTC/USDT", D(79), T0 + 4 * MS).transitions == ()


def test_a_daily_drawdown_is_measured_from_the_days_opening_equity() -> None:
    c = core(PolicySet(loss=LossPolicy(max_daily_drawdown=D("0.05"))), equity=D(1000))
    entry = c.on_intent(intent(size="1"), market(), T0).orders[0]
    c.on_fill("sim", fill(entry, price="100"), T0)
    c.on_mark("sim", "BTC/USDT", D(60), T0 + MS)  # -40: 4% of the day
    assert state(c) is RiskState.ACTIVE
    next_day = T0 + 4 * 3600 * 1000 * MS  # past midnight UTC: the day opens at 960
    c.on_mark("sim", "BTC/USDT", D(60), next_day)
    c.on_mark("sim", "BTC/USDT", D(13), next_day + MS)  # -47 from 960: 4.9%
    assert state(c) is RiskState.ACTIVE
    c.on_mark("sim", "BTC/USDT", D(11), next_day + 2 * MS)  # -49 from 960: 5.1%
    assert state(c) is RiskState.STANDING_DOWN
    assert c.machine.history[-1].reason.startswith("drawdown 5.1")


def test_the_operator_stands_down_and_every_command_needs_a_reason() -> None:
    c = core()
    with pytest.raises(InvalidArgument) as caught:
        c.stand_down("  ", T0)
    assert caught.value.violations[0].field == "reason"
    with pytest.raises(InvalidArgument):
        c.close_all("", T0)
    out = c.stand_down("news at 14:30", T0)
    assert state(c) is RiskState.STANDING_DOWN
    assert out.transitions[0].reason == "news at 14:30" and out.events[0].policy == "operator"
    with pytest.raises(InvalidArgument):
        c.resume("", T0)


def test_a_duplicated_intent_never_produces_a_second_order() -> None:
    c = core()
    first = intent(intent_id="intent-dup")
    allowed = c.on_intent(first, market(), T0)
    assert allowed.allowed and allowed.orders[0].client_order_id == entry_order_id("intent-dup")
    again = c.on_intent(first, market(), T0 + MS)
    assert again.action is RiskAction.BLOCK and again.orders == () and again.output.actions == ()
    assert again.reasons[0].policy == "intent.duplicate"
    assert again.reasons[0].value("order") == allowed.orders[0].client_order_id
    # Even once the first order has gone, the id stays used.
    c.on_order_update(update(allowed.orders[0], OrderStatus.CANCELED), T0 + 2 * MS)
    assert c.on_intent(first, market(), T0 + 3 * MS).orders == ()


def test_the_client_order_id_is_derived_from_the_intent_id_alone() -> None:
    a, b = (
        core().on_intent(intent(intent_id="x"), market(), T0),
        core().on_intent(intent(intent_id="x"), market(), T0),
    )
    assert a.orders[0].client_order_id == b.orders[0].client_order_id == entry_order_id("x")
    assert len(entry_order_id("x")) == 32 and entry_order_id("x") != entry_order_id("y")


def test_a_blocked_intent_is_used_up_too() -> None:
    c = core(PolicySet(orders=OrderPolicy(max_notional=D(10))))
    once = intent(intent_id="big")
    assert c.on_intent(once, market(), T0).reasons[0].policy == "orders.max_notional"
    c.update_policies(PolicySet(), T0)
    assert c.on_intent(once, market(), T0).reasons[0].policy == "intent.duplicate"


def test_a_placement_with_an_unknown_result_is_queried_before_any_retry() -> None:
    c = core()
    order = c.on_intent(intent(), market(), T0).orders[0]
    out = c.on_placement_unknown(order.client_order_id, T0 + MS)
    assert out.actions == (QueryOrder(order.client_order_id, "sim", "BTC/USDT"),)
    assert c.book.orders.get(order.client_order_id).unknown  # type: ignore[union-attr]
    # The venue never got it: place it again, with the same client order id.
    retry = c.on_query_result(order.client_order_id, None, T0 + 2 * MS)
    assert retry.actions == (order,)
    # An answer for an order that is not waiting on a query does nothing.
    assert c.on_query_result(order.client_order_id, None, T0 + 3 * MS).actions == ()


def test_a_query_that_finds_the_order_takes_its_state_and_places_nothing() -> None:
    c = core()
    order = c.on_intent(intent(), market(), T0).orders[0]
    c.on_placement_unknown(order.client_order_id, T0)
    out = c.on_query_result(order.client_order_id, update(order, OrderStatus.OPEN), T0)
    assert placed(out.actions) == []
    assert not c.book.orders.get(order.client_order_id).unknown  # type: ignore[union-attr]


def test_close_all_cancels_everything_flattens_every_position_and_halts() -> None:
    c = core()
    long = c.on_intent(intent(size="2"), market(), T0).orders[0]
    c.on_fill("sim", fill(long), T0)
    short = c.on_intent(intent(Side.SELL, size="3", venue="other", symbol="ETH/USDT"), market(), T0).orders[0]
    c.on_fill("other", fill(short), T0)
    c.on_intent(intent(size="1"), market(), T0)
    out = c.close_all("operator: flatten now", T0 + MS)
    assert [a for a in out.actions if isinstance(a, CancelAll)] == [
        CancelAll("other", "operator: flatten now"),
        CancelAll("sim", "operator: flatten now"),
    ]
    flat = {(o.venue, o.side, o.size) for o in placed(out.actions, OrderRole.FLATTEN)}
    assert flat == {("sim", Side.SELL, D(2)), ("other", Side.BUY, D(3))}
    assert all(o.reduce_only for o in placed(out.actions, OrderRole.FLATTEN))
    assert state(c) is RiskState.HALTED and out.events[-1].action is RiskAction.CLOSE_ALL
    blocked = c.on_intent(intent(Side.SELL, reduce_only=True), market(), T0 + 2 * MS)
    assert blocked.reasons[0].policy == "state"


def test_a_flatten_that_ends_short_is_placed_again_at_the_next_marks_up_to_a_limit() -> None:
    c = core()
    long = c.on_intent(intent(size="2"), market(), T0).orders[0]
    c.on_fill("sim", fill(long), T0)
    flatten = placed(c.close_all("operator: flatten now", T0 + MS).actions, OrderRole.FLATTEN)[0]
    # An IOC on a thin book: 0.5 filled, the rest cancelled by the venue.
    c.on_fill("sim", fill(flatten, size="0.5"), T0 + 2 * MS)
    c.on_order_update(update(flatten, OrderStatus.CANCELED, filled="0.5"), T0 + 2 * MS)
    out = c.on_mark("sim", "BTC/USDT", D(100), T0 + 3 * MS)
    again = placed(out.actions, OrderRole.FLATTEN)
    assert [(o.side, o.size, o.reduce_only) for o in again] == [(Side.SELL, D("1.5"), True)]
    assert again[0].client_order_id != flatten.client_order_id
    assert out.events[0].policy == "close_all" and out.events[0].value("size") == "1.5"
    # While it works, the marks place nothing more.
    assert placed(c.on_mark("sim", "BTC/USDT", D(101), T0 + 4 * MS).actions) == []
    # Refused again and again: five flatten orders in all, then the operator is told, once.
    at = T0 + 5 * MS
    for _ in range(3):  # the third, fourth and fifth
        c.on_order_update(update(again[0], OrderStatus.REJECTED), at)
        again = placed(c.on_mark("sim", "BTC/USDT", D(100), at + MS).actions, OrderRole.FLATTEN)
        assert len(again) == 1
        at += 2 * MS
    c.on_order_update(update(again[0], OrderStatus.REJECTED), at)
    told = c.on_mark("sim", "BTC/USDT", D(100), at + MS)
    assert placed(told.actions) == [] and told.events[0].reason.endswith("left to the operator")
    last = c.on_mark("sim", "BTC/USDT", D(99), at + 2 * MS)
    assert placed(last.actions) == [] and last.events == ()
    assert state(c) is RiskState.HALTED


def test_after_close_all_a_late_fill_is_flattened_and_a_late_order_cancelled() -> None:
    c = core()
    long = c.on_intent(intent(size="1"), market(), T0).orders[0]
    c.on_fill("sim", fill(long), T0)
    late = c.on_intent(intent(size="3", symbol="ETH/USDT"), market(), T0).orders[0]
    out = c.close_all("operator: flatten now", T0 + MS)
    assert [o.symbol for o in placed(out.actions, OrderRole.FLATTEN)] == ["BTC/USDT"]
    # The ETH order's placement was on its way: the venue says it is open after the CancelAll.
    reopened = c.on_order_update(update(late, OrderStatus.OPEN), T0 + 2 * MS)
    assert reopened.actions == (CancelOrder(late.client_order_id, "sim", "ETH/USDT", "closing all"),)
    # It had filled in part before the cancel: that part is flattened at the next mark.
    c.on_fill("sim", fill(late, size="1"), T0 + 3 * MS)
    c.on_order_update(update(late, OrderStatus.CANCELED, filled="1"), T0 + 3 * MS)
    out = c.on_mark("sim", "ETH/USDT", D(100), T0 + 4 * MS)
    assert [(o.symbol, o.side, o.size) for o in placed(out.actions, OrderRole.FLATTEN)] == [
        ("ETH/USDT", Side.SELL, D(1))
    ]


def test_no_entry_goes_against_a_legacy_position_of_its_market() -> None:
    c = core()
    found = c.on_legacy("sim", "BTC/USDT", D("-0.5"), D(100), T0)
    assert found.actions == () and found.events == ()  # the shell reports it (a NOTICE)
    against = c.on_intent(intent(Side.BUY), market(), T0)
    assert [(r.policy, r.value("legacy")) for r in against.reasons] == [("legacy.opposite", "-0.5")]
    assert "close the legacy position first" in against.reasons[0].reason
    # The same side, another market, another venue: the legacy position is not in the way.
    assert c.on_intent(intent(Side.SELL), market(), T0).allowed
    assert c.on_intent(intent(Side.BUY, symbol="ETH/USDT"), market(), T0).allowed
    assert c.on_intent(intent(Side.BUY, venue="other"), market(), T0).allowed
    assert c.book.positions.size(("sim", "BTC/USDT")) == 0  # never ours


def test_a_policy_change_is_an_event_naming_what_changed() -> None:
    c = core()
    out = c.update_policies(PolicySet(orders=OrderPolicy(max_open=3)), T0)
    assert out.events[0].action is RiskAction.POLICY_CHANGE
    assert out.events[0].values == (("orders.max_open", "off -> 3"),)
    assert c.policies.orders.max_open == 3
    assert c.update_policies(PolicySet(orders=OrderPolicy(max_open=3)), T0).events == ()
    # A limit turned off is said so, on the event's values and in its reason.
    (event,) = c.update_policies(PolicySet(), T0).events
    assert event.values == (("orders.max_open", "3 -> off"),)
    assert event.reason == "1 policy keys changed; turned off: orders.max_open"


def test_the_same_calls_give_the_same_outputs() -> None:
    def run() -> list[object]:
        c = core(DRAWDOWN, equity=D(1000))
        seen: list[object] = []
        v = c.on_intent(intent(intent_id="a", size="5", stop="95", target="110"), market(), T0)
        seen.append(v)
        seen.append(c.on_fill("sim", fill(v.orders[0]), T0))
        seen.append(c.on_mark("sim", "BTC/USDT", D(70), T0 + MS))
        return seen

    first, second = run(), run()
    assert repr(first) == repr(second)
