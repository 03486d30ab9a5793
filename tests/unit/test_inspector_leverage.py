"""The inspector core's leverage, margin and liquidation policies (docs/inspector-orders.md, "Leverage,
margin and liquidation"): each test fails without the policy it names."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from tests.inspector_support import MS, T0, D, fill, intent, market, placed, state
from trademesh.core.domain.contracts.intent import ExecutionIntent
from trademesh.core.domain.model import InstrumentKind, MarginMode, PositionMargin, Side
from trademesh.core.inspector.engine.actions import Amend, OrderRole, PlaceOrder
from trademesh.core.inspector.engine.core import InspectorCore
from trademesh.core.inspector.engine.diff import diff_policies, loosenings
from trademesh.core.inspector.engine.events import RiskAction, RiskOutput, RiskState, RiskVerdict
from trademesh.core.inspector.engine.instruments import InstrumentFacts
from trademesh.core.inspector.engine.margin import MarginReport, SettleBalance, estimate_liquidation
from trademesh.core.inspector.engine.margin_policies import (
    LeverageLimit,
    LeveragePolicy,
    LiquidationPolicy,
    MarginPolicy,
)
from trademesh.core.inspector.engine.policies import PolicySet
from trademesh.core.inspector.engine.policy_dump import dump_policies
from trademesh.core.inspector.engine.policy_file import load_policies, read_policies
from trademesh.core.inspector.views import policy_status, positions_view
from trademesh.core.platform.errors import InvalidArgument
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

PERP = "BTC/USDT:USDT"
SHIPPED = Path(__file__).parents[2] / "trademesh" / "core" / "inspector" / "default_policies.toml"
FACTS = InstrumentFacts(
    tick_size=D("0.1"), lot_size=D("0.001"), min_size=D("0.001"), kind=InstrumentKind.PERPETUAL
)
SPOT_FACTS = InstrumentFacts(tick_size=D("0.01"), lot_size=D("0.0001"), kind=InstrumentKind.SPOT)


def _core(policies: PolicySet, *, leverage: bool = True, setting: str | None = "5") -> InspectorCore:
    """A core that knows the sim's perpetual and spot market, and the venue's account: 10,000
    USDT, no position, `setting` the perpetual's leverage in force."""
    c = InspectorCore(policies, D(100_000), T0)
    c.on_instruments("sim", {PERP: FACTS, "BTC/USDT": SPOT_FACTS}, T0)
    settings = {} if setting is None else {PERP: D(setting)}
    balances = {"USDT": SettleBalance(D(10_000), D(0))}
    c.on_margin(MarginReport("sim", leverage, {}, balances, settings), T0)
    return c


def _perp(
    size: str = "1", leverage: str | None = None, side: Side = Side.BUY, intent_id: str | None = None
) -> ExecutionIntent:
    made = intent(side, size=size, symbol=PERP, intent_id=intent_id)
    return replace(made, leverage=None if leverage is None else D(leverage))


def _check(
    c: InspectorCore,
    size: str = "1",
    leverage: str | None = None,
    side: Side = Side.BUY,
    intent_id: str | None = None,
) -> RiskVerdict:
    return c.on_intent(_perp(size, leverage, side, intent_id), market(), T0 + MS)


def _policy(verdict: RiskVerdict) -> list[str]:
    return [r.policy for r in verdict.reasons]


# ---- leverage.max (per symbol and the default) ----


def test_an_intent_above_the_maximum_leverage_is_blocked_and_at_it_allowed() -> None:
    c = _core(PolicySet(leverage=LeveragePolicy(max=D(10))))
    blocked = _check(c, leverage="12")
    assert blocked.action is RiskAction.BLOCK and _policy(blocked) == ["leverage.max"]
    assert blocked.reasons[0].value("value") == "12" and blocked.reasons[0].value("limit") == "10"
    allowed = _check(c, leverage="10")
    assert allowed.allowed and allowed.orders[0].leverage == D(10)


