"""A protective order's price on the venue's tick grid (trademesh.core.inspector.grid): rounded away from
the market, so never worse than planned; a price on the grid is left as it is."""

from __future__ import annotations

from decimal import Decimal

import pytest

from trademesh.core.domain.model import Side
from trademesh.core.inspector.grid import on_grid


@pytest.mark.parametrize(
    ("price", "tick", "side", "expected"),
    [
        ("67608.528", "0.01", Side.SELL, "67608.53"),
        ("67608.528", "0.01", Side.BUY, "67608.52"),
        ("62399.992", "0.5", Side.SELL, "62400.0"),
        ("62399.992", "0.5", Side.BUY, "62399.5"),
        ("65000.10", "0.01", Side.SELL, "65000.10"),
        ("65000.1", "0", Side.BUY, "65000.1"),
    ],
)
def test_a_price_goes_on_the_grid_away_from_the_market(
    price: str, tick: str, side: Side, expected: str
) -> None:
    rounded = on_grid(Decimal(price), Decimal(tick), side)
    assert rounded == Decimal(expected) and str(rounded) == expected
