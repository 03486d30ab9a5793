"""liquidation.min_distance_open: a held position the venue says is nearer its liquidation price
than the policy's distance (at the latest mark) is reduced by liquidation.reduce_fraction, or
closed (open_action), by a reduce-only market order, once per approach: the next reduction
waits until the position has been back beyond the distance (a reduction of an isolated position
leaves its liquidation price where it was; reduced at every mark, it would be sold off to
nothing). Pure."""

from __future__ import annotations

from decimal import Decimal

from trademesh.core.domain.decimals import format_decimal as text
from trademesh.core.inspector.engine.actions import PlaceOrder
from trademesh.core.inspector.engine.book import RiskBook
from trademesh.core.inspector.engine.margin import MarginBook, distance
from trademesh.core.inspector.engine.margin_policies import LiquidationPolicy
from trademesh.core.inspector.engine.orders import reduce_order
from trademesh.core.inspector.engine.positions import Key

__all__ = ["near_liquidation"]

_SHOWN = Decimal("1e-8")
Found = tuple[PlaceOrder, tuple[tuple[str, str], ...], str]


def near_liquidation(
    policy: LiquidationPolicy, margin: MarginBook, book: RiskBook, key: Key, now_ns: int
) -> Found | None:
    """The order reducing the position, the values and the reason of its REDUCE event; None
    when nothing is to be done. Marks the position reduced (`margin.reduced`) until it is back
    beyond the distance, or flat."""
    reported = margin.positions.get(key)
    limit = policy.min_distance_open
    if reported is None or reported.liquidation_price is None or limit is None:
        if key in margin.reduced and book.held(key) == 0:
            del margin.reduced[key]
        return None  # (first: a mark of a market the venue reports no margin of costs nothing)
    held = book.held(key)
    if held == 0:
        margin.reduced.pop(key, None)
        return None
    mark = book.marks.get(key) or reported.mark_price
    if not mark:
        return None
    near = distance(mark, reported.liquidation_price)
    if near >= limit:
        margin.reduced.pop(key, None)  # back beyond it: the next approach is acted on again
        return None
    if key in margin.reduced:
        return None
    size = abs(held)
    if policy.open_action == "reduce":
        size = book.lots(key, size * policy.reduce_fraction) or size  # under a lot: all of it
    order = reduce_order(key, held, size, now_ns)
    margin.reduced[key] = order.client_order_id
    shown = text(near.quantize(_SHOWN))
    values = (
        ("value", shown), ("limit", text(limit)), ("liquidation_price", text(reported.liquidation_price)),
        ("mark", text(mark)), ("position", text(held)), ("size", text(size)),
        ("action", policy.open_action), ("order", order.client_order_id),
    )  # fmt: skip
    what = "closed" if size == abs(held) else f"reduced by {text(size)}"
    reason = (
        f"{key[1]} is {shown} from its liquidation price {text(reported.liquidation_price)} at the mark"
        f" {text(mark)}, nearer than the limit {text(limit)}: {what}"
    )
    return order, values, reason
