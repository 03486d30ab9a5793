"""The advisor's start (issue 57 item 5; docs/advisor-service.md, "Restarting"): the shipped model is
served from the fitted numbers its JSON holds, without unpickling it (which imported
scikit-learn and SciPy: most of a 9-16 s start on a loaded machine), and the LLM's modules
(openai, mcp) are imported only when the LLM is on. The numbers score as the fitted pipeline does.
"""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import resources

import numpy as np
import pytest

from trademesh.core.advisor.artifact import load_model
from trademesh.core.advisor.engine.features import compute_features
from trademesh.core.advisor.engine.model import LinearModel
from trademesh.core.advisor.library import SHIPPED_TIMEFRAMES, shipped_name
from trademesh.core.advisor.synthetic import regime_bars
from trademesh.core.advisor.training import train_model
from trademesh.core.platform.errors import Corrupt

_HEAVY = ("sklearn", "scipy", "openai", "mcp")


def _files(timeframe: str) -> tuple[bytes, str]:
    files, stem = resources.files("trademesh.core.advisor.models"), shipped_name(timeframe)
    return files.joinpath(f"{stem}.model.pkl").read_bytes(), files.joinpath(f"{stem}.model.json").read_text()


def test_the_advisor_starts_without_scikit_learn_scipy_or_the_llms_modules() -> None:
    # What `trademesh advisor` imports and loads before it serves, without the LLM.
    script = (
        "import sys, trademesh.core.cli, trademesh.core.advisor.app\n"
        "from trademesh.core.advisor.library import ModelLibrary, serving_model\n"
        "model = serving_model(ModelLibrary(None), None, '1m')\n"
        f"print(sorted(m for m in {_HEAVY!r} if m in sys.modules))\n"
    )
    found = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    assert found.stdout.strip() == "[]", found.stderr


@pytest.mark.parametrize("timeframe", SHIPPED_TIMEFRAMES)
def test_a_shipped_model_served_from_its_numbers_scores_as_its_fitted_pipeline(timeframe: str) -> None:
    data, meta = _files(timeframe)
    served, fitted = load_model(data, meta), load_model(data, meta, unpickle=True)
    assert isinstance(served.estimator, LinearModel) and not isinstance(fitted.estimator, LinearModel)
    assert served.version == fitted.version
    bars = regime_bars(400, 5)
    for t in range(30, 400, 23):
        window = (col[t - 20 : t + 1].tolist() for col in (bars.close, bars.high, bars.low, bars.volume))
        features = compute_features(*window)
        assert features is not None
        row = np.asarray([features.values])
        expected = float(fitted.estimator.predict_proba(row)[0, 1])
        assert float(served.estimator.predict_proba(row)[0, 1]) == pytest.approx(expected, abs=1e-12)
        assert served.score(features) == fitted.score(features)


def test_training_writes_the_fitted_numbers_beside_the_pickle() -> None:
    trained = train_model(regime_bars(1500, 8), name="n", timeframe="1m", trained_on="x", folds=2)
    meta = json.loads(trained.saved.meta_json)
    assert set(meta["linear"]) == {"mean", "scale", "coef", "intercept"}
    loaded = load_model(trained.saved.model_bytes, trained.saved.meta_json)
    assert loaded.estimator == LinearModel.from_json(meta["linear"])


def test_numbers_of_unequal_lengths_are_refused() -> None:
    data, meta = _files("1m")
    broken = json.loads(meta)
    broken["linear"]["coef"] = broken["linear"]["coef"][:-1]
    with pytest.raises(Corrupt, match="differ in length"):
        load_model(data, json.dumps(broken))
