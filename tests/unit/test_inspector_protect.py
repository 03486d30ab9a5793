"""Protective orders: placed after a fill, resized on a partial fill, one-cancels-the-other,
re-placed when cancelled from outside, cancelled when the position closes, trailing."""

from __future__ import annotations

from decimal import Decimal

from core.inspector.engine.actions import OrderRole, PlaceOrder
from core.inspector.engine.core import InspectorCore
from core.inspector.engine.events import RiskAction
from core.inspector.engine.policies import PolicySet, ProtectPolicy
from core.model import OrderStatus, OrderType, Side
from tests.inspector_support import MS, T0, D, cancelled, core, fill, intent, market, placed, update

SL, TP = OrderRole.STOP_LOSS, OrderRole.TAKE_PROFIT


def pair(actions: tuple[object, ...]) -> tuple[PlaceOrder, PlaceOrder]:
    stops, targets = placed(actions, SL), placed(actions, TP)  # type: ignore[arg-type]
    assert len(stops) == 1 and len(targets) == 1
    return stops[0], targets[0]


def entered(
    c: InspectorCore, size: str = "2", filled: str | None = None, **kw: str
) -> tuple[PlaceOrder, object]:
    order = c.on_intent(intent(size=size, **kw), market(), T0).orders[0]  # type: ignore[arg-type]
    return order, c.on_fill("sim", fill(order, filled), T0 + MS)


def test_a_filled_entry_gets_a_reduce_only_stop_and_target_from_its_intent() -> None:
    c = core()
    assert placed(c.on_intent(intent(stop="95", target="110"), market(), T0).output.actions, SL) == []
    _, out = entered(c, stop="95", target="110")
    stop, target = pair(out.actions)  # type: ignore[attr-defined]
    assert (stop.side, stop.size, stop.trigger_price, stop.type) == (Side.SELL, D(2), D(95), OrderType.MARKET)
    assert (target.side, target.size, target.price, target.type) == (Side.SELL, D(2), D(110), OrderType.LIMIT)
    assert stop.reduce_only and target.reduce_only
    assert stop.oco_group == target.oco_group != ""


def test_without_levels_in_the_intent_the_policy_distances_apply() -> None:
    c = core(PolicySet(protect=ProtectPolicy(stop_loss=D("0.02"), take_profit=D("0.05"))))
    order = c.on_intent(intent(Side.SELL, size="1"), market(), T0).orders[0]
    stop, target = pair(c.on_fill("sim", fill(order, price="100"), T0).actions)
    assert (stop.side, stop.trigger_price, target.price) == (Side.BUY, D(102), D(95))


def test_a_partial_fill_protects_what_filled_and_the_rest_resizes_the_pair() -> None:
    c = core()
    order = c.on_intent(intent(size="2", stop="95", target="110"), market(), T0).orders[0]
    first = c.on_fill("sim", fill(order, "0.5"), T0)
    stop, target = pair(first.actions)
    assert stop.size == target.size == D("0.5")
    second = c.on_fill("sim", fill(order, "1.5"), T0 + MS)
    assert set(cancelled(second.actions)) == {stop.client_order_id, target.client_order_id}
    new_stop, new_target = pair(second.actions)
    assert new_stop.size == new_target.size == D(2)
    assert new_stop.client_order_id not in (stop.client_order_id, target.client_order_id)


def test_the_take_profit_filling_cancels_the_stop() -> None:
    c = core()
    _, out = entered(c, stop="95", target="110")
    stop, target = pair(out.actions)  # type: ignore[attr-defined]
    done = c.on_fill("sim", fill(target, price="110"), T0 + 2 * MS)
    assert cancelled(done.actions) == [stop.client_order_id]
    assert placed(done.actions) == []
    assert c.book.positions.size(("sim", "BTC/USDT")) == 0


