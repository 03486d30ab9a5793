"""Offline training of the advisor's model: features from bars (engine.features, the function
live decisions use), labels from forward returns, walk-forward evaluation, a versioned
artifact with a training report whose metrics are all out-of-sample.

- label: 1 when the close `horizon` bars on is above the close now, else 0 (the model's output
  is P(up), the core turns it into P(the signal's direction));
- walk-forward: the samples split into folds + 1 blocks in time order; fold k trains on every
  sample before block k + 1 (less an embargo of `horizon` samples, whose labels would look into
  the test block) and tests on block k + 1;
- the final model is fitted on every sample; its report carries the folds' metrics (never the
  fit's own), and the metrics on any extra bar sets given as checks (the sim's random walk).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import numpy.typing as npt

from trademesh.core.advisor.artifact import SavedModel, dump_model
from trademesh.core.advisor.engine.features import FEATURE_NAMES, LOOKBACK, compute_features
from trademesh.core.advisor.engine.model import FeatureReference, ModelArtifact
from trademesh.core.domain.model import Timeframe

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

__all__ = [
    "BarArrays",
    "Dataset",
    "TrainedModel",
    "build_dataset",
    "make_estimator",
    "score_predictions",
    "train_model",
    "walk_forward_splits",
]


class BarArrays(Protocol):
    """Bars as columns, oldest first (engine.features.BarSeries, synthetic.SyntheticBars)."""

    @property
    def close(self) -> Sequence[float] | npt.NDArray[np.float64]: ...
    @property
    def high(self) -> Sequence[float] | npt.NDArray[np.float64]: ...
    @property
    def low(self) -> Sequence[float] | npt.NDArray[np.float64]: ...
    @property
    def volume(self) -> Sequence[float] | npt.NDArray[np.float64]: ...


@dataclass(frozen=True)
class Dataset:
    x: npt.NDArray[np.float64]  # samples x FEATURE_NAMES
    y: npt.NDArray[np.int64]
    bar_index: npt.NDArray[np.int64]  # the bar each sample was taken at


def _floats(column: Sequence[float] | npt.NDArray[np.float64]) -> list[float]:
    return [float(v) for v in column]


def build_dataset(bars: BarArrays, horizon: int) -> Dataset:
    close, high, low, volume = (_floats(c) for c in (bars.close, bars.high, bars.low, bars.volume))
    rows, labels, index = [], [], []
    for t in range(LOOKBACK - 1, len(close) - horizon):
        window = slice(t - LOOKBACK + 1, t + 1)
        features = compute_features(close[window], high[window], low[window], volume[window])
        if features is None:
            continue
        rows.append(features.values)
        labels.append(1 if close[t + horizon] > close[t] else 0)
        index.append(t)
    x = np.asarray(rows, dtype=np.float64).reshape(-1, len(FEATURE_NAMES))
    return Dataset(x, np.asarray(labels, dtype=np.int64), np.asarray(index, dtype=np.int64))


def walk_forward_splits(n: int, folds: int, embargo: int) -> list[tuple[range, range]]:
    """(train, test) index ranges, expanding train windows, each test block after its train."""
    block = n // (folds + 1)
    if folds < 1 or block <= embargo:
        raise ValueError(
            f"{n} samples are too few for {folds} walk-forward folds with an embargo of {embargo}"
        )
    splits = []
    for k in range(1, folds + 1):
        test_start = k * block
        test_stop = n if k == folds else test_start + block
        splits.append((range(0, test_start - embargo), range(test_start, test_stop)))
    return splits


def make_estimator(c: float = 1.0) -> Pipeline:
    # scikit-learn is imported by what uses it, not with the module (as in calibrating.py).
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    return Pipeline([("scale", StandardScaler()), ("model", LogisticRegression(C=c, max_iter=1000))])


def score_predictions(
    y: npt.NDArray[np.int64], p: npt.NDArray[np.float64], train_base_rate: float
) -> dict[str, float]:
    """Out-of-sample metrics, with the Brier score of always predicting the train base rate."""
    from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score

    both = len(set(y.tolist())) == 2
    return {
        "samples": float(len(y)),
        "base_rate": round(float(y.mean()), 6),
        "auc": round(float(roc_auc_score(y, p)), 6) if both else float("nan"),
        "brier": round(float(brier_score_loss(y, p)), 6),
        "brier_baseline": round(float(np.mean((train_base_rate - y) ** 2)), 6),
        "log_loss": round(float(log_loss(y, p, labels=[0, 1])), 6),
        "accuracy": round(float(np.mean((p >= 0.5) == (y == 1))), 6),
    }


@dataclass(frozen=True)
class TrainedModel:
    artifact: ModelArtifact
    saved: SavedModel
    report: dict[str, Any]


def _folds(ds: Dataset, folds: int, horizon: int, c: float) -> list[dict[str, float]]:
    results = []
    for train, test in walk_forward_splits(len(ds.y), folds, horizon):
        estimator = make_estimator(c).fit(ds.x[train.start : train.stop], ds.y[train.start : train.stop])
        p = estimator.predict_proba(ds.x[test.start : test.stop])[:, 1]
        base = float(ds.y[train.start : train.stop].mean())
        metrics = score_predictions(ds.y[test.start : test.stop], p, base)
        results.append({"train_samples": float(len(train)), **metrics})
    return results


def _mean(results: list[dict[str, float]], key: str) -> float:
    return round(float(np.mean([r[key] for r in results])), 6)


def _span(bars: int, timeframe: str) -> str:
    """How long `bars` bars of the timeframe last, in words: 21 s, 21 min, 5 h."""
    seconds = bars * Timeframe.from_label(timeframe).value
    if seconds < 120:
        return f"{seconds} s"
    return f"{seconds // 60} min" if seconds < 7200 else f"{seconds // 3600} h"


def _statements(
    summary: dict[str, float], checks: dict[str, dict[str, float]], horizon: int, timeframe: str
) -> list[str]:
    auc, skill = summary["auc"], summary["brier_skill"]
    if auc >= 0.55 and skill > 0:
        found = f"it predicts the {horizon}-bar direction better than chance on its training process"
    elif auc >= 0.52:
        found = f"it predicts the {horizon}-bar direction only slightly better than chance"
    else:
        found = f"it does not predict the {horizon}-bar direction better than chance"
    lines = [f"Walk-forward AUC {auc}, Brier skill {skill} over the base rate: {found}."]
    for name, m in checks.items():
        verdict = "no skill" if m["auc"] < 0.52 else "some skill"
        lines.append(
            f"On {name}: AUC {m['auc']}, Brier {m['brier']} vs {m['brier_baseline']} "
            f"for the base rate ({verdict})."
        )
    lines.append(
        f"It sees only the last {LOOKBACK} bars' prices and volumes ({_span(LOOKBACK, timeframe)} of "
        f"{timeframe} bars) and predicts {_span(horizon, timeframe)} ahead: it cannot know news, order "
        "flow, funding, other markets or anything after the bar; its probabilities are raw until "
        "calibrated per regime."
    )
    lines.append(
        f"Trained on {timeframe} bars, it serves {timeframe} bars only: its features and horizon are "
        "counted in bars, so over bars of another timeframe they mean something else, and the advisor "
        "refuses it there."
    )
    return lines


def train_model(
    bars: BarArrays,
    *,
    name: str,
    timeframe: str,
    trained_on: str,
    horizon: int = 5,
    folds: int = 5,
    c: float = 1.0,
    checks: Mapping[str, BarArrays] | None = None,
) -> TrainedModel:
    ds = build_dataset(bars, horizon)
    fold_results = _folds(ds, folds, horizon, c)
    estimator = make_estimator(c).fit(ds.x, ds.y)
    check_results = {}
    for check_name, check_bars in (checks or {}).items():
        cds = build_dataset(check_bars, horizon)
        p = estimator.predict_proba(cds.x)[:, 1]
        check_results[check_name] = score_predictions(cds.y, p, float(ds.y.mean()))
    summary = {
        key: _mean(fold_results, key) for key in ("auc", "brier", "brier_baseline", "log_loss", "accuracy")
    }
    summary["brier_skill"] = round(1.0 - summary["brier"] / summary["brier_baseline"], 6)
    coefficients = estimator.named_steps["model"].coef_[0]
    report: dict[str, Any] = {
        "trained_on": trained_on,
        "samples": len(ds.y),
        "horizon_bars": horizon,
        "label": f"close {horizon} bars on > close now",
        "estimator": f"StandardScaler + LogisticRegression(C={c})",
        "walk_forward": {"folds": fold_results, "mean": summary, "embargo_samples": horizon},
        "checks": check_results,
        "standardised_coefficients": {
            n: round(float(v), 6) for n, v in zip(FEATURE_NAMES, coefficients, strict=True)
        },
        "statements": _statements(summary, check_results, horizon, timeframe),
    }
    reference = FeatureReference(
        tuple(round(float(v), 12) for v in ds.x.mean(axis=0)),
        tuple(round(float(v), 12) for v in ds.x.std(axis=0)),
    )
    artifact, saved = dump_model(
        estimator, name=name, horizon_bars=horizon, timeframe=timeframe, feature_names=FEATURE_NAMES,
        reference=reference, report=report,
    )  # fmt: skip
    return TrainedModel(artifact, saved, report)
