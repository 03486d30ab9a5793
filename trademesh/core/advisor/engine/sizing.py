"""Stage 8's risk-based sizing: the size whose loss at the stop, its round trip's fees
included, is `risk_per_trade` of equity, scaled by the synthesis's size multiplier, capped at
`max_notional_share` of equity, and rounded down to the lot size:

    size = min(equity * risk_per_trade / ((|entry - stop| + stop_fees) * contract_size) * multiplier,
               equity * max_notional_share / (entry * contract_size))

(`stop_fees`: the fees of a unit's round trip to the stop, stage 7's TradePlan.stop_fees)

rounded down to a multiple of lot_size. A size under the instrument's minimum size or
notional is refused.

An inverse contract (a face value `cv` of the quote asset, settled in the base coin: Deribit's
BTC-PERPETUAL, OKX's BTC-USD-SWAP) is sized in contracts, on equity in the coin (the context's
sizing equity), with the loss at the stop and the cap in the coin too:

    loss per contract = cv * (|entry - stop| + stop_fees) / (entry * stop)
    size = min(equity * risk_per_trade / loss per contract * multiplier,
               equity * max_notional_share / (cv / entry))

(cv * |entry - stop| / (entry * stop) is cv * |1/entry - 1/stop|, the coin a contract loses
at the stop; the fees' part is exact when entry and stop pay one rate, as a taker entry and a
stop do.)
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from trademesh.core.advisor.engine.config import SizingConfig
from trademesh.core.domain.decimals import WIDE, format_decimal
from trademesh.core.domain.model import Instrument

__all__ = ["Sizing", "risk_size"]


@dataclass(frozen=True, slots=True)
class Sizing:
    equity: Decimal
    risk_amount: Decimal  # equity * risk_per_trade
    stop_distance: Decimal
    stop_fees: Decimal  # a unit's round trip to the stop: part of the loss there
    multiplier: Decimal
    risk_size: Decimal  # before the cap and the lot rounding
    cap_size: Decimal
    capped: bool
    size: Decimal
    # The inspector's limit that cut the size (trademesh.core.advisor.engine.limits), "" for none.
    limited_by: str = ""


def _floor_to(value: Decimal, step: Decimal) -> Decimal:
    return WIDE.multiply(WIDE.divide_int(value, step), step) if step > 0 else value


def _inverse_sizes(
    equity: Decimal,
    risk_amount: Decimal,
    entry: Decimal,
    stop: Decimal,
    multiplier: Decimal,
    unit: Decimal,
    cfg: SizingConfig,
    stop_fees: Decimal,
) -> tuple[Decimal, Decimal]:
    """An inverse contract's size by risk and its cap, each one division of exact products:
    risk_amount x entry x stop x multiplier / ((|entry - stop| + stop_fees) x cv) and
    equity x max_notional_share x entry / cv. Dividing by a contract's coin (cv / entry, or its
    loss at the stop) that was itself rounded would leave a size a hair under a whole lot when
    the rule gives exactly one, and the floor would take the lot off: 0.03 BTC at 60,000 capped
    at half is 900 contracts, not 890 on Deribit's lot of 10 (1/60000 rounds up)."""
    at_risk = WIDE.multiply(WIDE.multiply(risk_amount, multiplier), WIDE.multiply(entry, stop))
    by_risk = WIDE.divide(at_risk, WIDE.multiply(abs(entry - stop) + stop_fees, unit))
    worth = WIDE.multiply(WIDE.multiply(equity, cfg.max_notional_share), entry)
    return by_risk, WIDE.divide(worth, unit)


def risk_size(
    equity: Decimal | None,
    entry: Decimal,
    stop: Decimal,
    multiplier: Decimal,
    instrument: Instrument,
    cfg: SizingConfig,
    stop_fees: Decimal,
) -> Sizing | str:
    """The size, or why there is none."""
    if equity is None or equity <= 0:
        return f"no equity to size from ({'none' if equity is None else format_decimal(equity)})"
    distance = abs(entry - stop)
    unit = instrument.contract_value if instrument.inverse else instrument.contract_size
    if distance <= 0 or entry <= 0 or stop <= 0 or unit <= 0:
        return "no stop distance to size from"
    risk_amount = equity * cfg.risk_per_trade
    if instrument.inverse:
        by_risk, cap = _inverse_sizes(equity, risk_amount, entry, stop, multiplier, unit, cfg, stop_fees)
    else:
        loss, held = WIDE.multiply(distance + stop_fees, unit), WIDE.multiply(entry, unit)
        by_risk = WIDE.divide(risk_amount, loss) * multiplier
        cap = WIDE.divide(equity * cfg.max_notional_share, held)
    size = _floor_to(min(by_risk, cap), instrument.lot_size)
    if size <= 0 or size < instrument.min_size:
        return f"size {format_decimal(size)} is under the minimum {format_decimal(instrument.min_size)}"
    notional = instrument.notional(size, entry)
    if notional < instrument.min_notional:
        minimum = format_decimal(instrument.min_notional)
        return f"notional {format_decimal(notional)} is under the minimum {minimum}"
    return Sizing(equity, risk_amount, distance, stop_fees, multiplier, by_risk, cap, by_risk > cap, size)