def test_a_partial_take_profit_resizes_the_stop_and_keeps_the_target() -> None:
    c = core()
    _, out = entered(c, stop="95", target="110")
    stop, target = pair(out.actions)  # type: ignore[attr-defined]
    part = c.on_fill("sim", fill(target, "0.5", price="110"), T0 + 2 * MS)
    assert cancelled(part.actions) == [stop.client_order_id]
    (resized,) = placed(part.actions)
    assert (resized.role, resized.size, resized.trigger_price) == (SL, D("1.5"), D(95))


def test_an_exit_cancels_the_pair_before_it_goes_and_nothing_comes_back() -> None:
    c = core()
    _, out = entered(c, stop="95", target="110")
    stop, target = pair(out.actions)  # type: ignore[attr-defined]
    verdict = c.on_intent(intent(Side.SELL, size="2", reduce_only=True), market(), T0)
    actions = verdict.output.actions
    # The pair is cancelled first: a venue may refuse reduce-only orders beyond the position.
    assert set(cancelled(actions)) == {stop.client_order_id, target.client_order_id}
    assert actions[-1] == verdict.orders[0] and len(actions) == 3
    for order in (stop, target):
        assert c.on_order_update(update(order, OrderStatus.CANCELED), T0 + MS).actions == ()
    done = c.on_fill("sim", fill(verdict.orders[0]), T0 + 2 * MS)
    assert done.actions == ()
    assert c.book.positions.size(("sim", "BTC/USDT")) == 0


def test_a_partial_exit_shrinks_the_pair_to_what_it_leaves_first() -> None:
    c = core()
    _, out = entered(c, stop="95", target="110")
    stop, target = pair(out.actions)  # type: ignore[attr-defined]
    verdict = c.on_intent(intent(Side.SELL, size="0.5", reduce_only=True), market(), T0)
    actions = verdict.output.actions
    assert set(cancelled(actions)) == {stop.client_order_id, target.client_order_id}
    smaller = placed(actions[:-1])
    assert sorted(o.role.value for o in smaller) == ["stop_loss", "take_profit"]
    assert {o.size for o in smaller} == {D("1.5")}
    assert actions[-1] == verdict.orders[0]


def test_a_triggered_stop_cancels_its_target_then_goes_as_a_market_order() -> None:
    c = core()
    _, out = entered(c, stop="95", target="110")
    stop, target = pair(out.actions)  # type: ignore[attr-defined]
    triggered = c.on_stop_triggered(stop.client_order_id, T0 + 2 * MS)
    assert cancelled(triggered.actions) == [target.client_order_id]
    (market_order,) = placed(triggered.actions)
    assert market_order.client_order_id == stop.client_order_id
    assert (market_order.trigger_price, market_order.type, market_order.reduce_only) == (
        None, OrderType.MARKET, True,
    )  # fmt: skip
    # The target's cancel confirmed: no new pair while the stop closes the position.
    assert c.on_order_update(update(target, OrderStatus.CANCELED), T0 + 3 * MS).actions == ()
    # Triggered once only.
    assert c.on_stop_triggered(stop.client_order_id, T0 + 4 * MS).actions == ()
    done = c.on_fill("sim", fill(stop, price="95"), T0 + 5 * MS)
    assert done.actions == ()
    assert c.book.positions.size(("sim", "BTC/USDT")) == 0


def test_a_native_stop_filling_in_parts_closes_the_position_without_a_new_pair() -> None:
    """The venue triggered the stop and its market order swept several levels at once: the
    position is gone at the venue while its fills come one by one. Between them the plan must
    not size a new pair for what is left (the venue refused each: reduce-only, the position is
    0; three at once stood the inspector down, as a live chain on the sim did): the stop
    filling is what closes the rest; the target is cancelled."""
    c = core()
    _, out = entered(c, stop="95", target="110")
    stop, target = pair(out.actions)  # type: ignore[attr-defined]
    first = c.on_fill("sim", fill(stop, "0.5", price="95"), T0 + 2 * MS)
    assert placed(first.actions) == [] and cancelled(first.actions) == [target.client_order_id]
    for i, size in enumerate(("0.25", "1", "0.25")):
        rest = c.on_fill("sim", fill(stop, size, price="94"), T0 + (3 + i) * MS)
        assert placed(rest.actions) == [] and cancelled(rest.actions) == []
    assert c.book.positions.size(("sim", "BTC/USDT")) == 0 and c.machine.takes_entries


