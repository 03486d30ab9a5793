"""What changed between two policy sets, key by key ("position.symbols.BTC/USDT.max_size"):
every policy change is a recorded risk event naming its changes, a limit turned off as `off`."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, fields, is_dataclass
from decimal import Decimal
from typing import Any

from trademesh.core.inspector.engine.policies import PolicySet

__all__ = ["OFF", "PolicyChange", "describe_changes", "diff_policies", "flatten_policies", "loosenings"]

# A key not set: its limit is not enforced.
OFF = "off"


@dataclass(frozen=True)
class PolicyChange:
    key: str
    old: str  # OFF when the key was not set (an unset limit is not enforced)
    new: str


def _text(value: Any) -> str:
    if value is None:
        return OFF
    if isinstance(value, tuple):
        return ", ".join(str(v) for v in value) or "none"  # a weekday without windows: closed
    return str(value)


def _flatten(prefix: str, value: Any, out: dict[str, str]) -> None:
    if is_dataclass(value) and not isinstance(value, type):
        for f in fields(value):
            _flatten(f"{prefix}.{f.name}" if prefix else f.name, getattr(value, f.name), out)
    elif isinstance(value, Mapping):
        for key in sorted(value):
            _flatten(f"{prefix}.{key}", value[key], out)
    else:
        out[prefix] = _text(value)


def flatten_policies(policies: PolicySet) -> dict[str, str]:
    """Every key of the set with its value as text (nested maps by their keys)."""
    out: dict[str, str] = {}
    _flatten("", policies, out)
    return out


def diff_policies(old: PolicySet, new: PolicySet) -> tuple[PolicyChange, ...]:
    """The keys whose value differs, sorted by key; empty when the sets are equal."""
    before, after = flatten_policies(old), flatten_policies(new)
    keys = sorted(set(before) | set(after))
    return tuple(
        PolicyChange(key, before.get(key, OFF), after.get(key, OFF))
        for key in keys
        if before.get(key, OFF) != after.get(key, OFF)
    )


def describe_changes(changes: tuple[PolicyChange, ...]) -> str:
    """The POLICY_CHANGE event's reason: how many keys changed, and each limit turned off."""
    removed = [c.key for c in changes if c.new == OFF]
    said = f"{len(changes)} policy keys changed"
    return f"{said}; turned off: {', '.join(removed)}" if removed else said


# The limits a lower value tightens: the keys of the policy status (GetPolicies), each
# strategy's reserved capital, each symbol's own position limits. A venue or symbol name may hold
# dots ("binance.desk-a"), so the middle parts match anything but the last key.
_TIGHTENED_BY_LOWER = re.compile(
    r"loss\.max_(daily_)?drawdown|loss\.max_loss_streak|exposure\.max_(gross|net)"
    r"|orders\.(max_open|max_notional|price_band)|position\.(max_size|max_notional)"
    r"|rate\.max_per_(venue|strategy)|account\.venues\..+\.max_gross|capital\.reserved\..+"
    r"|position\.symbols\..+\.max_(size|notional)"
    r"|leverage\.max(_overall)?|leverage\.symbols\..+\.max|margin\.max_use"
)
# The limits a higher value tightens (a position must stay further from its liquidation; a
# reduction takes more of it).
_TIGHTENED_BY_HIGHER = re.compile(r"liquidation\.(min_distance_(entry|open)|reduce_fraction)")
# Switches whose one setting is the tighter: a liquidation stands down; a position too near its
# liquidation is closed, not reduced.
_TIGHTER_SETTING = {"liquidation.stand_down": "True", "liquidation.open_action": "close"}


def loosenings(changes: tuple[PolicyChange, ...]) -> list[str]:
    """Each change that does not tighten, with why: a key that is not such a limit, a limit
    turned off, raised (or, for a distance from liquidation, lowered), a switch set to its
    looser setting. Setting a limit that was off tightens."""
    return [why for why in map(_loosens, changes) if why is not None]


def _loosens(change: PolicyChange) -> str | None:
    if change.key in _TIGHTER_SETTING:
        if change.new == _TIGHTER_SETTING[change.key]:
            return None
        return f"{change.key}: {change.old} -> {change.new} does not tighten it"
    higher = _TIGHTENED_BY_HIGHER.fullmatch(change.key) is not None
    if not higher and _TIGHTENED_BY_LOWER.fullmatch(change.key) is None:
        return f"{change.key}: not a limit a tightening may change"
    if change.new == OFF:
        return f"{change.key}: {change.old} -> off turns the limit off"
    if change.old == OFF:
        return None
    old, new = Decimal(change.old), Decimal(change.new)
    if higher and new <= old:
        return f"{change.key}: {change.old} -> {change.new} does not raise it"
    if not higher and new >= old:
        return f"{change.key}: {change.old} -> {change.new} does not lower it"
    return None
