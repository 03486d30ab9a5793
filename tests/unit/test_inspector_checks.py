"""Each policy on its own: an order at the limit is allowed, one just over it is refused, and
the risk event names the policy with the values it was decided on."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest

from tests.inspector_support import MS, T0, D, core, fill, intent, market, state, update
from trademesh.core.domain.model import OrderStatus, Side
from trademesh.core.inspector.engine.core import InspectorCore
from trademesh.core.inspector.engine.events import RiskAction, RiskState, RiskVerdict
from trademesh.core.inspector.engine.market import MarketView
from trademesh.core.inspector.engine.policies import (
    CapitalPolicy,
    ExposurePolicy,
    LossPolicy,
    OrderPolicy,
    PolicySet,
    PositionPolicy,
    RatePolicy,
    SchedulePolicy,
    SymbolLimit,
    Window,
)


def refused(verdict: RiskVerdict, policy: str, action: RiskAction = RiskAction.BLOCK) -> dict[str, str]:
    """The verdict refused for `policy` alone; the event's values."""
    assert verdict.action is action
    assert verdict.orders == ()
    assert [e.policy for e in verdict.reasons] == [policy]
    event = verdict.reasons[0]
    assert event.action is action and event.reason and event.intent_id == verdict.intent_id
    return dict(event.values)


def fresh(**sections: object) -> InspectorCore:
    return core(PolicySet(**sections))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("policies", "at", "over", "policy"),
    [
        ({"position": PositionPolicy(max_size=D(2))}, "2", "2.001", "position.max_size"),
        ({"position": PositionPolicy(max_notional=D(200))}, "2", "2.01", "position.max_notional"),
        (
            {"position": PositionPolicy(max_size=D(9), symbols={"BTC/USDT": SymbolLimit(max_size=D("0.5"))})},
            "0.5",
            "0.51",
            "position.max_size",
        ),
        ({"exposure": ExposurePolicy(max_gross=D(300))}, "3", "3.01", "exposure.max_gross"),
        ({"exposure": ExposurePolicy(max_net=D(300))}, "3", "3.01", "exposure.max_net"),
        ({"orders": OrderPolicy(max_notional=D(1000))}, "10", "10.01", "orders.max_notional"),
        ({"capital": CapitalPolicy(reserved={"trend": D(500)})}, "5", "5.01", "capital.reserved"),
        ({"capital": CapitalPolicy(default_reserved=D(500))}, "5", "5.01", "capital.reserved"),
    ],
)
def test_a_size_limit_allows_at_the_limit_and_blocks_just_over(
    policies: dict[str, object], at: str, over: str, policy: str
) -> None:
    allowed = fresh(**policies).on_intent(intent(size=at), market(), T0)
    assert allowed.action is RiskAction.ALLOW and allowed.orders[0].size == D(at)
    values = refused(fresh(**policies).on_intent(intent(size=over), market(), T0), policy)
    assert D(values["value"]) > D(values["limit"])


def test_position_limits_count_the_open_entries_as_if_filled() -> None:
    c = fresh(position=PositionPolicy(max_size=D(2)))
    assert c.on_intent(intent(size="1.5"), market(), T0).allowed
    values = refused(c.on_intent(intent(size="0.6"), market(), T0), "position.max_size")
    assert values == {"value": "2.1", "limit": "2"}
    assert c.on_intent(intent(size="0.5"), market(), T0).allowed


def test_net_exposure_nets_a_long_against_a_short() -> None:
    c = fresh(exposure=ExposurePolicy(max_net=D(300)))
    first = c.on_intent(intent(size="3"), market(), T0)
    c.on_fill("sim", fill(first.orders[0]), T0)
    # A short on another symbol lowers the net: what would otherwise be over passes.
    short = c.on_intent(intent(Side.SELL, size="3", symbol="ETH/USDT"), market(), T0)
    assert short.allowed
    refused(c.on_intent(intent(size="0.01"), market(), T0), "exposure.max_net")


def test_capital_keeps_reserved_used_and_suppressed_per_strategy() -> None:
    c = fresh(capital=CapitalPolicy(reserved={"trend": D(500)}))
    c.on_intent(intent(size="4"), market(), T0)
    refused(c.on_intent(intent(size="2"), market(), T0), "capital.reserved")
    use = c.capital("trend")
    assert (use.reserved, use.used, use.suppressed) == (D(500), D(400), D(200))
    other = c.capital("other")
    assert (other.reserved, other.used, other.suppressed) == (None, D(0), D(0))


