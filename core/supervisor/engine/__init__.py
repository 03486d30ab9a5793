"""The Supervisor's engine: a pure core. Observations in (each strategy's figures, the regimes,
the risk state; the time given, never read), proposals checked against the operator's bounds,
and, by mode, actions out; every step an audit entry."""

from core.supervisor.engine.bounds import Bounds, PolicyBound
from core.supervisor.engine.check import Verdict, check
from core.supervisor.engine.core import AuditEntry, Mode, Output, Supervisor
from core.supervisor.engine.model import ActionKind, Observation, Proposal, StrategyFigures
from core.supervisor.engine.rules import propose

__all__ = [
    "ActionKind",
    "AuditEntry",
    "Bounds",
    "Mode",
    "Observation",
    "Output",
    "PolicyBound",
    "Proposal",
    "StrategyFigures",
    "Supervisor",
    "Verdict",
    "check",
    "propose",
]
