"""Stage 8, the execution intent that goes to Inspector (stream `intents`): what to trade, how
much (sizing.py), at what entry, with which protective stop and take-profit, until when. The
intent itself and what its fields mean are the contract's (trademesh.core.domain.contracts.intent).

A flat signal with a position closes it: a reduce-only market order for the whole position,
with no stop or target (docs/advisor.md, "Flat signals").
"""

from __future__ import annotations

from decimal import Decimal

from trademesh.core.advisor.engine.config import EntryMode, IntentConfig
from trademesh.core.advisor.engine.ids import intent_id
from trademesh.core.advisor.engine.sizing import Sizing
from trademesh.core.advisor.engine.validation import TradePlan
from trademesh.core.domain.contracts.intent import ExecutionIntent
from trademesh.core.domain.contracts.signal import Signal
from trademesh.core.domain.model import OrderType, Side, TimeInForce

__all__ = ["close_intent", "open_intent"]

_NS_PER_MS = 1_000_000


def _side(sign: int) -> Side:
    return Side.BUY if sign > 0 else Side.SELL


def _identity(decision: str, signal: Signal) -> dict[str, str]:
    """What every intent takes from its decision and signal: ids, strategy, market."""
    return {
        "intent_id": intent_id(decision),
        "decision_id": decision,
        "signal_id": signal.signal_id,
        "strategy_id": signal.strategy_id,
        "venue": signal.venue,
        "symbol": signal.symbol,
    }


def open_intent(
    decision: str, signal: Signal, sign: int, plan: TradePlan, sizing: Sizing, conviction: float,
    cfg: IntentConfig, now_ns: int,
) -> ExecutionIntent:  # fmt: skip
    market = cfg.entry is EntryMode.MARKET
    return ExecutionIntent(
        **_identity(decision, signal),
        side=_side(sign),
        size=sizing.size,
        entry_type=OrderType.MARKET if market else OrderType.LIMIT,
        entry_price=None if market else plan.entry,
        stop_loss=plan.stop,
        take_profit=plan.target,
        # A market order cannot rest: it fills now or not at all.
        time_in_force=TimeInForce.IOC if market else cfg.time_in_force,
        expires_ns=now_ns + cfg.ttl_ms * _NS_PER_MS,
        conviction=conviction,
        reduce_only=False,
        created_ns=now_ns,
        leverage=cfg.leverage,
    )


def close_intent(
    decision: str, signal: Signal, position: Decimal, cfg: IntentConfig, now_ns: int
) -> ExecutionIntent:
    return ExecutionIntent(
        **_identity(decision, signal),
        side=Side.SELL if position > 0 else Side.BUY,
        size=abs(position),
        entry_type=OrderType.MARKET,
        entry_price=None,
        stop_loss=None,
        take_profit=None,
        time_in_force=TimeInForce.IOC,
        expires_ns=now_ns + cfg.ttl_ms * _NS_PER_MS,
        conviction=float(signal.conviction),
        reduce_only=True,
        created_ns=now_ns,
        leverage=None,  # a close keeps the position's
    )