def test_max_open_orders_allows_the_last_and_frees_a_slot_when_one_ends() -> None:
    c = fresh(orders=OrderPolicy(max_open=2))
    first = c.on_intent(intent(), market(), T0)
    assert c.on_intent(intent(), market(), T0).allowed
    assert refused(c.on_intent(intent(), market(), T0), "orders.max_open") == {"value": "3", "limit": "2"}
    c.on_order_update(update(first.orders[0], OrderStatus.CANCELED), T0)
    assert c.on_intent(intent(), market(), T0).allowed


def test_the_price_band_allows_a_limit_at_the_band_and_blocks_past_it() -> None:
    c = fresh(orders=OrderPolicy(price_band=D("0.02")))
    assert c.on_intent(intent(price="102"), market(), T0).allowed
    assert c.on_intent(intent(Side.SELL, price="98", symbol="ETH/USDT"), market(), T0).allowed
    values = refused(c.on_intent(intent(price="102.01"), market(), T0), "orders.price_band")
    assert values["mid"] == "100.00" and values["price"] == "102.01"
    refused(c.on_intent(intent(price="101"), MarketView(last=D(100)), T0), "orders.price_band")
    assert c.on_intent(intent(price=None), market(), T0).allowed  # a market order has no limit price


@pytest.mark.parametrize(
    ("rate", "second_strategy"),
    [
        (RatePolicy(window_ms=1000, max_per_venue=3), "other"),
        (RatePolicy(window_ms=1000, max_per_strategy=3), "trend"),
    ],
)
def test_a_rate_limit_throttles_the_order_past_it_until_the_window_passes(
    rate: RatePolicy, second_strategy: str
) -> None:
    c = fresh(rate=rate)
    policy = "rate.max_per_venue" if rate.max_per_venue else "rate.max_per_strategy"
    for i in range(3):
        assert c.on_intent(
            intent(strategy="trend" if i < 2 else second_strategy), market(), T0 + i * MS
        ).allowed
    throttled = intent(strategy=second_strategy)
    verdict = c.on_intent(throttled, market(), T0 + 500 * MS)
    assert refused(verdict, policy, RiskAction.THROTTLE) == {"value": "4", "limit": "3"}
    assert state(c) is RiskState.THROTTLED
    assert verdict.output.transitions[0].after is RiskState.THROTTLED
    # A throttled intent is not used up: the same one, made again once the window has rolled on
    # (its time is the intent's own: rates.py), passes.
    again = c.on_intent(replace(throttled, created_ns=T0 + 1000 * MS), market(), T0 + 1000 * MS + 1)
    assert again.allowed
    assert state(c) is RiskState.ACTIVE


def test_a_rate_limit_per_strategy_leaves_other_strategies_alone() -> None:
    c = fresh(rate=RatePolicy(max_per_strategy=1))
    assert c.on_intent(intent(strategy="a"), market(), T0).allowed
    assert c.on_intent(intent(strategy="b"), market(), T0).allowed
    refused(c.on_intent(intent(strategy="a"), market(), T0), "rate.max_per_strategy", RiskAction.THROTTLE)


# T0 is Thursday 2026-01-01 20:40 UTC, 21:40 in Berlin.
@pytest.mark.parametrize(
    ("schedule", "allowed"),
    [
        (SchedulePolicy(windows={"thu": (Window(20 * 60 + 40, 21 * 60),)}), True),
        (SchedulePolicy(windows={"thu": (Window(20 * 60, 20 * 60 + 40),)}), False),  # the end is excluded
        (SchedulePolicy(windows={"wed": (Window(0, 24 * 60),)}), False),  # a day without windows is closed
        (SchedulePolicy("Europe/Berlin", {"thu": (Window(21 * 60 + 40, 22 * 60),)}), True),
        (SchedulePolicy("Europe/Berlin", {"thu": (Window(20 * 60 + 40, 21 * 60),)}), False),
        (SchedulePolicy(), True),  # no windows at all: always
    ],
)
def test_time_of_day_windows_are_read_in_the_policy_timezone(schedule: SchedulePolicy, allowed: bool) -> None:
    verdict = fresh(schedule=schedule).on_intent(intent(), market(), T0)
    if allowed:
        assert verdict.allowed
    else:
        values = refused(verdict, "schedule.windows")
        assert values["local_time"].startswith("2026-01-01")


def _losing_trade(c: InspectorCore, at_ns: int, size: str = "1") -> None:
    entry = c.on_intent(intent(size=size, at_ns=at_ns), market(), at_ns).orders[0]
    c.on_fill("sim", fill(entry, price="100"), at_ns)
    exit_ = c.on_intent(
        intent(Side.SELL, size=size, price="99", reduce_only=True, at_ns=at_ns), market("99"), at_ns
    )
    c.on_fill("sim", fill(exit_.orders[0], price="99"), at_ns)