def test_a_symbols_own_maximum_overrides_the_default() -> None:
    policy = LeveragePolicy(max=D(10), symbols={PERP: LeverageLimit(max=D(3))})
    c = _core(PolicySet(leverage=policy))
    assert _policy(_check(c, leverage="4")) == ["leverage.max"]
    assert _check(c, leverage="3").allowed


def test_without_its_own_leverage_an_intent_is_held_at_the_venues_setting() -> None:
    c = _core(PolicySet(leverage=LeveragePolicy(max=D(10))), setting="25")
    blocked = _check(c)
    assert _policy(blocked) == ["leverage.max"] and blocked.reasons[0].value("value") == "25"
    c.on_margin(MarginReport("sim", True, settings={PERP: D(8)}), T0 + MS)
    allowed = _check(c)
    # Nothing to set at the venue: its own setting stands.
    assert allowed.allowed and allowed.orders[0].leverage is None
    assert allowed.reasons[0].value("leverage") == "8"


def test_a_leverage_not_known_yet_is_blocked_while_a_leverage_policy_is_set() -> None:
    c = _core(PolicySet(leverage=LeveragePolicy(max=D(10))), setting=None)
    assert _policy(_check(c)) == ["leverage.unknown"]
    assert _check(c, leverage="2").allowed  # the intent's own is known
    assert _core(PolicySet(), setting=None).on_intent(_perp(), market(), T0 + MS).allowed


def test_the_intents_leverage_is_set_before_its_order_and_in_force_after() -> None:
    c = _core(PolicySet(leverage=LeveragePolicy(max=D(10))))
    first = _check(c, leverage="7")
    assert first.orders[0].leverage == D(7) and c.margin.settings[("sim", PERP)] == D(7)
    second = _check(c)  # the setting the first one set holds it
    assert second.allowed and second.reasons[0].value("leverage") == "7"


def test_a_spot_symbol_and_a_venue_without_leverage_ignore_it() -> None:
    c = _core(PolicySet(leverage=LeveragePolicy(max=D(2))))
    spot = replace(intent(symbol="BTC/USDT"), leverage=D(50))
    verdict = c.on_intent(spot, market(), T0 + MS)
    assert verdict.allowed and verdict.orders[0].leverage is None
    plain = _core(PolicySet(leverage=LeveragePolicy(max=D(2))), leverage=False)
    verdict = _check(plain, leverage="50")
    assert verdict.allowed and verdict.orders[0].leverage is None
    assert ("sim", PERP) not in plain.margin.settings or plain.margin.settings[("sim", PERP)] == D(5)


def test_an_exit_is_not_checked_against_leverage() -> None:
    c = _core(PolicySet())
    entry = _check(c, size="1", leverage="50").orders[0]
    c.on_fill("sim", fill(entry, price="100"), T0 + 2 * MS)
    c.update_policies(PolicySet(leverage=LeveragePolicy(max=D(2))), T0 + 3 * MS)
    out = c.on_intent(
        replace(intent(Side.SELL, size="1", symbol=PERP, reduce_only=True), leverage=D(50)),
        market(),
        T0 + 4 * MS,
    )
    assert out.allowed and out.orders[0].leverage is None


# ---- leverage.max_overall ----


def test_the_accounts_overall_leverage_is_bounded() -> None:
    # Equity 100,000: 3x overall is 300,000 of notional.
    c = _core(PolicySet(leverage=LeveragePolicy(max_overall=D(3))))
    first = _check(c, size="2000", leverage="10")  # 200,000 at 100
    assert first.allowed
    c.on_fill("sim", fill(first.orders[0], price="100"), T0 + 2 * MS)
    assert _check(c, size="1000", leverage="10").allowed is True  # 300,000: at the limit
    blocked = _check(c, size="1", leverage="10", intent_id="over")
    assert _policy(blocked) == ["leverage.max_overall"]
    assert D(blocked.reasons[0].value("value")) > 3


# ---- liquidation.min_distance_entry ----


