"""The core's state and its recorded transitions, and what one event's handling produced."""

from __future__ import annotations

from dataclasses import dataclass, field

from trademesh.core.inspector.engine.actions import OrderAction
from trademesh.core.inspector.engine.events import RiskAction, RiskEvent, RiskOutput, RiskState, Transition

__all__ = ["Collector", "StateMachine"]


class StateMachine:
    def __init__(self) -> None:
        self.state = RiskState.ACTIVE
        self.history: list[Transition] = []
        self.throttled_until_ns = 0

    def move(self, after: RiskState, reason: str, now_ns: int) -> Transition | None:
        if after is self.state:
            return None
        transition = Transition(now_ns, self.state, after, reason)
        self.state = after
        self.history.append(transition)
        return transition

    @property
    def takes_entries(self) -> bool:
        return self.state in (RiskState.ACTIVE, RiskState.THROTTLED)


@dataclass
class Collector:
    """Actions, events and transitions gathered while one event is handled."""

    now_ns: int
    actions: list[OrderAction] = field(default_factory=list)
    events: list[RiskEvent] = field(default_factory=list)
    transitions: list[Transition] = field(default_factory=list)

    def event(
        self, action: RiskAction, policy: str, reason: str, values: tuple[tuple[str, str], ...] = (),
        *, intent_id: str = "", strategy_id: str = "", venue: str = "", symbol: str = "",
    ) -> RiskEvent:  # fmt: skip
        event = RiskEvent(self.now_ns, action, policy, reason, values, intent_id, strategy_id, venue, symbol)
        self.events.append(event)
        return event

    def moved(self, transition: Transition | None) -> None:
        if transition is not None:
            self.transitions.append(transition)

    def output(self) -> RiskOutput:
        return RiskOutput(tuple(self.actions), tuple(self.events), tuple(self.transitions))
