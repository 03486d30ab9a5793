"""A market's regime from its closed bars (trend up / down, range, high volatility, thin
liquidity), pure: no I/O, no clock. One classifier serves every reader, Overwatch and (next)
the advisor's calibration per regime, so both read the same regime (docs/overwatch.md)."""

from core.foundations.regime.classifier import Classifier, Features, Reading, Regime
from core.foundations.regime.config import ClassifierConfig

__all__ = ["Classifier", "ClassifierConfig", "Features", "Reading", "Regime"]
