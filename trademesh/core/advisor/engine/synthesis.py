"""Stage 6, synthesis: the LLM's checked answer, or the deterministic synthesis, turned into a
bias, a size multiplier and the final conviction.

With an answer the checks accepted (no flag in SynthesisConfig.discard):

    agreement = confidence        if bias is the signal's direction
                1 - confidence    if bias is its opposite
                0.5               if bias is flat
    w         = llm_weight * downweight ** (flags kept)
    final     = (1 - w) * calibrated + w * agreement
    size_mult = 1 + (size_multiplier - 1) * downweight ** (flags kept)

The deterministic synthesis (no endpoint, every model failed, a deadline missed, the answer
discarded, too many decisions waiting) uses the calibrated conviction c alone:

    bias = the signal's direction if c >= 0.5, else flat;  confidence = c;  final = c
    size_mult = min(1.5, max(0.5, 2c)), to 0.01

and the decision says so (source "deterministic", with the reason).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

from trademesh.core.advisor.engine.checks import AnswerFlag, ParsedAnswer
from trademesh.core.advisor.engine.config import SynthesisConfig
from trademesh.core.advisor.engine.request import StageOutputs
from trademesh.core.domain.contracts.signal import Direction

__all__ = [
    "FlagAction",
    "Synthesis",
    "SynthesisSource",
    "deterministic_synthesis",
    "from_answer",
    "policy_of",
]

_CENT = Decimal("0.01")


class SynthesisSource(enum.Enum):
    LLM = "llm"
    DETERMINISTIC = "deterministic"


@dataclass(frozen=True, slots=True)
class FlagAction:
    flag: AnswerFlag
    action: str  # "discard" or "downweight"


@dataclass(frozen=True)
class Synthesis:
    source: SynthesisSource
    model: str  # the model that answered ("" for deterministic)
    bias: Direction
    confidence: float
    size_multiplier: Decimal  # as applied to the risk-based size
    reasoning: str
    llm_weight: float  # the answer's share of the final conviction (0 for deterministic)
    agreement: float  # how much the synthesis backs the signal's direction
    final_conviction: float
    flags: tuple[FlagAction, ...]
    fallback_reason: str  # why deterministic; "" for an LLM synthesis


def policy_of(flags: tuple[AnswerFlag, ...], cfg: SynthesisConfig) -> tuple[FlagAction, ...]:
    return tuple(FlagAction(f, "discard" if f.check in cfg.discard else "downweight") for f in flags)


def _agreement(bias: Direction, confidence: float, signal: Direction) -> float:
    if bias is signal:
        return confidence
    if bias is Direction.FLAT:
        return 0.5
    return 1.0 - confidence


def _reasoning(stages: StageOutputs, reason: str) -> str:
    c = stages.conviction
    model = "none" if c.model is None else f"{c.model:.4f}"
    rules = "none" if c.rules is None else f"{c.rules:.4f}"
    return (
        f"Deterministic synthesis ({reason}): {stages.signal.direction.value} signal from "
        f"{stages.signal.strategy_id}; detector conviction {c.detector:.4f}, model probability {model}, "
        f"rule score {rules}; raw conviction {c.raw:.4f} calibrated to {stages.calibration.calibrated:.4f} "
        f"in regime {stages.regime.label}; market quality {stages.quality.score:.4f}."
    )


def deterministic_synthesis(
    stages: StageOutputs, reason: str, flags: tuple[FlagAction, ...] = ()
) -> Synthesis:
    c = stages.calibration.calibrated
    direction = stages.signal.direction
    bias = direction if c >= 0.5 else Direction.FLAT
    multiplier = min(Decimal("1.5"), max(Decimal("0.5"), Decimal(repr(2 * c)))).quantize(
        _CENT, ROUND_HALF_EVEN
    )
    agreement = _agreement(bias, c, direction)
    return Synthesis(
        SynthesisSource.DETERMINISTIC, "", bias, c, multiplier, _reasoning(stages, reason), 0.0, agreement,
        c, flags, reason,
    )  # fmt: skip


def from_answer(stages: StageOutputs, parsed: ParsedAnswer, model: str, cfg: SynthesisConfig) -> Synthesis:
    """The synthesis from a checked answer; deterministic when the policy discards it."""
    actions = policy_of(parsed.flags, cfg)
    discarded = [a.flag.check for a in actions if a.action == "discard"]
    if discarded or parsed.bias is None or parsed.confidence is None or parsed.size_multiplier is None:
        reason = f"answer from {model} discarded: {', '.join(dict.fromkeys(discarded)) or 'incomplete'}"
        return deterministic_synthesis(stages, reason, actions)
    kept = sum(1 for a in actions if a.action == "downweight")
    trust = cfg.downweight**kept
    weight = round(cfg.llm_weight * trust, 9)
    direction = stages.signal.direction
    agreement = _agreement(parsed.bias, parsed.confidence, direction)
    final = round((1.0 - weight) * stages.calibration.calibrated + weight * agreement, 9)
    multiplier = (1 + (parsed.size_multiplier - 1) * Decimal(repr(trust))).quantize(_CENT, ROUND_HALF_EVEN)
    return Synthesis(
        SynthesisSource.LLM, model, parsed.bias, parsed.confidence, multiplier,
        parsed.reasoning or "", weight, agreement, min(1.0, max(0.0, final)), actions, "",
    )  # fmt: skip
