"""Stage 7, validation: the trade's prices (entry, ATR stop, take-profit) and the checks that
block it, each with its reason:

- the spread is over `max_spread_ratio` (0.4%), or there is no book to tell;
- no stop can be set (too few bars for the ATR, or bars with no range);
- the stop or the target lies within its round trip's fees and `min_distance_ticks` ticks of
  the entry (the bars' ATR is too small for the venue's costs: a timeframe too short);
- else risk/reward is under `min_risk_reward` (1.2), where
      risk/reward = (|target - entry| - fees to the target) / (|entry - stop| + fees to the stop),
  each round trip's fees per unit: entry * its rate + exit price * the exit's rate (engine/fees.py);
- the final conviction is under `min_conviction`;
- the synthesis's size multiplier is 0.

Entry: the other side's best price for market and limit_cross entries, our side's for
limit_join. Stop: entry -/+ stop_atr * ATR(atr_bars) (simple mean of true ranges). Target:
entry +/- target_atr * ATR, no further than the swing high (low) of the last swing_bars bars
when that lies beyond the entry. Prices go to the tick away from the trade for the stop and
towards the entry for the target (never optimistic).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal

from trademesh.core.advisor.engine.config import EntryMode, ValidationConfig
from trademesh.core.advisor.engine.fees import FeeRates, fee_rates
from trademesh.core.advisor.engine.snapshot import ContextSnapshot
from trademesh.core.advisor.engine.synthesis import Synthesis
from trademesh.core.domain.model import Candle

__all__ = [
    "TradePlan",
    "Validation",
    "average_true_range",
    "entry_price",
    "plan_trade",
    "risk_reward",
    "validate",
]

_RATIO_STEP = Decimal("0.000001")


@dataclass(frozen=True, slots=True)
class TradePlan:
    entry: Decimal
    stop: Decimal
    target: Decimal
    atr: Decimal
    risk_reward: Decimal
    # Per unit of size, in price: what the round trip to the target and to the stop pays.
    target_fees: Decimal
    stop_fees: Decimal


@dataclass(frozen=True)
class Validation:
    passed: bool
    reasons: tuple[str, ...]
    spread_ratio: Decimal | None
    plan: TradePlan | None
    conviction: float


def average_true_range(bars: Sequence[Candle], count: int) -> Decimal | None:
    if len(bars) < count + 1:
        return None
    window = bars[-(count + 1) :]
    ranges = [
        max(b.high - b.low, abs(b.high - prev.close), abs(b.low - prev.close))
        for prev, b in itertools.pairwise(window)
    ]
    return sum(ranges, Decimal(0)) / count


def entry_price(snap: ContextSnapshot, sign: int, mode: EntryMode) -> Decimal | None:
    book = snap.context.book
    if book is None or book.crossed:
        return snap.reference_price
    far, near = (book.ask, book.bid) if sign > 0 else (book.bid, book.ask)
    return near if mode is EntryMode.LIMIT_JOIN else far


def _to_tick(price: Decimal, tick: Decimal, rounding: str) -> Decimal:
    return (price / tick).to_integral_value(rounding) * tick if tick > 0 else price


def _target(
    entry: Decimal, distance: Decimal, bars: Sequence[Candle], sign: int, cfg: ValidationConfig
) -> Decimal:
    target = entry + sign * distance
    if not cfg.cap_target_at_swing:
        return target
    window = bars[-cfg.swing_bars :]
    if sign > 0:
        swing = max(b.high for b in window)
        return min(target, swing) if swing > entry else target
    swing = min(b.low for b in window)
    return max(target, swing) if swing < entry else target


def risk_reward(entry: Decimal, stop: Decimal, target: Decimal, rates: FeeRates) -> Decimal:
    reward = abs(target - entry) - rates.to_target(entry, target)
    risk = abs(entry - stop) + rates.to_stop(entry, stop)
    if reward <= 0 or risk <= 0:
        return Decimal(0)
    return (reward / risk).quantize(_RATIO_STEP, ROUND_HALF_EVEN)


def plan_trade(
    entry: Decimal,
    bars: Sequence[Candle],
    sign: int,
    tick: Decimal,
    cfg: ValidationConfig,
    rates: FeeRates,
) -> TradePlan | str:
    """The stop and target for an entry, or why there can be none."""
    atr = average_true_range(bars, cfg.atr_bars)
    if atr is None:
        return f"no stop: {len(bars)} bar(s), ATR({cfg.atr_bars}) needs {cfg.atr_bars + 1}"
    if atr == 0:
        return "no stop: the bars have no range (ATR 0)"
    # Down for a long (the stop away from the trade, the target towards the entry), up for a short.
    rounding = ROUND_FLOOR if sign > 0 else ROUND_CEILING
    stop = _to_tick(entry - sign * cfg.stop_atr * atr, tick, rounding)
    target = _to_tick(_target(entry, cfg.target_atr * atr, bars, sign, cfg), tick, rounding)
    if stop <= 0:
        return f"no stop: {cfg.stop_atr} ATRs below the entry is not a price"
    rr = risk_reward(entry, stop, target, rates)
    return TradePlan(entry, stop, target, atr, rr, rates.to_target(entry, target), rates.to_stop(entry, stop))


def _distance_reasons(plan: TradePlan, tick: Decimal, cfg: ValidationConfig) -> list[str]:
    """A stop or target no further from the entry than its round trip's fees and a few ticks:
    the trade would mostly pay the venue (the bars' ATR is too small for its costs)."""
    reasons, ticks = [], cfg.min_distance_ticks * tick
    for name, price, fees in (("stop", plan.stop, plan.stop_fees), ("target", plan.target, plan.target_fees)):
        distance, least = abs(price - plan.entry), fees + ticks
        if distance <= least:
            reasons.append(
                f"{name} {_pct(distance / plan.entry)} from the entry is within its round trip's fees "
                f"and {cfg.min_distance_ticks} ticks ({_pct(least / plan.entry)}): the bars are too "
                "short for the venue's fees"
            )
    return reasons


def _spread_reason(spread: Decimal | None, cfg: ValidationConfig) -> list[str]:
    if spread is None:
        return ["no book: the spread is unknown"]
    if spread > cfg.max_spread_ratio:
        return [f"spread {_pct(spread)} > {_pct(cfg.max_spread_ratio)}"]
    return []


def _pct(ratio: Decimal) -> str:
    return f"{(ratio * 100).quantize(Decimal('0.001'), ROUND_HALF_EVEN)}%"


def validate(
    snap: ContextSnapshot, sign: int, synthesis: Synthesis, entry_mode: EntryMode, cfg: ValidationConfig
) -> Validation:
    reasons = _spread_reason(snap.spread_ratio, cfg)
    entry = entry_price(snap, sign, entry_mode)
    instrument = snap.context.instrument
    tick = instrument.tick_size if instrument is not None else Decimal(0)
    rates = fee_rates(instrument, entry_mode, cfg.fee_rate)
    plan = None if entry is None else plan_trade(entry, snap.context.bars, sign, tick, cfg, rates)
    if plan is None or isinstance(plan, str):
        reasons.append(plan or "no entry price")
        plan = None
    else:
        reasons.extend(_distance_reasons(plan, tick, cfg) or _risk_reward_reason(plan, cfg))
    conviction = synthesis.final_conviction
    if conviction < cfg.min_conviction:
        reasons.append(f"conviction {conviction:.4f} < {cfg.min_conviction}")
    if synthesis.size_multiplier <= 0:
        reasons.append("the synthesis sized the trade to 0")
    return Validation(not reasons, tuple(reasons), snap.spread_ratio, plan, conviction)


def _risk_reward_reason(plan: TradePlan, cfg: ValidationConfig) -> list[str]:
    if plan.risk_reward < cfg.min_risk_reward:
        return [f"risk/reward {plan.risk_reward.normalize():f} < {cfg.min_risk_reward}"]
    return []