def test_an_entry_whose_liquidation_would_be_too_near_is_blocked() -> None:
    c = _core(PolicySet(liquidation=LiquidationPolicy(min_distance_entry=D("0.03"))))
    # 50x, 0.5% maintenance: a long at 100 is liquidated at 100 x 0.98 / 0.995, 1.5% away.
    blocked = _check(c, leverage="50")
    assert _policy(blocked) == ["liquidation.min_distance_entry"]
    reason = blocked.reasons[0]
    assert D(reason.value("value")) < D("0.03") and reason.value("maintenance_rate") == "0.005"
    expected = estimate_liquidation(D(100), D(50), D("0.005"), Side.BUY, False)
    assert expected is not None and D(reason.value("liquidation_price")) == expected
    assert _check(c, leverage="20").allowed  # 4.5% away
    assert _policy(_check(c, leverage="30", side=Side.SELL)) == ["liquidation.min_distance_entry"]


def test_the_venues_maintenance_rate_is_read_from_its_position() -> None:
    c = _core(PolicySet(liquidation=LiquidationPolicy(min_distance_entry=D("0.05"))))
    assert _check(c, leverage="18").allowed  # 1/18 - 0.5%: about 5.1% away
    held = PositionMargin(
        "USDT", leverage=D(10), initial_margin=D(100), maintenance_margin=D(20), mark_price=D(100),
        liquidation_price=D(80),
    )  # fmt: skip
    c.on_margin(MarginReport("sim", True, {PERP: held}), T0 + MS)
    assert c.margin.maintenance_rate(("sim", PERP)) == D("0.02")
    blocked = _check(c, leverage="18", side=Side.SELL)  # at 2%, 18x is about 3.5% away
    assert _policy(blocked) == ["liquidation.min_distance_entry"]
    assert blocked.reasons[0].value("maintenance_rate") == "0.02"


def test_an_entry_adding_to_a_position_near_its_liquidation_is_blocked() -> None:
    c = _core(PolicySet(liquidation=LiquidationPolicy(min_distance_entry=D("0.05"))))
    near = PositionMargin("USDT", leverage=D(2), mark_price=D(100), liquidation_price=D(97))
    c.on_margin(MarginReport("sim", True, {PERP: near}), T0 + MS)
    blocked = _check(c, leverage="2")  # the entry alone would be 50% away
    assert _policy(blocked) == ["liquidation.min_distance_entry"]
    assert blocked.reasons[0].value("liquidation_price") == "97"
    assert _check(c, leverage="2", side=Side.SELL).allowed  # a short's is above: not this one


def test_an_inverse_entrys_liquidation_is_estimated_in_its_coin() -> None:
    inverse = InstrumentFacts(tick_size=D("0.5"), lot_size=D(1), contract_value=D(10), inverse=True,
                              kind=InstrumentKind.PERPETUAL)  # fmt: skip
    c = InspectorCore(PolicySet(liquidation=LiquidationPolicy(min_distance_entry=D("0.3"))), D(100_000), T0)
    c.on_instruments("deribit", {"BTC/USD:BTC": inverse}, T0)
    c.on_margin(MarginReport("deribit", True, {}, {"BTC": SettleBalance(D(10))}, {"BTC/USD:BTC": D(2)}), T0)
    long = c.on_intent(
        intent(size="10", symbol="BTC/USD:BTC", venue="deribit", price="100"), market(), T0 + MS
    )
    # An inverse long at 2x: P(1 + m)/(1.5), 33% below; linear it would be 49.7%.
    assert long.allowed
    short = c.on_intent(
        intent(Side.SELL, size="10", symbol="BTC/USD:BTC", venue="deribit", price="100"), market(), T0 + MS
    )
    assert short.allowed  # P(1 - m)/0.5: 99% above
    assert estimate_liquidation(D(100), D(1), D("0.005"), Side.SELL, True) is None


# ---- margin.max_use ----