def test_a_cooldown_after_a_loss_blocks_entries_until_it_ends() -> None:
    c = fresh(loss=LossPolicy(cooldown_after_loss_ms=60_000))
    _losing_trade(c, T0)
    values = refused(
        c.on_intent(intent(at_ns=T0 + 59_999 * MS), market(), T0 + 59_999 * MS), "loss.cooldown_after_loss_ms"
    )
    assert values == {"remaining_ms": "1", "limit": "60000"}
    assert c.on_intent(intent(at_ns=T0 + 60_000 * MS), market(), T0 + 60_000 * MS).allowed


def test_the_loss_streak_limit_stands_down_at_its_count() -> None:
    c = fresh(loss=LossPolicy(max_loss_streak=2))
    _losing_trade(c, T0)
    assert state(c) is RiskState.ACTIVE and c.streak.count == 1
    _losing_trade(c, T0 + MS)
    assert state(c) is RiskState.STANDING_DOWN
    stand = next(e for e in c.machine.history if e.after is RiskState.STANDING_DOWN)
    assert "2 losing trades" in stand.reason
    refused(c.on_intent(intent(), market(), T0 + 2 * MS), "state")


def test_a_winning_trade_resets_the_streak() -> None:
    c = fresh(loss=LossPolicy(max_loss_streak=2))
    _losing_trade(c, T0)
    entry = c.on_intent(intent(), market(), T0).orders[0]
    c.on_fill("sim", fill(entry, price="100"), T0)
    exit_ = c.on_intent(intent(Side.SELL, price="101", reduce_only=True), market("101"), T0)
    c.on_fill("sim", fill(exit_.orders[0], price="101"), T0)
    assert c.streak.count == 0


def test_an_exit_must_reduce_the_position() -> None:
    c = fresh()
    refused(c.on_intent(intent(Side.SELL, reduce_only=True), market(), T0), "exit.reduce_only")
    entry = c.on_intent(intent(size="2"), market(), T0).orders[0]
    c.on_fill("sim", fill(entry), T0)
    refused(c.on_intent(intent(Side.BUY, reduce_only=True), market(), T0), "exit.reduce_only")
    assert c.on_intent(intent(Side.SELL, size="1.5", reduce_only=True), market(), T0).allowed
    # 0.5 is left after the working exit: 0.6 more would not reduce, it would flip.
    values = refused(
        c.on_intent(intent(Side.SELL, size="0.6", reduce_only=True), market(), T0), "exit.reduce_only"
    )
    assert values["free"] == "0.5"


def test_an_order_with_no_price_to_value_it_at_is_blocked() -> None:
    refused(fresh().on_intent(intent(price=None), MarketView(), T0), "market.price")


def test_an_expired_intent_is_blocked() -> None:
    late = T0 + 61_000 * MS
    refused(fresh().on_intent(intent(), market(), late), "intent.expired")


def test_an_allow_event_carries_the_values_it_was_decided_on() -> None:
    verdict = fresh().on_intent(intent(size="2", price="100"), market(), T0)
    assert verdict.reasons[0].action is RiskAction.ALLOW
    order = verdict.orders[0].client_order_id  # named for the ledger, which attributes its fills
    assert dict(verdict.reasons[0].values) == {"price": "100", "size": "2", "notional": "200", "order": order}
    assert verdict.output.actions == verdict.orders


def test_notional_uses_the_far_touch_for_a_market_order() -> None:
    c = fresh(orders=OrderPolicy(max_notional=D("100.05")))
    assert c.on_intent(intent(price=None), market(), T0).orders[0].price is None
    refused(c.on_intent(intent(price=None), market("100.01"), T0), "orders.max_notional")
    assert Decimal("100.05") == market().taker_price(Side.BUY)


def test_position_limits_assume_the_stop_may_flatten_before_opposite_entries_fill() -> None:
    """A protected long of 2 with a limit of 3: the stop may fill first, so opposite entries
    are counted from flat (a sell of 3 passes, 3 more of them would make -6)."""
    c = fresh(position=PositionPolicy(max_size=D(3)))
    long = c.on_intent(intent(size="2"), market(), T0).orders[0]
    c.on_fill("sim", fill(long), T0)
    assert c.on_intent(intent(Side.SELL, size="3"), market(), T0).allowed
    values = refused(c.on_intent(intent(Side.SELL, size="1"), market(), T0), "position.max_size")
    assert values == {"value": "4", "limit": "3"}
