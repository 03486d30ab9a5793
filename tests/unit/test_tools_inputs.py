"""trademesh.core.tools.inputs.account_venue: the `account` tool's venue name, and its refusals naming the
argument (docs/accounts.md: an account's venue is `<exchange>.<account>`)."""

from __future__ import annotations

import pytest

from trademesh.core.platform.errors import InvalidArgument
from trademesh.core.tools.inputs import account_venue


@pytest.mark.parametrize(
    ("venue", "account", "name"),
    [("binance", None, "binance"), ("binance", "", "binance"), ("binance", "desk-a", "binance.desk-a"),
     ("binance.desk-a", None, "binance.desk-a"), ("okx-swap", "7", "okx-swap.7")],
)  # fmt: skip
def test_the_venue_of_an_account(venue: str, account: str | None, name: str) -> None:
    assert account_venue(venue, account) == name


@pytest.mark.parametrize(
    ("venue", "account", "said"),
    [
        ("binance", "Desk_A", "'Desk_A' is not an account name"),
        ("binance", "desk.a", "'desk.a' is not an account name"),
        ("binance", "-a", "'-a' is not an account name"),
        ("binance", "a" * 25, "is not an account name"),
        ("binance.desk-a", "desk-b", "'desk-b' given, but the venue 'binance.desk-a' names its account"),
    ],
)
def test_a_bad_account_is_refused_naming_the_argument(venue: str, account: str, said: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        account_venue(venue, account)
    assert said in str(refused.value)
    assert [v.field for v in refused.value.violations] == ["account"]
