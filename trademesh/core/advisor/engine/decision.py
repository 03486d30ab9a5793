"""What the core gives the shell for a signal: a Decision (every stage's output, and either an
execution intent or a block with its stage and reasons), or a Pending decision waiting for the
LLM's answer (with the request to send)."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from trademesh.core.advisor.engine.calibration import CalibrationResult
from trademesh.core.advisor.engine.conviction import Conviction
from trademesh.core.advisor.engine.evaluation import AdvisorEvaluation
from trademesh.core.advisor.engine.quality import QualityGate
from trademesh.core.advisor.engine.regime import AdvisorRegimeView
from trademesh.core.advisor.engine.request import SynthesisRequest
from trademesh.core.advisor.engine.sizing import Sizing
from trademesh.core.advisor.engine.snapshot import ContextSnapshot
from trademesh.core.advisor.engine.synthesis import Synthesis
from trademesh.core.advisor.engine.telemetry import Stage
from trademesh.core.advisor.engine.validation import Validation
from trademesh.core.domain.contracts.intent import ExecutionIntent
from trademesh.core.domain.contracts.signal import Signal

__all__ = ["Decision", "Outcome", "Pending"]


class Outcome(enum.Enum):
    INTENT = "intent"
    BLOCKED = "blocked"


@dataclass(frozen=True)
class Decision:
    decision_id: str
    signal: Signal
    accepted_ns: int  # when the core took the signal
    decided_ns: int  # when the decision was made (later than accepted_ns when it waited)
    outcome: Outcome
    blocked_stage: Stage | None
    reasons: tuple[str, ...]  # why it was blocked; () for an intent
    context: ContextSnapshot
    # None for a stage that did not run (blocked before it, or a flat signal's skipped stages).
    quality: QualityGate | None = None
    evaluation: AdvisorEvaluation | None = None
    conviction: Conviction | None = None
    regime: AdvisorRegimeView | None = None
    calibration: CalibrationResult | None = None
    synthesis: Synthesis | None = None
    validation: Validation | None = None
    sizing: Sizing | None = None
    intent: ExecutionIntent | None = None


@dataclass(frozen=True)
class Pending:
    """A decision waiting for the LLM: send `request`, hand the answer to `AdvisorCore.on_answer`."""

    decision_id: str
    signal_id: str
    request: SynthesisRequest
    deadline_ns: int  # past it, `AdvisorCore.expire` decides without the answer
