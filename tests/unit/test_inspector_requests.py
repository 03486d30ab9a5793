"""A strategy's own position requests planned into intents (trademesh.core.inspector.requests) and carried
out by the core: close, reduce and flip of the strategy's share, protection adjusted, and the
requests it cannot carry out refused with a reason."""

from __future__ import annotations

from tests.inspector_support import MS, SECOND, T0, D, cancelled, core, fill, intent, market, placed, update
from trademesh.core.domain.model import OrderStatus, Side
from trademesh.core.inspector.convert import intent_from_pb
from trademesh.core.inspector.engine.actions import OrderRole, PlaceOrder
from trademesh.core.inspector.engine.core import InspectorCore
from trademesh.core.inspector.engine.events import RiskAction, RiskVerdict
from trademesh.core.inspector.engine.instruments import InstrumentFacts
from trademesh.core.inspector.requests import REQUEST_TTL_NS, plan_request, request_intent_id
from trademesh.signal.v1 import signal_pb2 as sig


def request(action: int, strategy: str = "trend", **fields: object) -> sig.PositionRequest:
    values: dict[str, object] = {
        "request_id": f"req-{action}-{strategy}", "venue": "sim", "symbol": "BTC/USDT", "action": action,
        "strategy_id": strategy, "ts_request_ns": T0 + SECOND, "ts_event_ns": T0 + SECOND,
    }  # fmt: skip
    values.update(fields)
    return sig.PositionRequest(**values)  # type: ignore[arg-type]


def protected_long(c: InspectorCore, size: str = "2", strategy: str = "trend") -> list[PlaceOrder]:
    """A long of `size` for `strategy`, filled, with its protective pair placed (and acknowledged)."""
    entry = c.on_intent(intent(size=size, strategy=strategy), market(), T0).orders[0]
    out = c.on_fill("sim", fill(entry, price="100"), T0)
    later = c.on_timer(T0 + SECOND) if not placed(out.actions) else out
    pair = placed(later.actions)
    for order in pair:
        c.on_order_update(update(order, OrderStatus.OPEN), T0 + SECOND)
    return pair


def carry_out(c: InspectorCore, asked: sig.PositionRequest, now_ns: int) -> list[RiskVerdict]:
    planned = plan_request(c, asked, now_ns)
    assert planned.refusal is None
    return [c.on_intent(intent_from_pb(i), market(), now_ns) for i in planned.intents]


def test_a_close_is_a_reduce_only_market_exit_of_the_strategys_share_and_cancels_its_protection() -> None:
    c = core()
    pair = protected_long(c)
    assert {o.role for o in pair} == {OrderRole.STOP_LOSS, OrderRole.TAKE_PROFIT}
    now = T0 + 2 * SECOND
    (verdict,) = carry_out(c, request(sig.POSITION_ACTION_CLOSE), now)
    assert verdict.allowed
    (exit_,) = verdict.orders
    assert (exit_.role, exit_.side, exit_.size, exit_.reduce_only) == (OrderRole.EXIT, Side.SELL, D(2), True)
    assert exit_.strategy_id == "trend"
    # The pair covers only what the exit leaves: nothing; both are cancelled.
    assert set(cancelled(verdict.output.actions)) == {o.client_order_id for o in pair}
    c.on_fill("sim", fill(exit_, price="101"), now + MS)
    assert c.book.positions.size(("sim", "BTC/USDT")) == 0