def test_a_stop_being_resized_that_the_venue_triggered_closes_what_it_takes_with_one_new_pair() -> None:
    """The entry's last fill resizes the pair (the stop cancelled, a bigger one placed) while the
    venue is triggering the old stop in the same sweep: our cancel comes too late and the old
    stop's fills come one by one. They close what it takes: the pair is re-planned once, for
    what the entry added, not once per fill (on the sim, each trimmed to the same size by the
    venue, a live chain cancelled and placed the pair seven times in 40 ms)."""
    c = core()
    order = c.on_intent(intent(size="2", stop="95", target="110"), market(), T0).orders[0]
    stop, target = pair(c.on_fill("sim", fill(order, "1.5"), T0).actions)
    resized = c.on_fill("sim", fill(order, "0.5"), T0 + MS)
    assert set(cancelled(resized.actions)) == {stop.client_order_id, target.client_order_id}
    bigger, _ = pair(resized.actions)
    assert bigger.size == D(2)
    plans = [
        c.on_fill("sim", fill(stop, size, price="95"), T0 + (2 + i) * MS)
        for i, size in enumerate(("0.5", "0.25", "0.75"))
    ]
    # The first fill: the stop takes the 1.5 it held, so the pair is for the 0.5 the entry added.
    small_stop, small_target = pair(plans[0].actions)
    assert small_stop.size == small_target.size == D("0.5")
    assert placed(plans[1].actions) == placed(plans[2].actions) == []
    assert cancelled(plans[1].actions) == cancelled(plans[2].actions) == []
    done = c.on_order_update(update(stop, OrderStatus.FILLED, "1.5"), T0 + 5 * MS)
    assert done.actions == () and c.book.positions.size(("sim", "BTC/USDT")) == D("0.5")


def test_protective_orders_the_venue_keeps_refusing_stand_down_instead_of_looping() -> None:
    c = core()
    _, out = entered(c, stop="95", target="110")
    stop, _ = pair(out.actions)  # type: ignore[attr-defined]
    refusals = 0
    current = stop
    while refusals < 5:
        answer = c.on_order_update(update(current, OrderStatus.REJECTED), T0 + (2 + refusals) * MS)
        refusals += 1
        if answer.events and answer.events[-1].policy == "protect.rejected":
            break
        assert placed(answer.actions, SL) == []  # placed again at the next mark, not at once
        again = placed(c.on_mark("sim", "BTC/USDT", D(100), T0 + (2 + refusals) * MS).actions, SL)
        current = again[0]
    assert refusals == 3
    assert any(e.policy == "protect.rejected" and e.action is RiskAction.STAND_DOWN for e in answer.events)
    assert ("sim", "BTC/USDT") not in c.protector.levels


def test_a_pair_refused_together_is_one_try_and_three_tries_stand_down() -> None:
    """A try is what the inspector sends knowing of the refusals before it: a pair's stop and
    target refused together are one (live, in a chain parity session, a pair refused on a
    position the venue had closed, and a third order on its way, stood the inspector down at
    once). Three tries in a row, each at a mark, still stand it down."""
    c = core()
    _, out = entered(c, stop="95", target="110")
    current = pair(out.actions)  # type: ignore[attr-defined]
    for tries in range(1, 4):
        answers = [
            c.on_order_update(update(order, OrderStatus.REJECTED), T0 + (10 * tries + i) * MS)
            for i, order in enumerate(current)
        ]
        stood = any(e.policy == "protect.rejected" and e.action is RiskAction.STAND_DOWN
                    for answer in answers for e in answer.events)  # fmt: skip
        assert stood is (tries == 3), tries
        if tries < 3:
            current = pair(c.on_mark("sim", "BTC/USDT", D(100), T0 + (10 * tries + 5) * MS).actions)