def test_margin_use_past_its_limit_is_blocked() -> None:
    c = _core(PolicySet(margin=MarginPolicy(max_use=D("0.8"))))
    c.on_margin(MarginReport("sim", True, balances={"USDT": SettleBalance(D(10_000), D(3000))}), T0 + MS)
    # 50 at 100 is 5,000 of notional: at 1x (3000 + 5000) / 10000 = 0.8, at the limit.
    assert _check(c, size="50", leverage="1").allowed
    blocked = _check(c, size="51", leverage="1")  # (3000 + 5100) / 10000
    assert _policy(blocked) == ["margin.max_use"] and blocked.reasons[0].value("asset") == "USDT"
    assert D(blocked.reasons[0].value("value")) == D("0.81")
    assert _check(c, size="51", leverage="10").allowed  # 510 of margin


def test_margin_use_counts_the_positions_unrealised_pnl_and_margins_when_the_balance_does_not_say() -> None:
    c = _core(PolicySet(margin=MarginPolicy(max_use=D("0.5"))))
    held = PositionMargin("USDT", leverage=D(5), initial_margin=D(4000), unrealized_pnl=D(-2000))
    c.on_margin(
        MarginReport("sim", True, {"ETH/USDT:USDT": held}, {"USDT": SettleBalance(D(10_000))}), T0 + MS
    )
    # (4000 + 100) / (10000 - 2000) = 0.5125
    assert _policy(_check(c, size="1", leverage="1")) == ["margin.max_use"]


def test_margin_use_without_a_reported_balance_is_blocked_naming_it() -> None:
    c = _core(PolicySet(margin=MarginPolicy(max_use=D("0.5"))))
    c.margin.balances.clear()
    blocked = _check(c, leverage="5")
    assert (
        _policy(blocked) == ["margin.max_use"]
        and "has not reported its USDT balance" in blocked.reasons[0].reason
    )


# ---- liquidation.min_distance_open ----


def _held(c: InspectorCore, size: str = "2", leverage: str = "20") -> PlaceOrder:
    entry = _check(c, size=size, leverage=leverage).orders[0]
    c.on_fill("sim", fill(entry, price="100"), T0 + 2 * MS)
    return entry


def _report(liquidation: str, mark: str = "100") -> MarginReport:
    margin = PositionMargin(
        "USDT", leverage=D(20), mode=MarginMode.ISOLATED, mark_price=D(mark), initial_margin=D(10),
        maintenance_margin=D(1), liquidation_price=D(liquidation),
    )  # fmt: skip
    return MarginReport("sim", True, {PERP: margin})


def _reductions(out: RiskOutput) -> list[PlaceOrder]:
    return [a for a in placed(out.actions) if a.role is OrderRole.FLATTEN]


OPEN = LiquidationPolicy(min_distance_open=D("0.03"))


def test_a_position_nearing_its_liquidation_is_reduced_once_per_approach() -> None:
    c = _core(PolicySet(liquidation=OPEN))
    _held(c)
    assert c.on_margin(_report("95.5"), T0 + 3 * MS).events == ()  # 4.5% away
    out = c.on_mark("sim", PERP, D("98.3"), T0 + 4 * MS)  # 2.85% from 95.5
    event = next(e for e in out.events if e.action is RiskAction.REDUCE)
    assert event.policy == "liquidation.min_distance_open" and event.value("action") == "reduce"
    (order,) = _reductions(out)
    assert order.reduce_only and order.side is Side.SELL and order.size == D(1) and order.price is None
    # Protection shrinks to what the reduction leaves, before it goes (as for an exit).
    before = out.actions.index(order)
    assert any(isinstance(a, Amend) for a in out.actions[:before])
    assert _reductions(c.on_mark("sim", PERP, D("98"), T0 + 5 * MS)) == []  # the same approach
    c.on_fill("sim", fill(order, price="98"), T0 + 6 * MS)
    c.on_mark("sim", PERP, D(99), T0 + 7 * MS)  # back beyond 3%: re-armed
    again = _reductions(c.on_mark("sim", PERP, D(98), T0 + 8 * MS))
    assert [o.size for o in again] == [D("0.5")]


