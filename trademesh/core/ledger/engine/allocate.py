"""Pro rata splits with deterministic rounding: the share of a reducing fill no strategy placed
that each holder of the position takes, and a fee's or a funding payment's share of each.

Each share is `total x weight / sum of weights`, rounded toward zero to the quantum; what the
rounding leaves goes to the largest weight (by absolute value, then by strategy name), and, when
shares are capped (a holder takes no more than it holds), on to the next largest.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import ROUND_DOWN, Decimal

from trademesh.core.ledger.engine.model import ZERO

__all__ = ["split", "trim"]


def trim(value: Decimal) -> Decimal:
    """`value` without trailing zeros after the point (0.100000000000 -> 0.1, 100 stays 100)."""
    if value == value.to_integral_value():
        return value.quantize(Decimal(1))
    return value.normalize()


def split(
    total: Decimal,
    weights: Mapping[str, Decimal],
    quantum: Decimal,
    caps: Mapping[str, Decimal] | None = None,
) -> dict[str, Decimal]:
    """`total` shared pro rata to `weights` (non-zero sum; signed weights give signed shares),
    each share a multiple of `quantum` and, with `caps`, at most its cap (total <= sum of caps).
    Zero shares are left out; the shares sum to `total` exactly."""
    whole = sum(weights.values(), ZERO)
    order = sorted(weights, key=lambda name: (-abs(weights[name]), name))
    shares = {name: (total * weights[name] / whole).quantize(quantum, rounding=ROUND_DOWN) for name in order}
    rest = total - sum(shares.values(), ZERO)
    for name in order:
        if not rest:
            break
        take = rest if caps is None else min(rest, caps[name] - shares[name])
        shares[name] += take
        rest -= take
    return {name: trim(share) for name, share in shares.items() if share}
