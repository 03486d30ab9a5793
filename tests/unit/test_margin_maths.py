"""The margin maths (trademesh/core/domain/matching/margin.py) against hand-computed Binance-style
examples.

Brackets: Binance USD-M BTCUSDT's leverage brackets (0-50k 125x 0.4 %, 50k-250k 100x 0.5 %,
250k-3M 50x 1 %, ...); Binance's maintenance amounts ("cum") are 0, 50, 1,300, 46,300, 421,300,
1,921,300, 3,921,300, 6,421,300, 26,421,300, 101,421,300 USDT, each the one before plus the tier's
floor x its rise in rate: 50,000 x 0.001 = 50, 50 + 250,000 x 0.005 = 1,300, ...

Liquidation price, Binance's isolated formula (its "How to Calculate Liquidation Price of USDⓈ-M
Futures Contracts"): LP = (WB + cum - side x size x EP) / (size x MMR - side x size), WB the
isolated margin.
"""

from __future__ import annotations

from decimal import Decimal, localcontext

import pytest

from trademesh.core.domain.matching.accounts import EXACT
from trademesh.core.domain.matching.margin import (
    BINANCE_BTCUSDT,
    COIN_BTCUSD,
    Brackets,
    Exposure,
    bankruptcy_price,
    fill_price,
    initial_margin,
    liquidated,
    liquidation_price,
    margin_ratio,
)
from trademesh.core.platform.errors import InvalidArgument

D = Decimal
USDM = Brackets(BINANCE_BTCUSDT)
COINM = Brackets(COIN_BTCUSD)


@pytest.fixture(autouse=True)
def _exact() -> object:
    with localcontext(EXACT):
        yield


def test_the_maintenance_amounts_are_binances_cum() -> None:
    assert [tier.amount for tier in USDM.tiers] == [
        D(v) for v in (0, 50, 1300, 46300, 421300, 1921300, 3921300, 6421300, 26421300, 101421300)
    ]
    assert USDM.max_leverage == D(125)
    assert (USDM.cap_at(D(125)), USDM.cap_at(D(20)), USDM.cap_at(D(1))) == (D(50_000), D(15_000_000), None)
    assert (USDM.at(D(49_999)).rate, USDM.at(D(50_000)).rate) == (D("0.004"), D("0.005"))


@pytest.mark.parametrize(
    ("notional", "maintenance"),
    [
        ("40000", "160"),  # 40,000 x 0.4 %
        ("100000", "450"),  # 100,000 x 0.5 % - 50
        ("1000000", "8700"),  # 1,000,000 x 1 % - 1,300
        ("50000", "200"),  # at the floor of tier 2: 250 - 50, as tier 1 gives it (continuous)
    ],
)
def test_maintenance_margin_is_notional_times_the_tier_rate_less_its_amount(
    notional: str, maintenance: str
) -> None:
    assert USDM.maintenance(D(notional)) == D(maintenance)


def test_an_isolated_long_at_10x() -> None:
    # 1 BTC long at 50,000, 10x: initial margin 5,000; LP = (5,000 + 0 - 50,000) / (0.004 - 1)
    # = 45,000 / 0.996 = 45,180.7228915662650602409...; bankrupt where 5,000 is lost: 45,000.
    long = Exposure(D(1), D(50_000))
    assert initial_margin(long.value, D(10)) == D(5000)
    assert liquidation_price(long, D(5000), USDM) == D("45180.722891566265060241")
    assert bankruptcy_price(long, D(5000)) == D(45_000)
    # With a liquidation fee of 0.2 % paid out of the margin too: 45,000 / 0.998 = 45,090.18...
    assert bankruptcy_price(long, D(5000), D("0.002")) == D("45090.180360721442885772")
    assert not liquidated(D(5000), long, USDM, D("45180.8"))
    assert liquidated(D(5000), long, USDM, D("45180.7"))