def test_a_refused_protective_order_waits_for_the_next_mark_so_a_fill_on_its_way_lands_first() -> None:
    """The venue's stop closed the position and its fill is on its way when the venue refuses a
    protective order of the position (reduce-only, the position is 0). Placed again at once, the
    same refusal came three times before the fill, and the inspector stood down; at the next
    mark the fill has landed and there is nothing to protect."""
    c = core()
    _, out = entered(c, stop="95", target="110")
    stop, target = pair(out.actions)  # type: ignore[attr-defined]
    refused = c.on_order_update(update(target, OrderStatus.REJECTED), T0 + 2 * MS)
    assert placed(refused.actions) == []
    c.on_fill("sim", fill(stop, price="95"), T0 + 3 * MS)  # the stop's fill, heard late
    marked = c.on_mark("sim", "BTC/USDT", D(95), T0 + 4 * MS)
    assert placed(marked.actions) == [] and c.book.positions.size(("sim", "BTC/USDT")) == 0
    assert c.machine.takes_entries


def test_a_refused_pair_waits_for_the_next_mark_though_the_old_pairs_cancel_is_confirmed_first() -> None:
    """Live (a chain parity session): the entry's first pair's stop filled as it was being
    resized, and the second pair's stop closed the rest (its fill not heard yet). The third pair,
    planned on the first stop's fill, was refused at the venue (no position left); the second
    target's cancel, confirmed between its two refusals, re-planned the position at once, the
    stop placed again was refused too, and three refusals stood the inspector down with nothing
    to protect."""
    c = core()
    order = c.on_intent(intent(size="2", stop="95", target="110"), market(), T0).orders[0]
    first_stop, _ = pair(c.on_fill("sim", fill(order, "0.5"), T0).actions)
    second_stop, second_target = pair(c.on_fill("sim", fill(order, "1.5"), T0 + MS).actions)
    third_stop, third_target = pair(c.on_fill("sim", fill(first_stop, price="95"), T0 + 2 * MS).actions)
    assert placed(c.on_order_update(update(third_stop, OrderStatus.REJECTED), T0 + 3 * MS).actions) == []
    confirmed = c.on_order_update(update(second_target, OrderStatus.CANCELED), T0 + 4 * MS)
    assert placed(confirmed.actions) == []  # not at once: at the next mark
    c.on_order_update(update(third_target, OrderStatus.REJECTED), T0 + 5 * MS)
    c.on_fill("sim", fill(second_stop, "1.5", price="95"), T0 + 6 * MS)  # heard late
    assert placed(c.on_mark("sim", "BTC/USDT", D(95), T0 + 7 * MS).actions) == []
    assert c.book.positions.size(("sim", "BTC/USDT")) == 0 and c.machine.takes_entries


def test_fills_heard_while_a_refusal_waits_for_the_mark_place_nothing_before_it() -> None:
    """Live (a chain parity session): the take-profit filled in many parts, each heard late; the
    stop resized on one of them was refused (the target had closed the position at the venue),
    and each fill heard after it resized the stop again at once, refused each time: the third
    refusal stood the inspector down (cancelling the next intent's resting entry, and blocking
    every intent after). While a refusal waits for the mark, a plan only cancels."""
    c = core()
    _, out = entered(c, stop="95", target="110")
    _, target = pair(out.actions)  # type: ignore[attr-defined]
    (resized,) = placed(c.on_fill("sim", fill(target, "0.5", price="110"), T0 + 2 * MS).actions, SL)
    assert resized.size == D("1.5")
    assert placed(c.on_order_update(update(resized, OrderStatus.REJECTED), T0 + 3 * MS).actions) == []
    for i in range(3):  # the target's other fills, made at the venue before the refusal
        assert placed(c.on_fill("sim", fill(target, "0.5", price="110"), T0 + (4 + i) * MS).actions) == []
    assert c.book.positions.size(("sim", "BTC/USDT")) == 0
    assert placed(c.on_mark("sim", "BTC/USDT", D(110), T0 + 8 * MS).actions) == []
    assert c.machine.takes_entries


