"""Issue 37, item 7: protective orders sized to what the venue accepts. The venue's instrument
facts (minimum size and notional, lot size) are given to the core as data (a journaled input);
protection waits until the position can be protected, what stays unprotected is a risk event,
and a refusal the inspector caused itself (a request the venue's rules refuse) is not counted
toward the three-refusal stand-down."""

from __future__ import annotations

from tests.inspector_support import MS, T0, D, amended, core, fill, intent, market, placed, update
from trademesh.common.v1 import common_pb2 as common
from trademesh.core.domain.model import Order, OrderStatus
from trademesh.core.inspector.driver import apply_entry
from trademesh.core.inspector.engine.actions import OrderRole
from trademesh.core.inspector.engine.core import InspectorCore
from trademesh.core.inspector.engine.events import RiskAction
from trademesh.core.inspector.engine.instruments import InstrumentFacts
from trademesh.core.inspector.engine.policies import PolicySet, ProtectPolicy
from trademesh.risk.v1 import journal_pb2 as jr

SL, TP = OrderRole.STOP_LOSS, OrderRole.TAKE_PROFIT
KEY = ("sim", "BTC/USDT")
# The sim's BTC/USDT: a lot of 0.00001, at least 0.0001 and 5 USDT an order.
BTC = InstrumentFacts(tick_size=D("0.01"), lot_size=D("0.00001"), min_size=D("0.0001"), min_notional=D(5))


def told(c: InspectorCore, facts: InstrumentFacts = BTC) -> None:
    c.on_instruments("sim", {"BTC/USDT": facts}, T0)


def test_a_first_fill_below_the_minimum_is_protected_once_the_position_can_be() -> None:
    """Seen: a first partial fill of 0.00007 BTC got a 4.5 USDT stop, refused 4 times. Now
    nothing is sent for it; the next fill makes the position protectable and the pair covers
    all of it."""
    c = core()
    told(c)
    order = c.on_intent(
        intent(size="0.001", price="65000", stop="64000", target="66000"), market("65000"), T0
    )
    first = c.on_fill("sim", fill(order.orders[0], "0.00007", price="65000"), T0 + MS)
    assert placed(first.actions) == []
    second = c.on_fill("sim", fill(order.orders[0], "0.00093", price="65000"), T0 + 2 * MS)
    assert [(o.role, o.size) for o in placed(second.actions)] == [(SL, D("0.001")), (TP, D("0.001"))]


def test_a_position_left_below_the_minimum_is_a_risk_event_saying_what_is_unprotected() -> None:
    c = core()
    told(c)
    order = c.on_intent(
        intent(size="0.001", price="65000", stop="64000", target="66000"), market("65000"), T0
    )
    c.on_fill("sim", fill(order.orders[0], "0.00007", price="65000"), T0 + MS)
    c.on_order_update(update(order.orders[0], OrderStatus.CANCELED, "0.00007"), T0 + 2 * MS)  # the rest
    assert c.wake_ns == T0 + 1001 * MS
    said = c.on_timer(T0 + 1001 * MS)
    (event,) = [e for e in said.events if e.policy == "protect.unprotected"]
    assert event.action is RiskAction.NOTICE
    assert event.value("uncovered") == "0.00007" and event.value("why") == "below the venue's minimum"
    assert (event.value("min_size"), event.value("min_notional")) == ("0.0001", "5")
    assert said.actions == ()


def test_an_increment_below_the_minimum_is_covered_by_amending_the_newest_layer() -> None:
    """What a last fill adds may be too small for an order of its own: the newest layer is
    amended to take it (the first layer keeps covering meanwhile)."""
    c = core(PolicySet(protect=ProtectPolicy(coalesce_ms=0)))
    told(c)
    order = c.on_intent(
        intent(size="0.00105", price="65000", stop="64000", target="66000"), market("65000"), T0
    )
    first = c.on_fill("sim", fill(order.orders[0], "0.001", price="65000"), T0 + MS)
    stop, target = placed(first.actions)
    last = c.on_fill("sim", fill(order.orders[0], "0.00005", price="65000"), T0 + 2 * MS)
    assert [(a.client_order_id, a.order.size) for a in amended(last.actions)] == [
        (stop.client_order_id, D("0.00105")),
        (target.client_order_id, D("0.00105")),
    ]


def _refused(order: object, reason: str) -> Order:
    refusal = update(order, OrderStatus.REJECTED)  # type: ignore[arg-type]
    refusal.status_reason = reason
    return refusal


def test_refusals_the_inspector_caused_itself_do_not_stand_down() -> None:
    """Without facts (the venue could not be asked), a protective order below the venue's
    minimum is refused as an invalid request, again at each retry: the inspector's own doing,
    not the strategy's. It is retried with a growing wait, and trading goes on."""
    c = core()
    order = c.on_intent(intent(size="0.00007", price="65000"), market("65000"), T0).orders[0]
    (stop, _) = placed(c.on_fill("sim", fill(order, price="65000"), T0 + MS).actions)
    now, waits = T0 + 2 * MS, []
    for _ in range(4):
        reason = "INVALID_ARGUMENT: size: notional 4.5 is below the minimum 5"
        answer = c.on_order_update(_refused(stop, reason), now)
        assert not any(e.policy == "protect.rejected" for e in answer.events)
        retry = c.guard.retry_at[KEY]  # the core asks to be woken then (or sooner: the bound)
        waits.append((retry - now) // MS)
        now = retry
        (stop,) = placed(c.on_timer(now).actions, SL)
    assert c.machine.takes_entries
    assert waits == [500, 1000, 2000, 4000]


def test_refusals_of_the_venues_state_still_stand_down() -> None:
    c = core()
    order = c.on_intent(intent(size="1", stop="95", target="110"), market(), T0).orders[0]
    (stop, _) = placed(c.on_fill("sim", fill(order), T0 + MS).actions)
    now = T0 + 2 * MS
    for tries in range(1, 4):
        reason = "FAILED_PRECONDITION: reduce_only order would increase the position"
        answer = c.on_order_update(_refused(stop, reason), now)
        stood = any(e.policy == "protect.rejected" for e in answer.events)
        assert stood is (tries == 3)
        if not stood:
            now = c.guard.retry_at[KEY]
            (stop,) = placed(c.on_timer(now).actions, SL)
    assert not c.machine.takes_entries


def test_the_facts_come_as_a_journal_entry_from_the_venues_list_of_instruments() -> None:
    c = core()
    listed = common.Instrument(
        venue="sim", symbol="BTC/USDT", base_asset="BTC", quote_asset="USDT", tick_size="0.01",
        lot_size="0.00001", min_size="0.0001", min_notional="5", contract_size="1",
    )  # fmt: skip
    apply_entry(
        c, jr.JournalEntry(now_ns=T0, instruments=jr.JournalInstruments(venue="sim", instruments=[listed]))
    )
    assert c.instruments[KEY] == BTC
