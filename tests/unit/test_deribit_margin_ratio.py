"""Deribit's margin ratio is the account's (trademesh/venues/deribit/margin.py): private/get_account_summary's
maintenance_margin / margin_balance, as ccxt hands its JSON numbers over (floats), given to each
cross position of the coin that carries none (trademesh/venues/live/margin.py, with_account_ratios)."""

from __future__ import annotations

from decimal import Decimal

from trademesh.core.domain.model import MarginMode, Position, PositionMargin
from trademesh.venues.deribit.margin import summary_ratio
from trademesh.venues.live.margin import cross_without_ratio, with_account_ratios

D = Decimal


def test_the_ratio_is_the_summarys_maintenance_margin_over_its_margin_balance() -> None:
    summary = {"currency": "BTC", "equity": 1.23, "margin_balance": 1.25, "maintenance_margin": 0.30015}
    assert summary_ratio(summary) == D("0.24012")


def test_no_ratio_without_both_figures_or_a_positive_balance() -> None:
    assert summary_ratio({"maintenance_margin": 0.3}) is None
    assert summary_ratio({"margin_balance": 1.2}) is None
    assert summary_ratio({"maintenance_margin": 0.3, "margin_balance": 0}) is None
    assert summary_ratio({"maintenance_margin": 0.3, "margin_balance": -0.1}) is None


def _position(symbol: str, settle: str, mode: MarginMode, ratio: Decimal | None) -> Position:
    margin = PositionMargin(settle_asset=settle, mode=mode, margin_ratio=ratio)
    return Position(symbol, D(10), D(100), margin=margin)


def test_only_cross_positions_without_a_ratio_take_their_coins() -> None:
    positions = [
        _position("BTC/USD:BTC", "BTC", MarginMode.CROSS, None),
        _position("ETH/USD:ETH", "ETH", MarginMode.CROSS, None),
        _position("BTC-X", "BTC", MarginMode.ISOLATED, None),
        _position("BTC-Y", "BTC", MarginMode.CROSS, D("0.5")),
        Position("BTC/USDC", D(1), D(100)),
    ]
    assert cross_without_ratio(positions) == {"BTC", "ETH"}
    given = with_account_ratios(positions, {"BTC": D("0.2")})
    ratios = [p.margin.margin_ratio if p.margin else None for p in given]
    assert ratios == [D("0.2"), None, None, D("0.5"), None]