def test_a_refused_protective_order_of_a_position_still_open_is_placed_again_at_the_next_mark() -> None:
    c = core()
    _, out = entered(c, stop="95", target="110")
    _, target = pair(out.actions)  # type: ignore[attr-defined]
    c.on_order_update(update(target, OrderStatus.REJECTED), T0 + 2 * MS)
    (again,) = placed(c.on_mark("sim", "BTC/USDT", D(100), T0 + 3 * MS).actions)
    assert (again.role, again.size, again.price) == (TP, D(2), D(110))
    assert again.client_order_id != target.client_order_id
    assert placed(c.on_mark("sim", "BTC/USDT", D(100), T0 + 4 * MS).actions) == []  # once


def test_refusals_of_orders_the_plan_already_dropped_do_not_stand_down() -> None:
    """Fills may overtake placements: a pair resized by the next fill, or a pair of a position
    an exit has since closed, is refused at the venue. None of that is a failure to protect."""
    c = core()
    order = c.on_intent(intent(size="2", stop="95", target="110"), market(), T0).orders[0]
    dropped: list[PlaceOrder] = []
    for i in range(4):  # the entry fills in four parts: three pairs resized away
        dropped += pair(c.on_fill("sim", fill(order, "0.5"), T0 + i * MS).actions)
    current, dropped = dropped[-2:], dropped[:-2]
    for i, gone in enumerate(dropped):
        answer = c.on_order_update(update(gone, OrderStatus.REJECTED), T0 + (5 + i) * MS)
        assert answer.actions == () and answer.events == ()
    exit_order = c.on_intent(intent(Side.SELL, size="2", reduce_only=True), market(), T0).orders[0]
    c.on_fill("sim", fill(exit_order), T0 + 10 * MS)
    for i, late in enumerate(current):  # refused after the exit closed the position
        assert c.on_order_update(update(late, OrderStatus.REJECTED), T0 + (11 + i) * MS).events == ()
    assert c.machine.takes_entries


def test_a_protective_order_cancelled_from_outside_is_placed_again() -> None:
    c = core()
    _, out = entered(c, stop="95", target="110")
    stop, _ = pair(out.actions)  # type: ignore[attr-defined]
    again = c.on_order_update(update(stop, OrderStatus.CANCELED), T0 + 2 * MS)
    (replaced,) = placed(again.actions)
    assert (replaced.role, replaced.size, replaced.trigger_price) == (SL, D(2), D(95))
    assert replaced.client_order_id != stop.client_order_id
    assert again.events[0].action is RiskAction.NOTICE and "from outside" in again.events[0].reason


def test_the_trailing_stop_follows_a_better_mark_by_at_least_its_step() -> None:
    c = core(PolicySet(protect=ProtectPolicy(trailing_stop=D("0.05"), trailing_step=D("0.01"))))
    _, out = entered(c, stop="96", target="150")
    stop, target = pair(out.actions)  # type: ignore[attr-defined]
    assert c.on_mark("sim", "BTC/USDT", D("100.5"), T0 + 2 * MS).actions == ()  # 95.475: looser than 96
    assert c.on_mark("sim", "BTC/USDT", D(102), T0 + 3 * MS).actions == ()  # 96.9: under the 1% step
    moved = c.on_mark("sim", "BTC/USDT", D(103), T0 + 4 * MS)  # 97.85
    assert cancelled(moved.actions) == [stop.client_order_id]
    (trailed,) = placed(moved.actions)
    assert trailed.trigger_price == Decimal("97.85")
    assert c.on_mark("sim", "BTC/USDT", D(101), T0 + 5 * MS).actions == ()  # never moves back
    assert target.client_order_id not in cancelled(moved.actions)


def test_a_short_trails_its_stop_downwards() -> None:
    c = core(PolicySet(protect=ProtectPolicy(trailing_stop=D("0.05"), trailing_step=D("0.01"))))
    order = c.on_intent(intent(Side.SELL, stop="104", target="50"), market(), T0).orders[0]
    c.on_fill("sim", fill(order, price="100"), T0)
    (trailed,) = placed(c.on_mark("sim", "BTC/USDT", D(97), T0 + MS).actions)
    assert (trailed.side, trailed.trigger_price) == (Side.BUY, Decimal("101.85"))


