"""What the Supervisor sees and what it may propose.

A strategy's figures come from the ledger (realised PnL, the drawdown from its equity's peak,
round trips and those that won) and the inspector (its reserved capital, whether the detector
runs it); money is Decimal, as everywhere."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

__all__ = ["ActionKind", "Observation", "Proposal", "StrategyFigures"]


class ActionKind(StrEnum):
    PAUSE = "pause"  # the strategy's patches paused: no new signals
    RESUME = "resume"
    SET_CAPITAL = "set_capital"  # its reserved capital (inspector's capital.reserved.<strategy>)
    TIGHTEN_POLICY = "tighten_policy"  # a limit of the inspector's lowered, never raised


@dataclass(frozen=True)
class StrategyFigures:
    strategy: str
    realised_pnl: Decimal
    drawdown: Decimal  # a fraction of the strategy's equity peak, 0 at the peak
    round_trips: int
    winners: int
    capital: Decimal | None  # reserved for it, quote asset; None: not capital-checked
    paused: bool = False

    @property
    def hit_rate(self) -> Decimal | None:
        """Winners over round trips; None before the first."""
        return None if self.round_trips == 0 else Decimal(self.winners) / Decimal(self.round_trips)


@dataclass(frozen=True)
class Observation:
    """One look at the mesh, at `now_ns`: every strategy, each market's regime
    ("venue/symbol" -> regime name), the inspector's state and its policies' current limits."""

    now_ns: int
    strategies: tuple[StrategyFigures, ...]
    regimes: dict[str, str] = field(default_factory=dict)
    risk_state: str = "active"
    limits: dict[str, Decimal] = field(default_factory=dict)  # policy name -> its limit now

    def strategy(self, name: str) -> StrategyFigures | None:
        return next((s for s in self.strategies if s.strategy == name), None)


@dataclass(frozen=True)
class Proposal:
    """One action, its reason and the evidence it rests on (name -> value as text). `policy`
    only for TIGHTEN_POLICY; `value` for SET_CAPITAL and TIGHTEN_POLICY."""

    kind: ActionKind
    strategy: str = ""
    value: Decimal | None = None
    policy: str = ""
    reason: str = ""
    evidence: tuple[tuple[str, str], ...] = ()
    source: str = "rules"  # "rules" or the LLM model's name

    def key(self) -> tuple[str, str, str]:
        """What it acts on: one open proposal per key."""
        return (self.kind.value, self.strategy, self.policy)
