"""The inspector's limits an intent is sized within (issue 57 item 4; docs/advisor.md, "Within
the inspector's limits"): an intent the inspector is certain to block for its size is not worth
sending. The shell reads the inspector's policies (Inspector.GetPolicies) and hands the limits to
the core as an input (`AdvisorCore.on_limits`); stage 8 caps the size so that

    order notional    = size x entry                                  <= orders.max_notional
    position notional = (held on the intent's side + working entries of that side + size) x entry
                                                                      <= position.max_notional

each with `HEADROOM` kept (the inspector values the position at the mark when it checks, after
the decision). Nothing left under the instrument's minimum blocks the decision at stage 8 with
the policy named. Notionals are valued as the instrument values them (Instrument.notional).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from trademesh.core.advisor.engine.context import Context
from trademesh.core.domain.decimals import WIDE, format_decimal
from trademesh.core.domain.model import Instrument, Side

__all__ = ["HEADROOM", "LimitCap", "RiskLimits", "cap_size", "describe", "held_on_side", "limits_from_status"]

# The share of a limit left free: the mark the inspector values at may be above the entry.
HEADROOM = Decimal("0.01")
ORDER_KEY = "orders.max_notional"
POSITION_KEY = "position.max_notional"


@dataclass(frozen=True, slots=True)
class RiskLimits:
    """The inspector's limits on one intent's notional (None: no such limit)."""

    max_order_notional: Decimal | None = None
    max_position_notional: Decimal | None = None


@dataclass(frozen=True, slots=True)
class LimitCap:
    """A size cut by a limit: which, the limit, what the market already holds or works on the
    intent's side (in its notional at the entry), and the size left."""

    key: str
    limit: Decimal
    held_notional: Decimal
    size: Decimal


def limits_from_status(limits: Mapping[str, str]) -> RiskLimits:
    """The limits of GetPolicies' status (policy key -> limit as a decimal string)."""
    return RiskLimits(_decimal(limits.get(ORDER_KEY)), _decimal(limits.get(POSITION_KEY)))


def _decimal(text: str | None) -> Decimal | None:
    if text is None or text == "":
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None
    return value if value.is_finite() and value >= 0 else None


def cap_size(
    size: Decimal, entry: Decimal, held: Decimal, instrument: Instrument, limits: RiskLimits
) -> LimitCap | None:
    """The size the limits leave (rounded down to the lot), or None when they leave `size` whole.
    `held`: the size already held or working on the intent's side (0 or more)."""
    unit = instrument.notional(Decimal(1), entry)
    if unit <= 0:
        return None
    caps = []
    if limits.max_order_notional is not None:
        caps.append((ORDER_KEY, limits.max_order_notional, Decimal(0)))
    if limits.max_position_notional is not None:
        caps.append((POSITION_KEY, limits.max_position_notional, held * unit))
    found: LimitCap | None = None
    for key, limit, held_notional in caps:
        room = limit * (1 - HEADROOM) - held_notional
        allowed = _floor_to(max(WIDE.divide(room, unit), Decimal(0)), instrument.lot_size)
        if allowed < size and (found is None or allowed < found.size):
            found = LimitCap(key, limit, held_notional, allowed)
    return found


def held_on_side(context: Context, sign: int) -> Decimal:
    """What the market holds and works on the intent's side (sign 1 long, -1 short): the position
    that way and the remaining size of the open orders of that side. An open order of the side
    may be a short's protective buy (the context does not say reduce-only): counted all the same,
    as the inspector counts an entry's worst case."""
    side = Side.BUY if sign > 0 else Side.SELL
    position = max(context.position_size() * sign, Decimal(0))
    working = sum((o.remaining for o in context.open_orders if o.side is side), Decimal(0))
    return position + working


def describe(cap: LimitCap) -> str:
    """Why no size is left: the policy named, as the inspector would block it."""
    held = "" if cap.held_notional == 0 else f" with {format_decimal(cap.held_notional)} held or working"
    return f"the inspector's {cap.key} {format_decimal(cap.limit)} leaves no room{held}"


def _floor_to(value: Decimal, step: Decimal) -> Decimal:
    return WIDE.multiply(WIDE.divide_int(value, step), step) if step > 0 else value