def test_a_done_update_that_overtakes_its_fill_keeps_the_order_until_the_fill_is_in() -> None:
    c = core()
    order = c.on_intent(intent(size="2", stop="95", target="110"), market(), T0).orders[0]
    assert c.on_order_update(update(order, OrderStatus.FILLED, filled="2"), T0).actions == ()
    assert c.book.orders.get(order.client_order_id) is not None  # its fill is still to come
    assert c.book.orders.count_open() == 0  # ... but it is not open at the venue
    stop, target = pair(c.on_fill("sim", fill(order), T0 + MS).actions)
    assert (stop.trigger_price, target.price, stop.size) == (D(95), D(110), D(2))  # the intent's levels
    assert c.book.orders.get(order.client_order_id) is None
    assert c.on_fill("sim", fill(order), T0 + MS).events[0].policy == "orders.unknown"


def test_the_core_heeds_only_updates_that_change_something() -> None:
    c = core()
    order = c.on_intent(intent(price="99.99"), market(), T0).orders[0]
    coid = order.client_order_id
    assert not c.heeds("not-ours", terminal=True)
    assert c.heeds(coid, terminal=True) and not c.heeds(coid, terminal=False)
    c.on_placement_unknown(coid, T0 + MS)
    assert c.heeds(coid, terminal=False)  # the answer to an unknown placement


def test_an_opposite_entry_filling_in_parts_takes_the_pair_off_instead_of_resizing_it() -> None:
    """A sell against a long that has begun to fill closes it at the venue before the
    inspector hears its last fill: a pair for what the first fill left would be refused there
    (reduce-only with no position), so what it will still take off is not covered again."""
    c = core()
    _, out = entered(c, stop="95", target="110")
    stop, target = pair(out.actions)  # type: ignore[attr-defined]
    sell = c.on_intent(intent(Side.SELL, size="2", intent_id="the-sell"), market(), T0).orders[0]
    first = c.on_fill("sim", fill(sell, "0.5"), T0 + 2 * MS)
    assert set(cancelled(first.actions)) == {stop.client_order_id, target.client_order_id}
    assert placed(first.actions, SL) == [] and placed(first.actions, TP) == []
    # Before it fills, a resting opposite entry leaves the position protected.
    c2 = core()
    _, out2 = entered(c2, stop="95", target="110")
    pair(out2.actions)  # type: ignore[attr-defined]
    resting = c2.on_intent(intent(Side.SELL, size="2", intent_id="resting", price="120"), market(), T0)
    assert cancelled(resting.output.actions) == []


def test_after_a_restart_a_pair_being_cancelled_is_cancelled_again_and_never_placed_again() -> None:
    """A kill between a re-plan and its cancels: the replayed core still has the old pair
    marked cancelling. Queried at the venue, an old order still open is cancelled again, one
    never placed is forgotten; the new pair, never placed, is placed."""
    c = core()
    order = c.on_intent(intent(size="2", stop="95", target="110"), market(), T0).orders[0]
    old = pair(c.on_fill("sim", fill(order, "0.5"), T0).actions)
    new = pair(c.on_fill("sim", fill(order, "1.5"), T0 + MS).actions)
    for working in list(c.book.orders):
        c.on_placement_unknown(working.order.client_order_id, T0 + 2 * MS)
    stood = c.on_query_result(old[0].client_order_id, update(old[0], OrderStatus.OPEN), T0 + 3 * MS)
    assert cancelled(stood.actions) == [old[0].client_order_id] and placed(stood.actions) == []
    assert c.on_query_result(old[1].client_order_id, None, T0 + 3 * MS).actions == ()
    assert c.book.orders.get(old[1].client_order_id) is None
    for fresh in new:
        assert placed(c.on_query_result(fresh.client_order_id, None, T0 + 4 * MS).actions) == [fresh]