def test_an_isolated_short_is_liquidated_in_the_tier_its_notional_reaches() -> None:
    # 1 BTC short at 50,000, 10x: tier 1 gives 55,000 / 1.004 = 54,780.88, a notional in tier 2,
    # so tier 2's: (5,000 + 50 + 50,000) / (1 + 0.005) = 55,050 / 1.005 = 54,776.1194029850746...
    short = Exposure(D(-1), D(-50_000))
    assert liquidation_price(short, D(5000), USDM) == D("54776.119402985074626866")
    assert bankruptcy_price(short, D(5000)) == D(55_000)


def test_a_large_long_uses_tier_3() -> None:
    # 10 BTC at 50,000, 20x: margin 25,000; (500,000 - 25,000 - 1,300) / (10 x 0.99) = 47,848.48...
    # (notional 478,484.85: tier 3, 250k-3M at 1 %, amount 1,300).
    exposure = Exposure(D(10), D(500_000))
    assert initial_margin(exposure.value, D(20)) == D(25_000)
    assert liquidation_price(exposure, D(25_000), USDM) == D("47848.484848484848484848")


def test_cross_backs_the_position_with_the_wallet() -> None:
    # Cross with a 10,000 USDT wallet and no other position: the same formula with WB 10,000:
    # 40,000 / 0.996 = 40,160.64; bankrupt at 40,000.
    long = Exposure(D(1), D(50_000))
    assert liquidation_price(long, D(10_000), USDM) == D("40160.642570281124497992")
    assert bankruptcy_price(long, D(10_000)) == D(40_000)


def test_a_fully_funded_long_is_never_liquidated() -> None:
    long = Exposure(D(1), D(50_000))
    assert liquidation_price(long, D(50_000), USDM) is None  # 1x: the price would be 0
    assert bankruptcy_price(long, D(50_000)) is None


def test_an_inverse_long_in_the_coin() -> None:
    # 100 contracts of 10 USD (face 1,000 USD) long at 50,000: worth 0.02 BTC, 10x: 0.002 BTC.
    # Binance COIN-M: LP = (face x MMR + face) / (WB + face / EP + cum)
    # = (4 + 1,000) / (0.002 + 0.02) = 45,636.3636...; bankrupt: 1,000 / 0.022 = 45,454.5454...
    long = Exposure(D(1000), D("0.02"), inverse=True)
    assert initial_margin(long.value, D(10)) == D("0.002")
    assert liquidation_price(long, D("0.002"), COINM) == D("45636.363636363636363636")
    assert bankruptcy_price(long, D("0.002")) == D("45454.545454545454545455")
    # Its PnL at 45,000: 0.02 - 1,000 / 45,000 = 0.02 - 0.022222222222 (to the coin's 1e-12).
    assert long.pnl(D(45_000)) == D("-0.002222222222")
    assert long.notional(D(50_000)) == D("0.02")


def test_an_inverse_short_backed_by_its_whole_worth_cannot_be_liquidated() -> None:
    short = Exposure(D(-1000), D("-0.02"), inverse=True)
    assert liquidation_price(short, D("0.02"), COINM) is None
    assert bankruptcy_price(short, D("0.02")) is None


def test_margin_ratio_and_the_liquidation_fill_price() -> None:
    assert margin_ratio(D(160), D(320)) == D("0.5")
    assert margin_ratio(D(160), D(0)) is None
    # On a 0.1 tick, a long's 45,180.72 is paid at 45,180.8 (the lesser loss), a short's at .7.
    assert fill_price(D("45180.72"), True, D("0.1")) == D("45180.8")
    assert fill_price(D("45180.72"), False, D("0.1")) == D("45180.7")


@pytest.mark.parametrize(
    "tiers",
    [
        [],
        [(D(100), D(10), D("0.01"))],  # the last tier has a cap
        [(D(100), D(10), D("0.01")), (D(50), D(5), D("0.02")), (None, D(1), D("0.5"))],  # falling caps
        [(None, D("0.5"), D("0.01"))],  # below 1x
    ],
)
def test_brackets_that_are_not_tiers_are_refused(
    tiers: list[tuple[Decimal | None, Decimal, Decimal]],
) -> None:
    with pytest.raises(InvalidArgument, match="brackets"):
        Brackets(tiers)
