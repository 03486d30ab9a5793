"""What the core tells the world: risk events (one per action, with the policy, the values
and the reason), state transitions, and the verdict on an intent."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from trademesh.core.inspector.engine.actions import OrderAction, PlaceOrder

__all__ = ["RiskAction", "RiskEvent", "RiskOutput", "RiskState", "RiskVerdict", "Transition"]


class RiskAction(enum.Enum):
    ALLOW = "allow"  # place the order
    BLOCK = "block"
    THROTTLE = "throttle"  # refused for now by a rate limit; the same intent may pass later
    STAND_DOWN = "stand_down"  # no new entries; exits and protective orders go on
    CLOSE_ALL = "close_all"  # cancel everything and flatten every position
    POLICY_CHANGE = "policy_change"  # a recorded change of the policy set
    RESUME = "resume"  # an operator's resume
    NOTICE = "notice"  # something the operator should know (a fill of an order not ours)
    REDUCE = "reduce"  # a position too near its liquidation reduced or closed by policy


class RiskState(enum.Enum):
    ACTIVE = "active"
    THROTTLED = "throttled"  # a rate limit refused an order within the current window
    STANDING_DOWN = "standing_down"  # no new entries
    HALTED = "halted"  # after CLOSE_ALL: nothing but the flattening until an operator resumes


@dataclass(frozen=True)
class RiskEvent:
    """One recorded risk event; `values` are the numbers the decision was made on, as text."""

    at_ns: int
    action: RiskAction
    policy: str
    reason: str
    values: tuple[tuple[str, str], ...] = ()
    intent_id: str = ""
    strategy_id: str = ""
    venue: str = ""
    symbol: str = ""

    def value(self, name: str) -> str:
        return dict(self.values)[name]


@dataclass(frozen=True)
class Transition:
    at_ns: int
    before: RiskState
    after: RiskState
    reason: str


@dataclass(frozen=True)
class RiskOutput:
    """What one event made the core do: order actions for the shell, events, transitions."""

    actions: tuple[OrderAction, ...] = ()
    events: tuple[RiskEvent, ...] = ()
    transitions: tuple[Transition, ...] = ()


@dataclass(frozen=True)
class RiskVerdict:
    """The answer to an intent: ALLOW with its order, or BLOCK/THROTTLE with the reasons."""

    intent_id: str
    action: RiskAction
    orders: tuple[PlaceOrder, ...] = ()
    reasons: tuple[RiskEvent, ...] = ()
    output: RiskOutput = field(default_factory=RiskOutput)

    @property
    def allowed(self) -> bool:
        return self.action is RiskAction.ALLOW
