"""Advisor stages 7 and 8 on their own: entry, ATR stop and target, the spread, fees, distance
and risk/reward checks, risk-based sizing (exact decimals) and the intent."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest

from tests.advisor_support import INSTRUMENT, NOW_NS, book, context, signal, stage_outputs, trend_bars
from trademesh.core.advisor.engine.config import EntryMode, IntentConfig, SizingConfig, ValidationConfig
from trademesh.core.advisor.engine.fees import UNSTATED_FEE_RATE, FeeRates, fee_rates
from trademesh.core.advisor.engine.intent import close_intent, open_intent
from trademesh.core.advisor.engine.sizing import risk_size
from trademesh.core.advisor.engine.snapshot import snapshot
from trademesh.core.advisor.engine.synthesis import Synthesis, deterministic_synthesis
from trademesh.core.advisor.engine.validation import average_true_range, entry_price, plan_trade, validate
from trademesh.core.domain.contracts.signal import Direction
from trademesh.core.domain.model import InstrumentKind, OrderType, Side, TimeInForce
from trademesh.core.platform.errors import InvalidArgument

D = Decimal
UNCAPPED = ValidationConfig(cap_target_at_swing=False)
FREE = FeeRates(D(0), D(0), D(0))
# The sim venue's default fees: 0.1% maker, 0.2% taker.
SIM_FEES = dataclasses.replace(INSTRUMENT, maker_fee_rate=D("0.001"), taker_fee_rate=D("0.002"))


def synthesis(conviction: float = 0.7, multiplier: str = "1") -> Synthesis:
    base = deterministic_synthesis(stage_outputs(), "test")
    return dataclasses.replace(base, final_conviction=conviction, size_multiplier=D(multiplier))


def test_atr_is_the_mean_true_range() -> None:
    # Each bar: high - low = 0.45, the widest of the three ranges.
    assert average_true_range(trend_bars(40), 14) == D("0.45")
    assert average_true_range(trend_bars(14), 14) is None


def test_entry_price_by_mode() -> None:
    snap = snapshot(signal(), context(), NOW_NS)
    assert entry_price(snap, 1, EntryMode.LIMIT_CROSS) == D("102.01")
    assert entry_price(snap, 1, EntryMode.LIMIT_JOIN) == D("101.99")
    assert entry_price(snap, -1, EntryMode.LIMIT_CROSS) == D("101.99")
    assert entry_price(snap, -1, EntryMode.MARKET) == D("101.99")


def test_a_long_plan_rounds_the_stop_away_and_the_target_towards_the_entry() -> None:
    plan = plan_trade(D("102.01"), trend_bars(40), 1, D("0.01"), UNCAPPED, FREE)
    assert not isinstance(plan, str)
    # stop 102.01 - 1.5 * 0.45 = 101.335 -> 101.33; target 102.01 + 2.5 * 0.45 = 103.135 -> 103.13
    assert (plan.stop, plan.target) == (D("101.33"), D("103.13"))
    assert plan.risk_reward == D("1.647059")  # 1.12 / 0.68


def test_a_short_plan_mirrors_it() -> None:
    plan = plan_trade(D("101.99"), trend_bars(40), -1, D("0.01"), ValidationConfig(), FREE)
    assert not isinstance(plan, str)
    # stop 102.665 -> 102.67; target 100.865 (the swing low 100.80 is further) -> 100.87
    assert (plan.stop, plan.target) == (D("102.67"), D("100.87"))
    assert plan.risk_reward == D("1.647059")


def test_the_swing_high_caps_the_target() -> None:
    plan = plan_trade(D("102.01"), trend_bars(40), 1, D("0.01"), ValidationConfig(), FREE)
    assert not isinstance(plan, str)
    assert plan.target == D("102.20")  # the last 20 bars' high
    assert plan.risk_reward == D("0.279412")  # 0.19 / 0.68


def test_fees_count_against_the_reward_and_add_to_the_risk_each_side_at_its_own_rate() -> None:
    rates = FeeRates(entry=D("0.002"), target=D("0.001"), stop=D("0.002"))
    plan = plan_trade(D("102.01"), trend_bars(40), 1, D("0.01"), UNCAPPED, rates)
    assert not isinstance(plan, str)
    # To the target: 102.01 * 0.002 + 103.13 * 0.001 = 0.30715; to the stop: 102.01 * 0.002 +
    # 101.33 * 0.002 = 0.40668. (1.12 - 0.30715) / (0.68 + 0.40668)
    assert (plan.target_fees, plan.stop_fees) == (D("0.30715"), D("0.40668"))
    assert plan.risk_reward == (D("0.81285") / D("1.08668")).quantize(D("0.000001"))


def test_the_entry_pays_the_taker_rate_unless_it_joins_the_book_and_the_target_the_maker_rate() -> None:
    assert fee_rates(SIM_FEES, EntryMode.LIMIT_CROSS, None) == FeeRates(D("0.002"), D("0.001"), D("0.002"))
    assert fee_rates(SIM_FEES, EntryMode.MARKET, None) == FeeRates(D("0.002"), D("0.001"), D("0.002"))
    assert fee_rates(SIM_FEES, EntryMode.LIMIT_JOIN, None) == FeeRates(D("0.001"), D("0.001"), D("0.002"))
    # Set, the configured rate is every side's, whatever the venue says.
    assert fee_rates(SIM_FEES, EntryMode.LIMIT_CROSS, D(0)) == FREE


def test_a_venue_stating_no_fees_is_taken_to_charge_the_unstated_rate_not_nothing() -> None:
    silent = dataclasses.replace(INSTRUMENT, maker_fee_rate=None, taker_fee_rate=None)
    assert D("0.001") == UNSTATED_FEE_RATE
    assert fee_rates(silent, EntryMode.LIMIT_CROSS, None) == FeeRates(*[UNSTATED_FEE_RATE] * 3)
    v = validate(
        snapshot(signal(), context(instrument=silent), NOW_NS),
        1,
        synthesis(),
        EntryMode.LIMIT_CROSS,
        UNCAPPED,
    )
    # (1.12 - (0.10201 + 0.10313)) / (0.68 + (0.10201 + 0.10133))
    assert v.reasons == ("risk/reward 1.035683 < 1.2",)


def test_the_venues_fees_refuse_a_trade_accepted_without_them() -> None:
    snap = snapshot(signal(), context(), NOW_NS)
    assert validate(snap, 1, synthesis(), EntryMode.LIMIT_CROSS, UNCAPPED).passed  # a venue without fees
    charged = snapshot(signal(), context(instrument=SIM_FEES), NOW_NS)
    v = validate(charged, 1, synthesis(), EntryMode.LIMIT_CROSS, UNCAPPED)
    assert v.reasons == ("risk/reward 0.748012 < 1.2",)  # 0.81285 / 1.08668
    assert v.plan is not None and (v.plan.target_fees, v.plan.stop_fees) == (D("0.30715"), D("0.40668"))
    # An account that pays no fees there says so in the settings.
    free = dataclasses.replace(UNCAPPED, fee_rate=D(0))
    assert validate(charged, 1, synthesis(), EntryMode.LIMIT_CROSS, free).passed


def test_a_stop_and_target_within_the_round_trips_fees_are_blocked_with_the_reason() -> None:
    # Bars of a 1s-like range (ATR 0.011, 0.011%): the stop and the target a tick or two from the
    # entry, while a round trip at the sim's rates costs 0.3-0.4.
    bars = trend_bars(40, step="0.001", wick="0.005")
    snap = snapshot(signal(), context(bars, instrument=SIM_FEES, book=book("100.03", "100.05")), NOW_NS)
    v = validate(snap, 1, synthesis(), EntryMode.LIMIT_CROSS, UNCAPPED)
    assert v.reasons == (
        "stop 0.020% from the entry is within its round trip's fees and 4 ticks (0.440%): the bars are "
        "too short for the venue's fees",
        "target 0.020% from the entry is within its round trip's fees and 4 ticks (0.340%): the bars are "
        "too short for the venue's fees",
    )


def test_a_stop_within_a_few_ticks_of_the_entry_is_blocked_even_without_fees() -> None:
    bars = trend_bars(40, step="0.001", wick="0.002")  # ATR 0.005: the stop one tick away
    snap = snapshot(signal(), context(bars, book=book("100.03", "100.05")), NOW_NS)
    v = validate(snap, 1, synthesis(), EntryMode.LIMIT_CROSS, UNCAPPED)
    assert v.reasons[0].startswith("stop 0.010% from the entry is within its round trip's fees and 4 ticks")
    near = dataclasses.replace(UNCAPPED, min_distance_ticks=0, min_risk_reward=D(0))
    assert validate(snap, 1, synthesis(), EntryMode.LIMIT_CROSS, near).passed


def test_validation_passes_a_good_trade() -> None:
    v = validate(snapshot(signal(), context(), NOW_NS), 1, synthesis(), EntryMode.LIMIT_CROSS, UNCAPPED)
    assert v.passed and v.reasons == ()
    assert v.plan is not None and v.plan.entry == D("102.01")


def test_validation_blocks_a_wide_spread() -> None:
    snap = snapshot(signal(), context(book=book("102.00", "102.50")), NOW_NS)
    v = validate(snap, 1, synthesis(), EntryMode.LIMIT_CROSS, UNCAPPED)
    assert v.reasons == ("spread 0.489% > 0.400%",)  # 0.5 / 102.25


def test_the_spread_limit_is_configurable() -> None:
    snap = snapshot(signal(), context(book=book("102.00", "102.50")), NOW_NS)
    loose = dataclasses.replace(UNCAPPED, max_spread_ratio=D("0.01"))
    assert validate(snap, 1, synthesis(), EntryMode.LIMIT_CROSS, loose).passed


def test_validation_blocks_a_poor_risk_reward() -> None:
    v = validate(
        snapshot(signal(), context(), NOW_NS), 1, synthesis(), EntryMode.LIMIT_CROSS, ValidationConfig()
    )
    assert v.reasons == ("risk/reward 0.279412 < 1.2",)
    lenient = dataclasses.replace(ValidationConfig(), min_risk_reward=D("0.25"))
    assert validate(
        snapshot(signal(), context(), NOW_NS), 1, synthesis(), EntryMode.LIMIT_CROSS, lenient
    ).passed


def test_validation_blocks_low_conviction_a_zero_size_and_no_stop_together() -> None:
    snap = snapshot(signal(), context(trend_bars(10)), NOW_NS)
    v = validate(snap, 1, synthesis(0.4, "0"), EntryMode.LIMIT_CROSS, UNCAPPED)
    assert v.reasons == (
        "no stop: 10 bar(s), ATR(14) needs 15",
        "conviction 0.4000 < 0.5",
        "the synthesis sized the trade to 0",
    )


def test_sizing_risks_the_configured_share_of_equity_at_the_stop() -> None:
    wide = SizingConfig(risk_per_trade=D("0.005"), max_notional_share=D("1"))  # all of the equity
    s = risk_size(D("100000"), D("65000"), D("63500"), D("1"), INSTRUMENT, wide, D(0))
    assert not isinstance(s, str)
    assert s.risk_amount == D("500.000")
    assert s.size == D("0.333")  # 500 / 1500 = 0.3333... rounded down to the 0.001 lot
    assert not s.capped
    s = risk_size(D("100000"), D("65000"), D("63500"), D("1.5"), INSTRUMENT, wide, D(0))
    assert not isinstance(s, str) and s.size == D("0.500")


def test_the_loss_sized_at_the_stop_counts_its_round_trips_fees() -> None:
    wide = SizingConfig(risk_per_trade=D("0.005"), max_notional_share=D("1"))  # all of the equity
    # 1500 to the stop and 500 of fees there: the loss at the stop is 2000 a unit, not 1500
    s = risk_size(D("100000"), D("65000"), D("63500"), D("1"), INSTRUMENT, wide, D("500"))
    assert not isinstance(s, str)
    assert (s.stop_distance, s.stop_fees, s.size) == (D("1500"), D("500"), D("0.250"))  # 500 / 2000


def test_sizing_is_capped_at_the_notional_share() -> None:
    s = risk_size(D("100000"), D("65000"), D("64850"), D("1"), INSTRUMENT, SizingConfig(), D(0))
    assert not isinstance(s, str)
    assert s.capped
    assert s.size == D("0.384")  # 25000 / 65000 = 0.38461...


def test_sizing_refuses_sizes_under_the_minimum() -> None:
    assert risk_size(D("10"), D("65000"), D("64850"), D("1"), INSTRUMENT, SizingConfig(), D(0)) == (
        "size 0 is under the minimum 0.001"
    )
    assert risk_size(None, D("65000"), D("64850"), D("1"), INSTRUMENT, SizingConfig(), D(0)) == (
        "no equity to size from (none)"
    )


def test_a_contract_size_divides_the_size() -> None:
    tenth = dataclasses.replace(INSTRUMENT, contract_size=D("0.1"), kind=InstrumentKind.PERPETUAL)
    wide = SizingConfig(max_notional_share=D("1"))
    s = risk_size(D("100000"), D("65000"), D("63500"), D("1"), tenth, wide, D(0))
    assert not isinstance(s, str) and s.size == D("3.333")  # 500 / (1500 x 0.1)


def test_an_open_intent_carries_the_plan_the_size_and_an_expiry() -> None:
    snap = snapshot(signal(), context(), NOW_NS)
    v = validate(snap, 1, synthesis(), EntryMode.LIMIT_CROSS, UNCAPPED)
    assert v.plan is not None
    s = risk_size(snap.equity, v.plan.entry, v.plan.stop, D("1"), INSTRUMENT, SizingConfig(), D(0))
    assert not isinstance(s, str)
    intent = open_intent("dec-1", signal(), 1, v.plan, s, 0.7, IntentConfig(), NOW_NS)
    assert (intent.side, intent.entry_type, intent.entry_price) == (Side.BUY, OrderType.LIMIT, D("102.01"))
    assert (intent.stop_loss, intent.take_profit) == (D("101.33"), D("103.13"))
    assert intent.size == D("245.074")  # capped: 25000 / 102.01
    assert intent.time_in_force is TimeInForce.GTC
    assert intent.expires_ns == NOW_NS + 60_000_000_000
    assert (intent.decision_id, intent.signal_id) == ("dec-1", "sig-1")
    market = open_intent("dec-1", signal(), 1, v.plan, s, 0.7, IntentConfig(entry=EntryMode.MARKET), NOW_NS)
    assert (market.entry_type, market.entry_price, market.time_in_force) == (
        OrderType.MARKET,
        None,
        TimeInForce.IOC,
    )


@pytest.mark.parametrize(("position", "side"), [(D("0.5"), Side.SELL), (D("-2"), Side.BUY)])
def test_a_close_intent_takes_off_the_whole_position(position: Decimal, side: Side) -> None:
    intent = close_intent("dec-2", signal(Direction.FLAT), position, IntentConfig(), NOW_NS)
    assert (intent.side, intent.size, intent.reduce_only) == (side, abs(position), True)
    assert (intent.entry_type, intent.stop_loss, intent.take_profit) == (OrderType.MARKET, None, None)


@pytest.mark.parametrize("share", ["0", "1.01", "2", "10"])
def test_the_notional_cap_is_a_share_of_equity(share: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        SizingConfig(max_notional_share=D(share))
    assert [v.field for v in caught.value.violations] == ["sizing.max_notional_share"]
    assert SizingConfig(max_notional_share=D("1")).max_notional_share == 1
