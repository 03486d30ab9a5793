"""A market's regime from its closed bars (trend up / down, range, high volatility, thin
liquidity), pure: no I/O, no clock. One classifier serves every reader, Overwatch and the
advisor's calibration per regime (trademesh.core.advisor.engine.regime), with one config (the default
ClassifierConfig), so both read the same regime of the same bars (docs/overwatch.md)."""

from trademesh.core.domain.regime.classifier import (
    BarInputs,
    Classifier,
    ClassifierReading,
    Features,
    Regime,
    Step,
    bar_inputs,
    step_of,
)
from trademesh.core.domain.regime.config import ClassifierConfig

__all__ = [
    "BarInputs",
    "Classifier",
    "ClassifierConfig",
    "ClassifierReading",
    "Features",
    "Regime",
    "Step",
    "bar_inputs",
    "step_of",
]  # fmt: skip
