"""What the API shows of the leveraged positions (docs/inspector-orders.md, "Leverage, margin and
liquidation"): each position's leverage, margin ratio, liquidation price and distance and margin
mode as its venue reports them (ListPositions), and the leverage policies' status (GetPolicies).
Pure reads of the core."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from trademesh.core.domain.convert import MARGIN_MODE_TO_PB
from trademesh.core.domain.decimals import format_optional as dec
from trademesh.core.inspector.engine.core import InspectorCore
from trademesh.core.inspector.engine.margin import distance
from trademesh.core.inspector.engine.positions import Key
from trademesh.risk.v1 import inspector_pb2 as rk

__all__ = ["margin_fields", "margin_status"]

ZERO = Decimal(0)
_SHOWN = Decimal("1e-8")


def margin_fields(core: InspectorCore, key: Key) -> dict[str, Any]:
    """PositionView's margin fields of the position at `key` (none when its venue reports no
    margin for it: spot, or a venue without leverage). The distance is taken at the core's
    latest mark, else the venue's."""
    m = core.margin.positions.get(key)
    if m is None:
        return {}
    fields: dict[str, Any] = {
        "leverage": dec(m.leverage),
        "margin_ratio": dec(m.margin_ratio),
        "liquidation_price": dec(m.liquidation_price),
    }
    mark = core.book.marks.get(key) or m.mark_price
    if m.liquidation_price is not None and mark:
        fields["liquidation_distance"] = dec(distance(mark, m.liquidation_price).quantize(_SHOWN))
    if m.mode is not None:
        fields["margin_mode"] = MARGIN_MODE_TO_PB[m.mode]
    return fields


def _held(core: InspectorCore) -> list[Key]:
    """The leveraged markets the core holds a position in."""
    return [
        key
        for key, p in sorted(core.book.positions.positions.items())
        if p.size != 0 and core.margin.leveraged(key, core.instruments.get(key))
    ]


def _row(key: str, limit: Decimal, value: Decimal | None, used: Decimal | None = None) -> rk.PolicyStatus:
    """A policy's status: `used` is value / limit unless given."""
    if used is None and value is not None:
        used = value / limit
    return rk.PolicyStatus(
        key=key,
        limit=dec(limit),
        value="" if value is None else dec(value.quantize(_SHOWN) if value != value.to_integral() else value),
        used="" if used is None else dec(used.quantize(Decimal("0.0001"))),
    )


def _highest_leverage(core: InspectorCore, held: list[Key]) -> Decimal | None:
    return max((core.margin.settings[k] for k in held if k in core.margin.settings), default=None)


def _overall(core: InspectorCore, held: list[Key]) -> Decimal | None:
    book = core.book
    gross = sum((book.value(k, abs(book.positions.size(k)), book.marks.get(k, ZERO)) for k in held), ZERO)
    return gross / core.curve.equity if core.curve.equity > 0 else None


def _highest_use(core: InspectorCore) -> Decimal | None:
    uses = []
    for venue, asset in sorted(core.margin.balances):
        equity = core.margin.equity(venue, asset)
        if equity is not None and equity > 0:
            uses.append(core.margin.held_margin(venue, asset) / equity)
    return max(uses, default=None)


def _nearest(core: InspectorCore, held: list[Key]) -> Decimal | None:
    found = [d for d in (_distance(core, k) for k in held) if d is not None]
    return min(found, default=None)


def margin_status(core: InspectorCore) -> list[rk.PolicyStatus]:
    """The leverage policies that are set, each with its current value: the highest leverage
    held at, the account's leverage, the highest margin use of a venue's settle asset, the
    nearest distance to liquidation (its `used` is limit / value: past 1, it acts)."""
    p, held = core.policies, _held(core)
    rows = []
    if p.leverage.max is not None:
        rows.append(_row("leverage.max", p.leverage.max, _highest_leverage(core, held)))
    if p.leverage.max_overall is not None:
        rows.append(_row("leverage.max_overall", p.leverage.max_overall, _overall(core, held)))
    if p.margin.max_use is not None:
        rows.append(_row("margin.max_use", p.margin.max_use, _highest_use(core)))
    if p.liquidation.min_distance_entry is not None:
        rows.append(_row("liquidation.min_distance_entry", p.liquidation.min_distance_entry, None))
    limit = p.liquidation.min_distance_open
    if limit is not None:
        near = _nearest(core, held)
        rows.append(_row("liquidation.min_distance_open", limit, near, None if not near else limit / near))
    return rows


def _distance(core: InspectorCore, key: Key) -> Decimal | None:
    m = core.margin.positions.get(key)
    mark = core.book.marks.get(key) or (None if m is None else m.mark_price)
    if m is None or m.liquidation_price is None or not mark:
        return None
    return distance(mark, m.liquidation_price)
