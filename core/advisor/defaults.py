"""The default model and calibration that ship with trademesh (core/advisor/models/), and how
they were made: `python -m core.advisor.defaults` rebuilds them, byte for byte, from seeded
synthetic bars (core.advisor.synthetic):

- the model: trained on 30,000 one-minute regime bars (seed 11), checked on 10,000 bars of the
  sim venue's random walk (seed 12);
- the calibration: fitted on conviction samples (core.advisor.samples) from 40,000 other
  regime bars (seed 21), then checked on samples from 20,000 random-walk bars (seed 22).

Files: default.model.pkl (the estimator), default.model.json (hash, version, reference
statistics, training report), default.model.md (the report in words), default.calibration.json,
default.reliability.json / .md / .png.
"""

from __future__ import annotations

import json
import sys
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from core.advisor.artifact import load_model
from core.advisor.calibrating import (
    CalibrationSample,
    ReliabilityReport,
    brier,
    fit_calibration,
    reliability_png,
    report_markdown,
)
from core.advisor.engine.calibration import Calibration
from core.advisor.engine.config import AdvisorConfig
from core.advisor.engine.model import ModelArtifact
from core.advisor.samples import conviction_samples
from core.advisor.synthetic import random_walk_bars, regime_bars
from core.advisor.training import TrainedModel, train_model

__all__ = ["MODELS_DIR", "build_defaults", "default_calibration", "default_model"]

MODELS_DIR = Path(__file__).parent / "models"
_PACKAGE = "core.advisor.models"


def default_model() -> ModelArtifact:
    files = resources.files(_PACKAGE)
    data = files.joinpath("default.model.pkl").read_bytes()
    return load_model(data, files.joinpath("default.model.json").read_text())


def default_calibration() -> Calibration:
    return Calibration.from_json(resources.files(_PACKAGE).joinpath("default.calibration.json").read_text())


def _random_walk_check(samples: list[CalibrationSample], calibration: Calibration) -> dict[str, Any]:
    raw = np.asarray([s.raw for s in samples])
    y = np.asarray([s.outcome for s in samples], dtype=np.float64)
    after = np.asarray([calibration.calibrator(s.regime)[1].apply(s.raw) for s in samples])
    return {
        "samples": len(samples),
        "hit_rate": round(float(y.mean()), 6),
        "brier_raw": round(brier(raw, y), 6),
        "brier_calibrated": round(brier(after, y), 6),
        "brier_base_rate": round(brier(np.full(len(y), y.mean()), y), 6),
    }


def _model_markdown(trained: TrainedModel, check: dict[str, Any]) -> str:
    r = trained.report
    mean = r["walk_forward"]["mean"]
    lines = [
        f"# Default model {trained.artifact.version}",
        "",
        f"- sha256: `{trained.artifact.sha256}`",
        f"- trained on: {r['trained_on']}",
        f"- {r['samples']} samples; label: {r['label']}; estimator: {r['estimator']}",
        f"- walk-forward (5 folds, embargo {r['walk_forward']['embargo_samples']}): AUC {mean['auc']}, "
        f"Brier {mean['brier']} vs {mean['brier_baseline']} for the base rate, accuracy {mean['accuracy']}",
        "",
        "## What it can and cannot predict",
        "",
        *[f"- {s}" for s in r["statements"]],
        f"- Calibrated per regime and replayed on the sim's random walk ({check['samples']} signals): Brier "
        f"{check['brier_calibrated']} calibrated vs {check['brier_base_rate']} for the hit rate itself "
        f"({check['hit_rate']}): on sim, the advisor's conviction carries no information about the outcome, "
        "and decisions there are as good as the detector's signals and the validation rules.",
        "",
    ]
    return "\n".join(lines)


def build_defaults(out: Path = MODELS_DIR) -> tuple[TrainedModel, ReliabilityReport]:
    config = AdvisorConfig()
    trained = train_model(
        regime_bars(30_000, 11),
        name="default",
        timeframe="1m",
        trained_on="30,000 synthetic 1m regime bars (core.advisor.synthetic.regime_bars, seed 11)",
        checks={"the sim venue's random walk (10,000 1m bars, seed 12)": random_walk_bars(10_000, 12)},
    )
    samples = conviction_samples(regime_bars(40_000, 21), trained.artifact, config)
    calibration, report = fit_calibration(samples, version=f"default-cal.{trained.artifact.sha256[:12]}")
    check = _random_walk_check(
        conviction_samples(random_walk_bars(20_000, 22), trained.artifact, config), calibration
    )
    out.mkdir(parents=True, exist_ok=True)
    (out / "default.model.pkl").write_bytes(trained.saved.model_bytes)
    (out / "default.model.json").write_text(trained.saved.meta_json)
    (out / "default.model.md").write_text(_model_markdown(trained, check))
    (out / "default.calibration.json").write_text(calibration.to_json() + "\n")
    reliability = {**report.to_dict(), "random_walk_check": check}
    (out / "default.reliability.json").write_text(json.dumps(reliability, indent=1, sort_keys=True) + "\n")
    (out / "default.reliability.md").write_text(report_markdown(report))
    png = reliability_png(report)
    if png is not None:
        (out / "default.reliability.png").write_bytes(png)
    return trained, report


if __name__ == "__main__":
    built, _ = build_defaults(Path(sys.argv[1]) if len(sys.argv) > 1 else MODELS_DIR)
    print(f"built {built.artifact.version}")