def test_close_as_the_open_action_closes_the_whole_position() -> None:
    c = _core(PolicySet(liquidation=replace(OPEN, open_action="close")))
    _held(c, size="2")
    out = c.on_margin(_report("97.5", mark="99.9"), T0 + 3 * MS)  # 2.4% away
    (order,) = _reductions(out)
    assert order.size == D(2)
    assert next(e for e in out.events if e.action is RiskAction.REDUCE).reason.endswith("closed")


def test_without_the_policy_a_position_near_liquidation_is_left_as_it_is() -> None:
    c = _core(PolicySet())
    _held(c)
    out = c.on_margin(_report("99"), T0 + 3 * MS)
    assert _reductions(out) == [] and not any(e.action is RiskAction.REDUCE for e in out.events)


def test_a_short_positions_distance_is_to_its_liquidation_above() -> None:
    c = _core(PolicySet(liquidation=OPEN))
    entry = _check(c, size="2", leverage="20", side=Side.SELL).orders[0]
    c.on_fill("sim", fill(entry, price="100"), T0 + 2 * MS)
    (order,) = _reductions(c.on_margin(_report("102", mark="100"), T0 + 3 * MS))
    assert order.side is Side.BUY and order.size == D(1)


def test_under_one_lot_the_reduction_takes_the_whole_position() -> None:
    c = _core(PolicySet(liquidation=OPEN))
    _held(c, size="0.001")
    (order,) = _reductions(c.on_margin(_report("99"), T0 + 3 * MS))
    assert order.size == D("0.001")


# ---- a liquidation at the venue ----


def _liquidation_fill(c: InspectorCore, entry: PlaceOrder, size: str) -> RiskOutput:
    theirs = replace(
        fill(entry, size=size, price="95.2", fee="0.5"),
        client_order_id="",
        order_id="liq-1",
        side=Side.SELL,
        liquidation=True,
    )
    return c.on_fill("sim", theirs, T0 + 5 * MS)


def test_a_liquidation_at_the_venue_is_a_risk_event_and_stands_down() -> None:
    c = _core(PolicySet())
    entry = _held(c)
    out = _liquidation_fill(c, entry, "2")
    notice = next(e for e in out.events if e.policy == "liquidation.venue")
    assert (
        notice.action is RiskAction.NOTICE
        and notice.value("order") == "liq-1"
        and notice.value("price") == "95.2"
    )
    assert not any(e.policy == "orders.unknown" for e in out.events)
    assert state(c) is RiskState.STANDING_DOWN and c.book.positions.size(("sim", PERP)) == 0
    stand = next(e for e in out.events if e.action is RiskAction.STAND_DOWN)
    assert stand.policy == "liquidation.stand_down"
    assert _policy(_check(c, leverage="2")) == ["state"]


def test_by_policy_a_liquidation_does_not_stand_down() -> None:
    c = _core(PolicySet(liquidation=LiquidationPolicy(stand_down=False)))
    entry = _held(c)
    out = _liquidation_fill(c, entry, "1")
    assert any(e.policy == "liquidation.venue" for e in out.events)
    assert state(c) is RiskState.ACTIVE


# ---- the policies file ----


def test_the_leverage_policies_are_read_checked_and_dumped_whole() -> None:
    text = """
[leverage]
max = "10"
max_overall = "4"
[leverage.symbols."BTC/USDT:USDT"]
max = "25"
[liquidation]
min_distance_entry = "0.05"
min_distance_open = "0.02"
open_action = "close"
stand_down = false
[margin]
max_use = "0.6"
"""
    read = read_policies(text, PolicySet()).policies
    assert read.leverage.limit_for(PERP) == D(25) and read.leverage.limit_for("ETH/USDT:USDT") == D(10)
    assert read.liquidation.open_action == "close" and read.liquidation.stand_down is False
    assert load_policies(dump_policies(read)) == read


