"""The Supervisor's engine: a pure core. Observations in (each strategy's figures, the regimes,
the risk state; the time given, never read), proposals checked against the operator's bounds,
and, by mode, actions out; every step an audit entry."""

from trademesh.core.supervisor.engine.bounds import Bounds, PolicyBound
from trademesh.core.supervisor.engine.check import CheckVerdict, check
from trademesh.core.supervisor.engine.core import AuditEntry, Mode, Supervisor, SupervisorOutput
from trademesh.core.supervisor.engine.model import ActionKind, Observation, Proposal, StrategyFigures
from trademesh.core.supervisor.engine.rules import propose

__all__ = [
    "ActionKind",
    "AuditEntry",
    "Bounds",
    "CheckVerdict",
    "Mode",
    "Observation",
    "PolicyBound",
    "Proposal",
    "StrategyFigures",
    "Supervisor",
    "SupervisorOutput",
    "check",
    "propose",
]
