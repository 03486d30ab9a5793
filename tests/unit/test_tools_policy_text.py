"""One policy limit as the inspector's TOML (trademesh.core.tools.policy_text), read back by the inspector's
own policy reader over the shipped set: the key lands where its name says."""

from __future__ import annotations

from decimal import Decimal

import pytest

from trademesh.core.inspector.engine.diff import diff_policies
from trademesh.core.inspector.engine.policy_file import read_policies
from trademesh.core.inspector.shipped import shipped_policies
from trademesh.core.platform.errors import InvalidArgument
from trademesh.core.tools.policy_text import limit_toml


@pytest.mark.parametrize(
    ("policy", "limit", "changed"),
    [
        ("loss.max_drawdown", "0.08", "0.08"),
        ("orders.max_open", "12", "12"),
        ("account.venues.binance.desk-a.max_gross", "5000.50", "5000.50"),
        ("capital.reserved.trend", "800", "800"),
        ("position.symbols.BTC/USDT:USDT.max_size", "0.5", "0.5"),
    ],
)
def test_the_limit_is_set_under_its_key_and_nothing_else(policy: str, limit: str, changed: str) -> None:
    base = shipped_policies()
    changes = diff_policies(base, read_policies(limit_toml(policy, limit), base).policies)
    assert [(c.key, Decimal(c.new)) for c in changes] == [(policy, Decimal(changed))]


@pytest.mark.parametrize(
    ("policy", "limit", "field"),
    [
        ("loss.max_drawdown", "-1", "limit"),
        ("loss.max_drawdown", "NaN", "limit"),
        ("orders.max_open", "2.5", "limit"),
        ('account.venues.a"b.max_gross', "1", "policy"),
        ("Loss.Max", "1", "policy"),
        ("loss", "1", "policy"),
    ],
)
def test_a_bad_key_or_value_is_named(policy: str, limit: str, field: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        limit_toml(policy, limit)
    assert [v.field for v in caught.value.violations] == [field]