def test_a_close_cancels_the_rest_of_its_strategys_entry_still_working_and_not_another_strategys() -> None:
    """A limit entry that filled 1 of 2 at once (the book showed less) is still working when the
    strategy, hearing it holds 1, closes: filling later, the rest would open again what the close
    closed. The close cancels it (a NOTICE says so) and takes off the 1 held; another strategy's
    working entry there is left (found on paper Binance: docs/paper.md)."""
    c = core()
    entry = c.on_intent(intent(size="2"), market(), T0).orders[0]
    other = c.on_intent(intent(size="1", price="90", strategy="other"), market(), T0).orders[0]
    c.on_order_update(update(entry, OrderStatus.PARTIALLY_FILLED, filled="1"), T0 + MS)
    c.on_fill("sim", fill(entry, size="1", price="100"), T0 + MS)
    now = T0 + 2 * SECOND
    (verdict,) = carry_out(c, request(sig.POSITION_ACTION_CLOSE), now)
    assert verdict.allowed and verdict.orders[0].size == D(1) and verdict.orders[0].reduce_only
    assert entry.client_order_id in cancelled(verdict.output.actions)
    assert other.client_order_id not in cancelled(verdict.output.actions)
    (notice,) = [e for e in verdict.output.events if e.policy == "exit.working_entry"]
    assert notice.action is RiskAction.NOTICE and notice.value("order") == entry.client_order_id
    assert notice.value("remaining") == "1" and notice.strategy_id == "trend"
    # Its cancel confirmed, the exit's fill leaves the strategy flat.
    c.on_order_update(update(entry, OrderStatus.CANCELED, filled="1"), now + MS)
    c.on_fill("sim", fill(verdict.orders[0], price="101"), now + MS)
    assert c.book.positions.by_strategy.get(("trend", "sim", "BTC/USDT"), D(0)) == 0


def test_a_reduce_takes_its_fraction_of_the_share_and_shrinks_the_pair_to_what_is_left() -> None:
    c = core()
    pair = protected_long(c, size="2")
    now = T0 + 2 * SECOND
    (verdict,) = carry_out(c, request(sig.POSITION_ACTION_REDUCE, fraction="0.25"), now)
    assert verdict.allowed and verdict.orders[0].size == D("0.5") and verdict.orders[0].reduce_only
    replaced = [o for o in placed(verdict.output.actions) if o.role is not OrderRole.EXIT]
    assert {o.role for o in replaced} == {OrderRole.STOP_LOSS, OrderRole.TAKE_PROFIT}
    assert {o.size for o in replaced} == {D("1.5")}
    assert set(cancelled(verdict.output.actions)) == {o.client_order_id for o in pair}


def test_a_reduce_is_rounded_down_to_the_lot_and_one_under_a_lot_is_refused() -> None:
    c = core()
    protected_long(c, size="2")
    c.on_instruments("sim", {"BTC/USDT": InstrumentFacts(lot_size=D("0.3"))}, T0 + SECOND)
    planned = plan_request(c, request(sig.POSITION_ACTION_REDUCE, fraction="0.5"), T0 + 2 * SECOND)
    assert [D(i.size) for i in planned.intents] == [D("0.9")]
    small = plan_request(c, request(sig.POSITION_ACTION_REDUCE, fraction="0.1"), T0 + 2 * SECOND)
    assert small.intents == [] and small.refusal is not None
    assert small.refusal.policy == "request.too_small"


def test_a_flip_closes_then_opens_the_other_side_of_the_same_size() -> None:
    c = core()
    protected_long(c, size="2")
    now = T0 + 2 * SECOND
    planned = plan_request(c, request(sig.POSITION_ACTION_FLIP, direction=sig.DIRECTION_SHORT), now)
    close, open_ = planned.intents
    assert (close.reduce_only, open_.reduce_only) == (True, False)
    assert close.side == open_.side and D(close.size) == D(open_.size) == D(2)
    assert close.intent_id == request_intent_id(close.signal_id, "exit") != open_.intent_id
    verdicts = [c.on_intent(intent_from_pb(i), market(), now) for i in planned.intents]
    assert [v.allowed for v in verdicts] == [True, True]
    assert [v.orders[0].role for v in verdicts] == [OrderRole.EXIT, OrderRole.ENTRY]
    for verdict in verdicts:
        c.on_fill("sim", fill(verdict.orders[0], price="99"), now + MS)
    assert c.book.positions.size(("sim", "BTC/USDT")) == D(-2)
    assert c.book.positions.by_strategy[("trend", "sim", "BTC/USDT")] == D(-2)


