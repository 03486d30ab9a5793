"""One policy limit as the inspector's policy TOML: `loss.max_drawdown` = 0.09 as
`[loss]\\nmax_drawdown = "0.09"\\n`, a venue's, symbol's or strategy's key with its name quoted
(`account.venues.binance.desk-a.max_gross`: a venue name may hold dots). Only the shape is
checked here; the inspector decides whether the key is a limit it knows and whether the change
tightens (UpdatePolicies tighten_only, docs/inspector.md)."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from trademesh.core.domain.decimals import format_decimal
from trademesh.core.platform.errors import InvalidArgument, shown

__all__ = ["limit_toml"]

_MAX_KEY = 160
# A named limit: the table, the name (quoted in the TOML), the key.
_NAMED = re.compile(r"(account\.venues|position\.symbols)\.([^\"\\\s]+)\.(max_[a-z_]+)")
_CAPITAL = re.compile(r"capital\.reserved\.([a-z0-9][a-z0-9_-]{0,63})")
_PLAIN = re.compile(r"([a-z_]+)\.([a-z_]+)")
# Keys counted in whole units (TOML integers); the last two are no limits, but the inspector
# should be the one to say so.
_WHOLE = frozenset(
    {
        "loss.max_loss_streak", "orders.max_open", "rate.max_per_venue", "rate.max_per_strategy",
        "rate.window_ms", "loss.cooldown_after_loss_ms",
    }
)  # fmt: skip


def limit_toml(policy: str, limit: str) -> str:
    """The TOML that sets `policy` to `limit` alone (InvalidArgument naming `policy` or `limit`)."""
    value = _value(policy, limit)
    if len(policy) <= _MAX_KEY and (named := _NAMED.fullmatch(policy)) is not None:
        table, name, key = named.groups()
        return f'[{table}."{name}"]\n{key} = {value}\n'
    if (capital := _CAPITAL.fullmatch(policy)) is not None:
        return f'[capital.reserved]\n"{capital.group(1)}" = {value}\n'
    if (plain := _PLAIN.fullmatch(policy)) is not None:
        return f"[{plain.group(1)}]\n{plain.group(2)} = {value}\n"
    raise InvalidArgument.field(
        "policy",
        f"{shown(policy)} is not a policy limit such as loss.max_drawdown, "
        "capital.reserved.<strategy> or account.venues.<venue>.max_gross",
    )


def _value(policy: str, limit: str) -> str:
    try:
        value = Decimal(limit)
    except (InvalidOperation, TypeError, ValueError):
        value = Decimal(-1)
    if not value.is_finite() or value <= 0 or len(limit) > 40:
        raise InvalidArgument.field("limit", f"{shown(str(limit))} is not a decimal above 0")
    if policy in _WHOLE:
        if value != value.to_integral_value():
            raise InvalidArgument.field("limit", f"{policy} is a whole number, got {shown(limit)}")
        return str(int(value))
    return f'"{format_decimal(value)}"'
