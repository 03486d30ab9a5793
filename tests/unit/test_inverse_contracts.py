"""Inverse contracts (sized in a USD face value, settled in the coin): the arithmetic
(trademesh/core/domain/inverse.py) and the advisor's sizing in contracts (stage 8), worked by hand."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest

from tests.advisor_support import NOW_NS, context, signal
from trademesh.core.advisor.engine.calibration import Calibration
from trademesh.core.advisor.engine.config import (
    AdvisorConfig,
    SizingConfig,
    SynthesisConfig,
    ValidationConfig,
)
from trademesh.core.advisor.engine.core import AdvisorCore
from trademesh.core.advisor.engine.decision import Decision, Outcome
from trademesh.core.advisor.engine.sizing import risk_size
from trademesh.core.advisor.engine.snapshot import snapshot
from trademesh.core.domain.inverse import coin_fee, coin_pnl, coin_round, coin_value, face_value
from trademesh.core.domain.model import Balance, Instrument, InstrumentKind

D = Decimal
# Deribit's BTC-PERPETUAL as the venue lists it: 1 USD a unit of size, lots of 10.
PERPETUAL = Instrument(
    venue="deribit", symbol="BTC/USD:BTC", native_symbol="BTC-PERPETUAL", kind=InstrumentKind.PERPETUAL,
    base_asset="BTC", quote_asset="USD", settle_asset="BTC", tick_size=D("0.5"), lot_size=D(10),
    min_size=D(10), contract_size=D(0), contract_value=D(1), contract_value_asset="USD",
    maker_fee_rate=D(0), taker_fee_rate=D("0.0005"),
)  # fmt: skip
# OKX's BTC-USD-SWAP: contracts of 100 USD, lots of 1.
SWAP = dataclasses.replace(
    PERPETUAL, venue="okx-swap", native_symbol="BTC-USD-SWAP", tick_size=D("0.1"), lot_size=D(1),
    min_size=D(1), contract_value=D(100),
)  # fmt: skip


def test_a_contract_is_worth_its_face_value_in_the_quote_whatever_the_price() -> None:
    assert PERPETUAL.inverse and SWAP.inverse
    assert face_value(D(3), D(100)) == D(300)
    assert SWAP.notional(D(3), D(50000)) == D(300) == SWAP.notional(D(3), D(20000))
    # 300 USD is 0.006 BTC at 50,000 and 0.015 at 20,000
    assert coin_value(D(300), D(50000)) == D("0.006")
    assert coin_value(D(300), D(20000)) == D("0.015")


def test_the_coin_pnl_is_contracts_times_value_times_the_difference_of_the_inverse_prices() -> None:
    # 3 contracts of 100 USD long from 50,000 to 60,000: 300 x (1/50000 - 1/60000) = 0.001 BTC
    assert coin_pnl(D(3) * D(100), D(50000), D(60000)) == D("0.001")
    # the short loses the same
    assert coin_pnl(D(-300), D(50000), D(60000)) == D("-0.001")
    # and a long that falls as much in price loses more coin than it gained: 300 x (1/50000 - 1/40000)
    assert coin_pnl(D(300), D(50000), D(40000)) == D("-0.0015")


def test_a_division_without_an_exact_decimal_is_rounded_half_even_to_a_trillionth() -> None:
    # 1000 x (1/30000 - 1/31000) = 1/930 = 0.001075268817204301...
    assert coin_pnl(D(1000), D(30000), D(31000)) == D("0.001075268817")
    assert coin_value(D(10), D(3)) == D("3.333333333333")
    assert coin_round(D("0.0000000000005")) == D(0)  # half to even: 0
    assert coin_round(D("0.0000000000015")) == D("0.000000000002")
    assert str(coin_round(D("100.000"))) == "100"
    with pytest.raises(ValueError):
        coin_value(D(10), D(0))


def test_a_fee_is_the_rate_of_the_coin_value() -> None:
    # 18,000 USD at 60,000 is 0.3 BTC; Deribit's taker 0.05% of it: 0.00015 BTC
    assert coin_fee(D(18000), D(60000), D("0.0005")) == D("0.00015")
    assert coin_fee(D(-18000), D(60000), D("0.0005")) == D("0.00015")  # a sell pays too


def test_the_advisor_sizes_an_inverse_perpetual_in_contracts_on_the_coins_equity() -> None:
    wide = SizingConfig(risk_per_trade=D("0.005"), max_notional_share=D(1))
    # 1.5 BTC x 0.5% = 0.0075 BTC at risk; a contract (1 USD) loses 1000 / (50000 x 49000)
    # BTC at the stop: 0.0075 x 2,450,000 = 18,375 contracts, down to the lot of 10
    s = risk_size(D("1.5"), D(50000), D(49000), D(1), PERPETUAL, wide, D(0))
    assert not isinstance(s, str)
    assert (s.risk_amount, s.risk_size, s.size, s.capped) == (D("0.0075"), D(18375), D(18370), False)
    # the loss at the stop in the coin stays within the risk
    assert -coin_pnl(s.size, D(50000), D(49000)) <= s.risk_amount


def test_inverse_sizing_counts_the_stops_fees_and_is_capped_in_the_coin() -> None:
    wide = SizingConfig(risk_per_trade=D("0.005"), max_notional_share=D(1))
    # 500 of fees per unit at the stop: 1500 / (50000 x 49000) a contract: 12,250
    s = risk_size(D("1.5"), D(50000), D(49000), D(1), PERPETUAL, wide, D(500))
    assert not isinstance(s, str) and s.size == D(12250)
    # a 20% cap: 1.5 x 0.2 BTC of face at 50,000 is 15,000 USD
    capped = risk_size(
        D("1.5"), D(50000), D(49000), D(1), PERPETUAL, SizingConfig(max_notional_share=D("0.2")), D(0)
    )
    assert not isinstance(capped, str) and capped.capped and capped.size == D(15000)
    # OKX's contracts of 100 USD: 18,375 USD is 183.75 contracts, 183 on the lot
    okx = risk_size(D("1.5"), D(50000), D(49000), D(1), SWAP, wide, D(0))
    assert not isinstance(okx, str) and okx.size == D(183)


def test_inverse_sizing_gives_the_whole_lot_the_rule_gives_exactly() -> None:
    # 0.03 BTC capped at half is 0.015 BTC of face at 60,000: 900 USD, 90 of Deribit's lots.
    # 1/60000 has no exact decimal: a cap divided by a contract's rounded worth came out a hair
    # under 900, and the floor to the lot made it 890.
    half = SizingConfig(risk_per_trade=D("0.1"), max_notional_share=D("0.5"))
    capped = risk_size(D("0.03"), D(60000), D(55000), D(1), PERPETUAL, half, D(0))
    assert not isinstance(capped, str)
    assert (capped.cap_size, capped.capped, capped.size) == (D(900), True, D(900))
    # by risk too: 0.0015 BTC at risk, a contract losing 5000 / (60000 x 55000) BTC, x 1.1:
    # 0.0015 x 660,000 x 1.1 = 1,089 contracts, 1,080 on the lot (under the cap of 1,800)
    wide = SizingConfig(risk_per_trade=D("0.05"), max_notional_share=D(1))
    s = risk_size(D("0.03"), D(60000), D(55000), D("1.1"), PERPETUAL, wide, D(0))
    assert not isinstance(s, str) and (s.risk_size, s.capped, s.size) == (D(1089), False, D(1080))
    # 1.5 BTC, 1e-6 of it at risk, a long at 91,250 with its stop at 91,242, x 1.21 (the
    # replayed chain's, tests/integration/test_inverse_advisor_chain.py): 1,888.9232484375
    tiny = SizingConfig(risk_per_trade=D("0.000001"), max_notional_share=D("0.05"))
    chain = risk_size(D("1.5"), D(91250), D(91242), D("1.21"), PERPETUAL, tiny, D(0))
    assert not isinstance(chain, str)
    assert (chain.risk_size, chain.cap_size, chain.size) == (D("1888.9232484375"), D("6843.75"), D(1880))


def test_inverse_sizing_refuses_a_size_under_the_minimum() -> None:
    assert risk_size(D("0.0001"), D(50000), D(49000), D(1), PERPETUAL, SizingConfig(), D(0)) == (
        "size 0 is under the minimum 10"
    )


def test_the_context_sizes_an_inverse_contract_on_the_settlement_coins_balance() -> None:
    balances = (Balance("BTC", D("1.5")), Balance("USDT", D("100000")))
    ctx = context(venue="deribit", symbol="BTC/USD:BTC", instrument=PERPETUAL, balances=balances)
    assert ctx.sizing_equity() == D("1.5") and ctx.quote_equity() == D(0)
    sig = dataclasses.replace(signal(), venue="deribit", symbol="BTC/USD:BTC")
    assert snapshot(sig, ctx, NOW_NS).equity == D("1.5")
    # mark-to-market equity in the quote (a backtest's account) is valued in the coin at the price
    assert dataclasses.replace(ctx, equity=D(75000), price=D(50000)).sizing_equity() == D("1.5")


def test_a_signal_on_an_inverse_perpetual_becomes_an_intent_in_contracts() -> None:
    config = AdvisorConfig(
        validation=ValidationConfig(cap_target_at_swing=False), synthesis=SynthesisConfig(llm_enabled=False),
        sizing=SizingConfig(max_notional_share=D(1)),
    )  # fmt: skip
    free = dataclasses.replace(PERPETUAL, tick_size=D("0.01"), taker_fee_rate=D(0))
    balances = (Balance("BTC", D("1.5")),)
    ctx = context(venue="deribit", symbol="BTC/USD:BTC", instrument=free, balances=balances)
    sig = dataclasses.replace(signal(), venue="deribit", symbol="BTC/USD:BTC")
    d = AdvisorCore(config, None, Calibration.identity()).on_signal(sig, ctx, NOW_NS)
    assert isinstance(d, Decision) and d.outcome is Outcome.INTENT and d.intent is not None
    # long at 102.01, stop 101.33: 0.0075 BTC at risk / (0.68 / (102.01 x 101.33)) = 114.007...
    # contracts of 1 USD, times the synthesis's multiplier (1.5 here); capped at all of the
    # equity's worth, 1.5 x 102.01 = 153.015 USD: 150 on the lot of 10
    assert (d.intent.entry_price, d.intent.stop_loss) == (D("102.01"), D("101.33"))
    sizing = d.sizing
    assert sizing is not None and sizing.multiplier == D("1.5")
    assert (sizing.risk_size / sizing.multiplier).quantize(D("0.001")) == D("114.007")
    assert (sizing.cap_size, sizing.capped, d.intent.size) == (D("153.015"), True, D(150))