@pytest.mark.parametrize(
    ("text", "key", "said"),
    [
        ('[leverage]\nmax = "0"', "leverage.max", "must be more than 0 and at most 1000, got 0"),
        ('[leverage.symbols."X/USDT:USDT"]\nmax = "2000"', "leverage.symbols.X/USDT:USDT.max", "most 1000"),
        ('[liquidation]\nmin_distance_open = "1.5"', "liquidation.min_distance_open", "at most 1"),
        ('[liquidation]\nopen_action = "flip"', "liquidation.open_action", "'flip' is not reduce or close"),
        ('[liquidation]\nstand_down = "yes"', "liquidation.stand_down", "is not true or false"),
        ('[margin]\nmax_use = "-0.1"', "margin.max_use", "more than 0"),
    ],
)
def test_a_bad_leverage_policy_is_named(text: str, key: str, said: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        load_policies(text)
    (violation,) = caught.value.violations
    assert violation.field == key and said in violation.description


def test_tighten_only_knows_which_way_each_leverage_policy_tightens() -> None:
    shipped = read_policies(SHIPPED.read_text(), PolicySet()).policies

    def loosened(text: str) -> list[str]:
        return loosenings(diff_policies(shipped, read_policies(text, shipped).policies))

    tighter = '[leverage]\nmax = "10"\nmax_overall = "3"\n[margin]\nmax_use = "0.5"\n'
    tighter += '[liquidation]\nmin_distance_entry = "0.05"\nmin_distance_open = "0.03"\n'
    tighter += 'open_action = "close"\n'
    assert loosened(tighter) == []
    assert loosened('[leverage]\nmax = "50"') == ["leverage.max: 20 -> 50 does not lower it"]
    assert loosened('[liquidation]\nmin_distance_open = "0.005"') == [
        "liquidation.min_distance_open: 0.01 -> 0.005 does not raise it"
    ]
    assert loosened("[liquidation]\nstand_down = false") == [
        "liquidation.stand_down: True -> False does not tighten it"
    ]
    assert loosened('remove = ["liquidation.min_distance_entry"]') == [
        "liquidation.min_distance_entry: 0.02 -> off turns the limit off"
    ]


# ---- what the API shows ----


def test_list_positions_shows_the_venues_margin_and_the_distance_at_the_mark() -> None:
    c = _core(PolicySet(liquidation=OPEN))
    _held(c)
    c.on_margin(_report("95.5"), T0 + 3 * MS)
    c.on_mark("sim", PERP, D(100), T0 + 4 * MS)
    (view,) = positions_view(c, "", {}, set())
    assert (view.leverage, view.liquidation_price, view.liquidation_distance) == ("20", "95.5", "0.045")
    assert view.margin_mode == tf.MARGIN_MODE_ISOLATED
    spot = _core(PolicySet())
    entry = spot.on_intent(intent(symbol="BTC/USDT"), market(), T0 + MS).orders[0]
    spot.on_fill("sim", fill(entry), T0 + 2 * MS)
    (plain,) = positions_view(spot, "", {}, set())
    assert plain.leverage == plain.liquidation_price == "" and plain.margin_mode == tf.MARGIN_MODE_UNSPECIFIED


def test_get_policies_shows_each_leverage_policy_against_its_value() -> None:
    policies = read_policies(SHIPPED.read_text(), PolicySet()).policies
    c = _core(replace(policies, leverage=LeveragePolicy(max=D(20), max_overall=D(4))))
    _held(c, size="2", leverage="10")
    report = replace(_report("95.5"), balances={"USDT": SettleBalance(D(1000), D(250))})
    c.on_margin(report, T0 + 3 * MS)
    c.on_mark("sim", PERP, D(100), T0 + 4 * MS)
    rows = {r.key: (r.limit, r.value, r.used) for r in policy_status(c)}
    assert rows["leverage.max"] == ("20", "20", "1")  # the venue holds it at 20x
    assert rows["margin.max_use"] == ("0.8", "0.25", "0.3125")
    assert rows["liquidation.min_distance_open"] == ("0.01", "0.045", "0.2222")
    assert rows["liquidation.min_distance_entry"] == ("0.02", "", "")
    assert rows["leverage.max_overall"][0] == "4" and D(rows["leverage.max_overall"][1]) == D("0.002")
