"""The sim config's margin keys (trademesh/core/domain/matching/config.py): leverage, margin_mode,
liquidation_fee_rate and a perpetual's own brackets, read into the engine's MarginTerms; bad ones
refused naming the key."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from trademesh.core.domain.matching.config import margin_terms
from trademesh.core.domain.model import MarginMode
from trademesh.core.platform.errors import InvalidArgument
from trademesh.venues.sim.config import SimConfig, load_config

D = Decimal
PERP = """
[[symbols]]
symbol = "BTC/USDT:USDT"
start_price = "100"
tick_size = "0.1"
lot_size = "0.001"
"""

TIER = '[[symbols.brackets]]\nnotional_cap = "{cap}"\nmax_leverage = "10"\nmaintenance_margin_rate = "0.05"\n'


def read(tmp_path: Path, text: str) -> SimConfig:
    path = tmp_path / "sim.toml"
    path.write_text(text)
    return load_config(path)


def test_the_defaults_are_1x_cross_and_binances_brackets(tmp_path: Path) -> None:
    terms = margin_terms(read(tmp_path, PERP))
    assert (terms.leverage, terms.mode, terms.liquidation_fee_rate, dict(terms.brackets)) == (
        D(1),
        MarginMode.CROSS,
        D("0.002"),
        {},
    )


def test_a_perpetuals_own_brackets(tmp_path: Path) -> None:
    text = (
        'leverage = "20"\nmargin_mode = "isolated"\nliquidation_fee_rate = "0.005"\n'
        + PERP
        + """
[[symbols.brackets]]
notional_cap = "10000"
max_leverage = "50"
maintenance_margin_rate = "0.01"
[[symbols.brackets]]
notional_cap = "0"
max_leverage = "10"
maintenance_margin_rate = "0.05"
"""
    )
    terms = margin_terms(read(tmp_path, text))
    assert (terms.leverage, terms.mode, terms.liquidation_fee_rate) == (
        D(20),
        MarginMode.ISOLATED,
        D("0.005"),
    )
    brackets = terms.brackets["BTC/USDT:USDT"]
    # tier 2's amount: 10,000 x (5 % - 1 %) = 400
    assert [(t.cap, t.max_leverage, t.rate, t.amount) for t in brackets.tiers] == [
        (D(10000), D(50), D("0.01"), D(0)),
        (None, D(10), D("0.05"), D(400)),
    ]


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ('leverage = "200"\n' + PERP, "leverage"),
        ('margin_mode = "portfolio"\n' + PERP, "margin_mode"),
        ('liquidation_fee_rate = "0.5"\n' + PERP, "liquidation_fee_rate"),
        (
            PERP.replace('symbol = "BTC/USDT:USDT"', 'symbol = "BTC/USDT"') + TIER.format(cap=0),
            "brackets",
        ),
        (
            PERP + TIER.format(cap=100),  # the last tier has a cap
            "brackets",
        ),
    ],
)
def test_bad_margin_keys_are_refused_naming_them(tmp_path: Path, text: str, says: str) -> None:
    with pytest.raises(InvalidArgument, match=says):
        read(tmp_path, text)