def test_a_flip_to_the_side_held_already_is_refused() -> None:
    c = core()
    protected_long(c)
    planned = plan_request(c, request(sig.POSITION_ACTION_FLIP, direction=sig.DIRECTION_LONG), T0 + SECOND)
    assert planned.refusal is not None and planned.refusal.policy == "request.flip"


def test_a_request_of_a_strategy_with_no_position_is_refused_with_a_reason() -> None:
    c = core()
    protected_long(c, strategy="trend")  # another strategy's position is not this one's
    planned = plan_request(c, request(sig.POSITION_ACTION_CLOSE, strategy="mean_reversion"), T0 + SECOND)
    assert planned.intents == []
    event = planned.refusal
    assert event is not None and event.action is RiskAction.BLOCK and event.policy == "request.no_position"
    assert "mean_reversion" in event.reason and "BTC/USDT" in event.reason
    assert (event.strategy_id, event.venue, event.symbol) == ("mean_reversion", "sim", "BTC/USDT")
    assert event.value("action") == "close"


def test_an_open_is_refused_as_the_advisors_to_size() -> None:
    planned = plan_request(core(), request(sig.POSITION_ACTION_OPEN, direction=sig.DIRECTION_LONG), T0)
    assert planned.refusal is not None and planned.refusal.policy == "request.open"


def test_a_redelivered_request_plans_nothing_again() -> None:
    c = core()
    protected_long(c)
    asked = request(sig.POSITION_ACTION_CLOSE)
    carry_out(c, asked, T0 + 2 * SECOND)
    again = plan_request(c, asked, T0 + 3 * SECOND)
    assert again.intents == [] and again.refusal is None


def test_a_requests_intents_expire_and_are_checked_as_of_the_request() -> None:
    c = core()
    protected_long(c)
    (close,) = plan_request(c, request(sig.POSITION_ACTION_CLOSE), T0 + 2 * SECOND).intents
    assert close.ts_signal_ns == T0 + SECOND
    assert close.expires_at_ns == T0 + 2 * SECOND + REQUEST_TTL_NS
    late = c.on_intent(intent_from_pb(close), market(), close.expires_at_ns + 1)
    assert late.action is RiskAction.BLOCK and late.reasons[0].policy == "intent.expired"


def test_while_stood_down_a_close_is_placed_and_a_flips_open_is_blocked() -> None:
    c = core()
    protected_long(c)
    c.stand_down("news", T0 + SECOND)
    now = T0 + 2 * SECOND
    planned = plan_request(c, request(sig.POSITION_ACTION_FLIP, direction=sig.DIRECTION_SHORT), now)
    verdicts = [c.on_intent(intent_from_pb(i), market(), now) for i in planned.intents]
    assert verdicts[0].allowed
    assert verdicts[1].action is RiskAction.BLOCK and verdicts[1].reasons[0].policy == "state"


def test_a_reduce_by_no_fraction_or_an_unknown_action_is_refused_naming_it_and_quoting_it_short() -> None:
    c = core()
    protected_long(c)
    for fraction in ("abc", "NaN", "0", "1.5"):
        planned = plan_request(c, request(sig.POSITION_ACTION_REDUCE, fraction=fraction), T0 + SECOND)
        assert planned.refusal is not None and planned.refusal.policy == "request.fraction", fraction
        assert repr(fraction) in planned.refusal.reason
    unknown = plan_request(c, request(99), T0 + SECOND)
    assert unknown.refusal is not None and unknown.refusal.policy == "request.action"
    long_name = plan_request(c, request(sig.POSITION_ACTION_CLOSE, strategy="s" * 10_000), T0 + SECOND)
    assert long_name.refusal is not None and len(long_name.refusal.reason) < 400
    assert long_name.refusal.strategy_id == "s" * 128
