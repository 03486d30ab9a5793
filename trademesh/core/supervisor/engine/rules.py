"""The deterministic policy: what the Supervisor proposes without an LLM (and what an LLM's
proposals are checked beside). Per strategy, in this order, one proposal at most:

1. drawdown at or past `pause_drawdown`, not paused: PAUSE;
2. paused, drawdown back under `resume_drawdown`, the inspector active: RESUME;
3. hit rate judged (at least `min_round_trips`) and under `min_hit_rate`, capital-checked:
   SET_CAPITAL cut by `capital_step` (not under `min_capital`).

And for the book as a whole: when more than half the strategies with figures, and at least two,
are paused or in drawdown past `pause_drawdown`, each bounded policy is tightened by its step (not under its
floor). Nothing is proposed while the inspector stands down or closes all: the inspector's own
state is acting already."""

from __future__ import annotations

from decimal import Decimal

from trademesh.core.domain.decimals import format_decimal
from trademesh.core.supervisor.engine.bounds import Bounds
from trademesh.core.supervisor.engine.model import ActionKind, Observation, Proposal, StrategyFigures

__all__ = ["propose"]

_QUIET_STATES = ("stood_down", "close_all", "halted")


def propose(seen: Observation, bounds: Bounds) -> list[Proposal]:
    if seen.risk_state in _QUIET_STATES:
        return []
    proposals = [p for s in seen.strategies if (p := _for_strategy(s, bounds)) is not None]
    return proposals + _tighten(seen, bounds)


def _for_strategy(s: StrategyFigures, b: Bounds) -> Proposal | None:
    evidence = _evidence(s)
    if not s.paused and s.drawdown >= b.pause_drawdown:
        why = f"drawdown {_pct(s.drawdown)} reached the pause threshold {_pct(b.pause_drawdown)}"
        return Proposal(ActionKind.PAUSE, s.strategy, reason=why, evidence=evidence)
    if s.paused and s.drawdown < b.resume_drawdown:
        why = f"drawdown {_pct(s.drawdown)} is back under {_pct(b.resume_drawdown)}"
        return Proposal(ActionKind.RESUME, s.strategy, reason=why, evidence=evidence)
    rate = s.hit_rate
    if rate is None or s.round_trips < b.min_round_trips or rate >= b.min_hit_rate or s.capital is None:
        return None
    cut = max(s.capital * (1 - b.capital_step), b.min_capital)
    if cut >= s.capital:
        return None
    why = f"hit rate {_pct(rate)} over {s.round_trips} round trips is under {_pct(b.min_hit_rate)}"
    return Proposal(ActionKind.SET_CAPITAL, s.strategy, value=cut, reason=why, evidence=evidence)


def _tighten(seen: Observation, b: Bounds) -> list[Proposal]:
    judged = [s for s in seen.strategies if s.round_trips > 0 or s.paused]
    hurt = [s for s in judged if s.paused or s.drawdown >= b.pause_drawdown]
    if len(hurt) < 2 or 2 * len(hurt) <= len(judged):
        return []  # one strategy's trouble is its own: paused, not the book's limits
    why = f"{len(hurt)} of {len(judged)} strategies paused or in drawdown"
    out = []
    for name, bound in sorted(b.policies.items()):
        now = seen.limits.get(name)
        if now is None or now <= bound.floor:
            continue
        lower = max(now - bound.step, bound.floor)
        evidence = (("limit", format_decimal(now)), ("floor", format_decimal(bound.floor)))
        out.append(
            Proposal(ActionKind.TIGHTEN_POLICY, policy=name, value=lower, reason=why, evidence=evidence)
        )
    return out


def _evidence(s: StrategyFigures) -> tuple[tuple[str, str], ...]:
    rate = s.hit_rate
    return (
        ("realised_pnl", format_decimal(s.realised_pnl)),
        ("drawdown", format_decimal(s.drawdown)),
        ("round_trips", str(s.round_trips)),
        ("hit_rate", "" if rate is None else format_decimal(rate.quantize(Decimal("0.0001")))),
        ("capital", "" if s.capital is None else format_decimal(s.capital)),
    )


def _pct(fraction: Decimal) -> str:
    return f"{(fraction * 100).quantize(Decimal('0.1'))}%"
