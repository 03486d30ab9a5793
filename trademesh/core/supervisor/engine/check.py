"""Every proposal checked before it counts, whoever made it (the rules, an LLM): a strategy or
policy that does not exist, a value outside the operator's bounds, an action that changes
nothing, or a loosening, is refused with its reason (and recorded: the advisor's hallucination
checks, for the Supervisor's tools)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from trademesh.core.domain.decimals import format_decimal
from trademesh.core.supervisor.engine.bounds import Bounds
from trademesh.core.supervisor.engine.model import ActionKind, Observation, Proposal

__all__ = ["CheckVerdict", "check"]


@dataclass(frozen=True)
class CheckVerdict:
    ok: bool
    reason: str = ""


_OK = CheckVerdict(True)


def check(p: Proposal, seen: Observation, bounds: Bounds) -> CheckVerdict:
    if p.kind is ActionKind.TIGHTEN_POLICY:
        return _check_policy(p, seen, bounds)
    figures = seen.strategy(p.strategy)
    if figures is None:
        return CheckVerdict(False, f"no strategy {p.strategy!r} (strategies: {_names(seen)})")
    if p.kind is ActionKind.PAUSE:
        return CheckVerdict(False, f"{p.strategy} is paused already") if figures.paused else _OK
    if p.kind is ActionKind.RESUME:
        return _OK if figures.paused else CheckVerdict(False, f"{p.strategy} is not paused")
    return _check_capital(p, figures.capital, bounds)


def _check_capital(p: Proposal, now: Decimal | None, b: Bounds) -> CheckVerdict:
    if p.value is None:
        return CheckVerdict(False, "set_capital without a value")
    if not b.min_capital <= p.value <= b.max_capital:  # said first: the value itself is wrong
        return CheckVerdict(
            False,
            f"capital {format_decimal(p.value)} is outside "
            f"[{format_decimal(b.min_capital)}, {format_decimal(b.max_capital)}]",
        )
    if now is None:
        return CheckVerdict(False, f"{p.strategy} is not capital-checked: no capital to change")
    if abs(p.value - now) > now * b.capital_step:
        return CheckVerdict(
            False,
            f"capital {format_decimal(now)} -> {format_decimal(p.value)} changes it by "
            f"more than {format_decimal(b.capital_step)} of it",
        )
    if p.value == now:
        return CheckVerdict(False, "the capital is that already")
    return _OK


def _check_policy(p: Proposal, seen: Observation, b: Bounds) -> CheckVerdict:
    bound = b.policies.get(p.policy)
    if bound is None:
        return CheckVerdict(
            False,
            f"policy {p.policy!r} is not one the operator lets it tighten "
            f"({', '.join(sorted(b.policies)) or 'none'})",
        )
    now = seen.limits.get(p.policy)
    if now is None or p.value is None:
        return CheckVerdict(False, f"policy {p.policy!r} has no limit now, or no value was given")
    if p.value >= now:
        return CheckVerdict(
            False, f"{format_decimal(p.value)} does not tighten {p.policy} ({format_decimal(now)})"
        )
    if p.value < bound.floor or now - p.value > bound.step:
        return CheckVerdict(
            False,
            f"{p.policy} {format_decimal(now)} -> {format_decimal(p.value)}: beyond its "
            f"floor {format_decimal(bound.floor)} or step {format_decimal(bound.step)}",
        )
    return _OK


def _names(seen: Observation) -> str:
    return ", ".join(s.strategy for s in seen.strategies) or "none"
