"""What the backtest's strategies hear back from its inspector core, read straight from the core.

The live detector hears the inspector through its answers, GetRiskState and ListPositions
(trademesh.core.detector.feedback turns them into events). A backtest has the core itself: on
1-minute bars it is heard after almost every step (each held bar's mark is an input), and the
whole risk state built as a message there (rates, gauges, transitions, every decimal as text)
cost more than anything the strategies then heard. These read only what the tracker takes, the
same values (tests/unit/test_backtest_hearing.py compares them with the answers' at every step
of a run): the numbers as the answers' text would give them back (a Decimal's float is its
text's), a zero as 0.0.
"""

from __future__ import annotations

from decimal import Decimal

from trademesh.core.inspector.replay import InspectorCore

__all__ = ["held_of", "risk_values_of"]

# trademesh.core.detector.feedback's names (docs/detector.md, "Hearing back").
STOOD_DOWN = "inspector.stood_down"
HALTED = "inspector.halted"
COOLDOWN = "inspector.cooldown"
COOLDOWN_S = "inspector.cooldown_s"
DRAWDOWN = "inspector.drawdown"
_NS = 1_000_000_000
Held = tuple[float, float | None]  # a strategy's share, the position's average entry price
_REFUSING = ("standing_down", "halted")  # RiskState's values: entries refused


def _float(value: Decimal) -> float:
    return float(value) if value else 0.0


def risk_values_of(core: InspectorCore, now_ns: int) -> dict[str, float | bool]:
    """risk_values(risk_state(core, now_ns, ...)) of trademesh.core.detector.feedback, without the
    message."""
    state = core.state.value
    cooling = core.streak.cooling_until(core.policies.loss.cooldown_after_loss_ms)
    left_ns = cooling - now_ns if cooling is not None and cooling > now_ns else 0
    values: dict[str, float | bool] = {
        STOOD_DOWN: state in _REFUSING,
        HALTED: state == "halted",
        COOLDOWN: left_ns > 0,
        COOLDOWN_S: left_ns / _NS,
        DRAWDOWN: _float(core.curve.drawdown),
    }
    strategies = sorted({w.order.strategy_id for w in core.book.orders if w.order.strategy_id})
    strategies += [s for s in core.policies.capital.reserved if s not in strategies]
    for strategy in strategies:
        use = core.capital(strategy)
        prefix = f"inspector.capital.{strategy}"
        used = _float(use.used)
        values[f"{prefix}.used"] = used
        if use.reserved is not None:
            reserved = _float(use.reserved)
            values[f"{prefix}.reserved"] = reserved
            values[f"{prefix}.free"] = reserved - used
    return values


def held_of(core: InspectorCore) -> dict[tuple[str, str, str], Held]:
    """Each strategy's share of each position and the position's average entry price, as
    positions_view's answer tells them (a share under a lot is not told)."""
    held: dict[tuple[str, str, str], Held] = {}
    book = core.book
    for key, position in sorted(book.positions.positions.items()):
        if position.size == 0:
            continue
        average = None if position.avg_price is None else _float(position.avg_price)
        for strategy, share in sorted(book.positions.shares(key).items()):
            if share and book.lots(key, share) != 0:
                held[(strategy, key[0], key[1])] = (_float(share), average)
    return held
