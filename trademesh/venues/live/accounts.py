"""A live venue's account (docs/accounts.md): the exchange's spec under the account's venue name
("binance.desk-a"), so its credentials, its orders and its executions are the account's."""

from __future__ import annotations

import dataclasses

from trademesh.core.domain.accounts import account_venue
from trademesh.core.platform.config.env import read_secret, venue_variable
from trademesh.core.platform.errors import InvalidArgument
from trademesh.venues.live.spec import LiveSpec

__all__ = ["account_spec"]

# What an account cannot trade without: an account runs to trade (a plain venue streams market
# data without credentials, an account's instance is refused at start instead).
_REQUIRED = ("API_KEY", "API_SECRET")


def account_spec(spec: LiveSpec, account: str | None) -> LiveSpec:
    """`spec` as the account's venue; InvalidArgument naming the variables looked for (never a
    value) when the account's credentials are not all set."""
    if account is None:
        return spec
    name = account_venue(spec.name, account)
    wanted = [venue_variable(name, field) for field in _REQUIRED]
    missing = [variable for variable in wanted if read_secret(variable) is None]
    if missing:
        raise InvalidArgument.field(
            "account",
            f"account {account} at {spec.name} has no credentials: looked for {' and '.join(wanted)}; "
            f"not set: {', '.join(missing)}",
        )
    return dataclasses.replace(spec, name=name)
