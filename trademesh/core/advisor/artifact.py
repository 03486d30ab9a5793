"""The model artifact on disk: the fitted estimator's pickle bytes, and a JSON file with its
sha256, version, features, training-data reference statistics and the training report.

`load_model` refuses bytes whose hash is not the one recorded (a truncated or swapped file):
unpickling runs code, so only artifacts this project wrote, with a matching hash, are loaded.

A scaler-plus-logistic model (what trademesh.core.advisor.training fits) also has its fitted numbers in the
JSON (`linear`), and is served from them without unpickling: the unpickling imported
scikit-learn and SciPy, 60-70% of the advisor's start (docs/advisor-service.md, "Restarting").
"""

from __future__ import annotations

import hashlib
import json
import pickle
from dataclasses import dataclass
from typing import Any

from trademesh.core.advisor.engine.model import (
    Estimator,
    FeatureReference,
    LinearModel,
    ModelArtifact,
    linear_of,
)
from trademesh.core.platform.errors import Corrupt

__all__ = ["SavedModel", "dump_model", "load_model", "sha256_hex"]


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class SavedModel:
    model_bytes: bytes
    meta_json: str


def dump_model(
    estimator: Estimator,
    *,
    name: str,
    horizon_bars: int,
    timeframe: str,
    feature_names: tuple[str, ...],
    reference: FeatureReference,
    report: dict[str, Any],
) -> tuple[ModelArtifact, SavedModel]:
    """The artifact and its two files' contents; the version is the name and the hash's head."""
    data = pickle.dumps(estimator, protocol=5)
    digest = sha256_hex(data)
    version = f"{name}.{digest[:12]}"
    meta = {
        "version": version,
        "sha256": digest,
        "horizon_bars": horizon_bars,
        "timeframe": timeframe,
        "feature_names": list(feature_names),
        "reference": {"means": list(reference.means), "stds": list(reference.stds)},
        "report": report,
    }
    linear = linear_of(estimator)
    if linear is not None:
        meta["linear"] = linear.to_json()
    artifact = ModelArtifact(version, digest, horizon_bars, timeframe, feature_names, reference, estimator)
    return artifact, SavedModel(data, json.dumps(meta, indent=1, sort_keys=True) + "\n")


def load_model(model_bytes: bytes, meta_json: str, *, unpickle: bool = False) -> ModelArtifact:
    """The model, from its JSON's numbers when it has them (unless `unpickle`: the estimator as
    it was fitted, what a check of those numbers compares with)."""
    try:
        meta = json.loads(meta_json)
        digest = str(meta["sha256"])
    except (ValueError, KeyError, TypeError) as exc:
        raise Corrupt(f"model metadata: {exc}") from exc
    if sha256_hex(model_bytes) != digest:
        raise Corrupt(f"model bytes do not match the recorded sha256 {digest[:12]}...")
    try:
        estimator = _estimator(model_bytes, meta, unpickle)
        reference = FeatureReference(tuple(meta["reference"]["means"]), tuple(meta["reference"]["stds"]))
        return ModelArtifact(
            str(meta["version"]), digest, int(meta["horizon_bars"]), str(meta["timeframe"]),
            tuple(meta["feature_names"]), reference, estimator,
        )  # fmt: skip
    except (pickle.UnpicklingError, ValueError, KeyError, TypeError, AttributeError, ImportError) as exc:
        raise Corrupt(f"model {digest[:12]}: {exc}") from exc


def _estimator(model_bytes: bytes, meta: dict[str, Any], unpickle: bool) -> Estimator:
    linear = meta.get("linear")
    if linear is None or unpickle:
        estimator: Estimator = pickle.loads(model_bytes)
        return estimator
    if not isinstance(linear, dict):
        raise ValueError("linear: not a JSON object")
    return LinearModel.from_json(linear)
