"""What a sweep's fork server imports once before it forks the workers (trademesh.core.backtest.runners):
the trial's modules, and the classes of the advisor's shipped models. A worker unpickles its
model at its first trial, which imports those classes (scikit-learn, with scipy: a second of
CPU); imported here, every worker forked after finds them imported.

Imported for that alone: the models are loaded to import their classes and then dropped.
"""

from __future__ import annotations

import contextlib

import trademesh.core.backtest.trial  # noqa: F401 (the trial's modules, for the workers)
from trademesh.core.advisor.replay import SHIPPED_TIMEFRAMES
from trademesh.core.backtest.advise import load_advisor_model
from trademesh.core.platform.errors import TrademeshError

# A model that does not load fails its trials, which say why; the fork server must not die of it.
with contextlib.suppress(TrademeshError):
    for _timeframe in SHIPPED_TIMEFRAMES:
        load_advisor_model(None, _timeframe)
