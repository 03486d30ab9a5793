"""Inverse contracts' arithmetic: sized in a face value of the quote asset (USD), settled in the
base coin (BTC-PERPETUAL on Deribit, BTC-USD-SWAP on OKX).

A contract of value `cv` (quote) is worth cv / price of the coin. Held from `entry` to `exit`,
`n` contracts (signed, < 0 short) gain, in the coin:

    pnl = n * cv * (1/entry - 1/exit) = n * cv * (exit - entry) / (entry * exit)

and a fee at `rate` on a fill at `price` costs n * cv / price * rate of the coin. A division by
a price has no exact decimal in general: each amount is rounded half-even to COIN_STEP (1e-12
of the coin, the ledger's step for what it derives), once, at the end.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

from trademesh.core.domain.decimals import WIDE

__all__ = ["COIN_STEP", "coin_fee", "coin_pnl", "coin_round", "coin_value", "face_value"]

COIN_STEP = Decimal("1e-12")


def coin_round(value: Decimal) -> Decimal:
    """`value` rounded half-even to COIN_STEP, without trailing zeros."""
    rounded = value.quantize(COIN_STEP, rounding=ROUND_HALF_EVEN, context=WIDE)
    if rounded == rounded.to_integral_value():
        return rounded.quantize(Decimal(1), context=WIDE)  # 100, not 1E+2
    return rounded.normalize(WIDE)


def face_value(contracts: Decimal, contract_value: Decimal) -> Decimal:
    """What `contracts` are worth in the quote asset, whatever the price (exact)."""
    return contracts * contract_value


def coin_value(face: Decimal, price: Decimal) -> Decimal:
    """A face value (quote asset) in the coin at `price`."""
    if price <= 0:
        raise ValueError(f"price must be positive, got {price}")
    return coin_round(WIDE.divide(face, price))


def coin_pnl(signed_face: Decimal, entry: Decimal, exit: Decimal) -> Decimal:
    """The coin a position of `signed_face` (quote asset, < 0 short) gains from entry to exit."""
    if entry <= 0 or exit <= 0:
        raise ValueError(f"prices must be positive, got {entry} and {exit}")
    return coin_round(WIDE.divide(signed_face * (exit - entry), entry * exit))


def coin_fee(face: Decimal, price: Decimal, rate: Decimal) -> Decimal:
    """The fee at `rate` (a fraction of the notional) of a fill of `face` at `price`, in the coin."""
    return coin_round(WIDE.divide(abs(face) * rate, price))
