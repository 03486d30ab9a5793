"""What an evaluation gives the shell: signals, position requests, slow modules, state changes."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from trademesh.core.detector.engine.changes import StateChanged
from trademesh.core.detector.engine.values import RuleValue
from trademesh.core.domain.contracts.signal import Direction

__all__ = ["EmittedSignal", "Evaluation", "PositionRequest", "ProbeUpdate", "SlowModule", "emission_id"]

# Ids are uuid5 in this namespace of (patch id, patch version, evaluation time, sequence): the
# same events at the same times give the same ids, so a backtest reproduces a live run's ids;
# the time keeps them unique when a restarted patch counts its sequence from 0 again.
_NAMESPACE = uuid.UUID("6f1d3c1e-5a52-4be0-9d1e-6d6574656374")


def emission_id(patch_id: str, version: int, now_ns: int, sequence: int) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"{patch_id}/{version}/{now_ns}/{sequence}"))


@dataclass(frozen=True, slots=True)
class EmittedSignal:
    signal_id: str
    strategy_id: str
    patch_id: str
    patch_version: int
    module_id: str
    venue: str
    symbol: str
    direction: Direction
    conviction: float
    score: float
    threshold: float
    rules: tuple[RuleValue, ...]
    ts_event_ns: int  # the event that triggered the evaluation
    signal_time_ns: int  # the evaluation's (injected) time


@dataclass(frozen=True, slots=True)
class PositionRequest:
    request_id: str
    strategy_id: str
    patch_id: str
    patch_version: int
    module_id: str
    venue: str
    symbol: str
    action: str
    side: Direction
    fraction: float
    ts_event_ns: int
    time_ns: int


@dataclass(frozen=True, slots=True)
class SlowModule:
    """A module whose step took longer than its budget (timed by the injected timer)."""

    patch_id: str
    module_id: str
    elapsed_ns: int
    budget_ns: int
    at_ns: int


@dataclass(frozen=True, slots=True)
class ProbeUpdate:
    patch_id: str
    port: str  # "module.output"
    value: object
    at_ns: int  # when the value was set (the evaluation's time)


@dataclass(init=False, slots=True)
class Evaluation:
    """The outputs of one evaluate_due() or tick()."""

    signals: list[EmittedSignal]
    positions: list[PositionRequest]
    states: list[StateChanged]
    slow: list[SlowModule]
    evaluations: int  # patch evaluations run
    # Signals and position requests left out: their market is delisted (Engine.on_listing).
    withheld: int

    # Written out, empty (not field(default_factory=list)): the engine makes one per
    # evaluate_due and per tick, and the generated __init__ costs three times as much.
    def __init__(self) -> None:
        self.signals = []
        self.positions = []
        self.states = []
        self.slow = []
        self.evaluations = 0
        self.withheld = 0

    def extend(self, other: Evaluation) -> None:
        self.signals += other.signals
        self.positions += other.positions
        self.states += other.states
        self.slow += other.slow
        self.evaluations += other.evaluations
        self.withheld += other.withheld
