"""The default models and calibrations that ship with trademesh (trademesh/core/advisor/models/), one per
timeframe the mesh uses, and how they were made: `python -m trademesh.core.advisor.defaults` rebuilds
them from seeded synthetic bars (trademesh.core.advisor.synthetic): byte for byte on the machine that made
them; elsewhere the model's floats may differ in their last bits (the BLAS), so `--calibrations`
fits only the calibrations again, on the shipped models. Per timeframe (1m: the advisor's default
and `trademesh up`'s; 1s: the sim's 1s bars the tests' meshes decide on):

- the model: trained on 30,000 regime bars of that timeframe, checked on 10,000 bars of the
  sim venue's random walk at that timeframe;
- the calibration: fitted on conviction samples (trademesh.core.advisor.samples) from 40,000 other
  regime bars, then checked on samples from 20,000 random-walk bars.

The seeds are RECIPES'. Files: default-<timeframe>.model.pkl (the estimator), .model.json
(hash, version, timeframe, reference statistics, training report), .model.md (the report in
words: what it can and cannot predict), default-<timeframe>.calibration.json,
.reliability.json / .md / .png. A model serves bars of its own timeframe only
(trademesh.core.advisor.library.serving_model).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from trademesh.core.advisor.artifact import SavedModel, load_model
from trademesh.core.advisor.calibrating import (
    CalibrationSample,
    ReliabilityReport,
    brier,
    fit_calibration,
    reliability_png,
    report_markdown,
)
from trademesh.core.advisor.engine.calibration import Calibration
from trademesh.core.advisor.engine.config import AdvisorConfig
from trademesh.core.advisor.engine.model import ModelArtifact
from trademesh.core.advisor.library import SHIPPED_TIMEFRAMES, shipped_name
from trademesh.core.advisor.samples import conviction_samples
from trademesh.core.advisor.synthetic import random_walk_bars, regime_bars
from trademesh.core.advisor.training import TrainedModel, train_model
from trademesh.core.domain.model import Timeframe

__all__ = [
    "MODELS_DIR",
    "RECIPES",
    "Recipe",
    "build_default",
    "build_defaults",
    "default_calibration",
    "default_model",
    "recalibrate_default",
    "shipped_trained",
]

MODELS_DIR = Path(__file__).parent / "models"
_PACKAGE = "trademesh.core.advisor.models"
# The calibration's name beside the model's: fitted per the regimes of Overwatch's classifier
# (issue 42; the calibrations before it were "cal", per the advisor's own regimes).
CALIBRATION_NAME = "cal-overwatch"


@dataclass(frozen=True)
class Recipe:
    """The seeds of one timeframe's default: training bars, their random-walk check, the
    calibration's bars and its random-walk check."""

    timeframe: Timeframe
    train_seed: int
    check_seed: int
    calibration_seed: int
    calibration_check_seed: int


RECIPES = {
    "1m": Recipe(Timeframe.M1, 11, 12, 21, 22),
    "1s": Recipe(Timeframe.S1, 13, 14, 23, 24),
}
assert tuple(sorted(RECIPES)) == tuple(sorted(SHIPPED_TIMEFRAMES))


def default_model(timeframe: str = "1m") -> ModelArtifact:
    files = resources.files(_PACKAGE)
    stem = shipped_name(timeframe)
    data = files.joinpath(f"{stem}.model.pkl").read_bytes()
    return load_model(data, files.joinpath(f"{stem}.model.json").read_text())


def default_calibration(timeframe: str = "1m") -> Calibration:
    text = resources.files(_PACKAGE).joinpath(f"{shipped_name(timeframe)}.calibration.json").read_text()
    return Calibration.from_json(text)


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
    timeframe = trained.artifact.timeframe
    mean = r["walk_forward"]["mean"]
    lines = [
        f"# Default model {trained.artifact.version}",
        "",
        f"- sha256: `{trained.artifact.sha256}`",
        f"- timeframe: {timeframe} bars (the advisor serves it on {timeframe} bars only)",
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


def _train(recipe: Recipe) -> TrainedModel:
    tf = recipe.timeframe
    label = tf.label
    return train_model(
        regime_bars(30_000, recipe.train_seed, timeframe=tf),
        name=shipped_name(label),
        timeframe=label,
        trained_on=f"30,000 synthetic {label} regime bars (trademesh.core.advisor.synthetic.regime_bars, "
        f"seed {recipe.train_seed})",
        checks={
            f"the sim venue's random walk (10,000 {label} bars, seed {recipe.check_seed})": random_walk_bars(
                10_000, recipe.check_seed, timeframe=tf
            )
        },
    )


Files = dict[str, str | bytes | None]  # by the name's suffix: ".calibration.json"


def _calibrated(recipe: Recipe, trained: TrainedModel) -> tuple[Files, ReliabilityReport]:
    """The calibration of the model's convictions, per the regimes a live decision reads
    (trademesh.core.advisor.samples), its reliability report and the model's report in words (which quotes
    the calibration's random-walk check): the files of one timeframe's default but the model's."""
    artifact, config, name = trained.artifact, AdvisorConfig(), shipped_name(recipe.timeframe.label)
    bars = regime_bars(40_000, recipe.calibration_seed, timeframe=recipe.timeframe)
    calibration, report = fit_calibration(
        conviction_samples(bars, artifact, config, timeframe=recipe.timeframe),
        version=f"{name}-{CALIBRATION_NAME}.{artifact.sha256[:12]}",
    )
    walk = random_walk_bars(20_000, recipe.calibration_check_seed, timeframe=recipe.timeframe)
    walk_samples = conviction_samples(walk, artifact, config, timeframe=recipe.timeframe)
    check = _random_walk_check(walk_samples, calibration)
    cal = {**json.loads(calibration.to_json()), "model_version": artifact.version}
    reliability = {**report.to_dict(), "random_walk_check": check}
    return {
        ".model.md": _model_markdown(trained, check),
        ".calibration.json": json.dumps(cal, indent=1, sort_keys=True) + "\n",
        ".reliability.json": json.dumps(reliability, indent=1, sort_keys=True) + "\n",
        ".reliability.md": report_markdown(report),
        ".reliability.png": reliability_png(report),
    }, report


def _write(name: str, files: Files, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for suffix, content in files.items():
        if isinstance(content, bytes):
            (out / f"{name}{suffix}").write_bytes(content)
        elif content is not None:
            (out / f"{name}{suffix}").write_text(content)


def build_default(timeframe: str, out: Path = MODELS_DIR) -> tuple[TrainedModel, ReliabilityReport]:
    """One timeframe's default model and calibration, written into `out`."""
    recipe = RECIPES[timeframe]
    trained = _train(recipe)
    files, report = _calibrated(recipe, trained)
    model: Files = {".model.pkl": trained.saved.model_bytes, ".model.json": trained.saved.meta_json}
    _write(shipped_name(timeframe), {**model, **files}, out)
    return trained, report


def shipped_trained(timeframe: str) -> TrainedModel:
    """The shipped default model of the timeframe, as its training made it."""
    files, stem = resources.files(_PACKAGE), shipped_name(timeframe)
    model_bytes = files.joinpath(f"{stem}.model.pkl").read_bytes()
    meta_json = files.joinpath(f"{stem}.model.json").read_text()
    report: dict[str, Any] = json.loads(meta_json)["report"]
    return TrainedModel(load_model(model_bytes, meta_json), SavedModel(model_bytes, meta_json), report)


def recalibrate_default(timeframe: str, out: Path = MODELS_DIR) -> ReliabilityReport:
    """The shipped model's calibration fitted again (the model's files as they are): what a change
    to the samples (their regimes) needs. The training's floats differ in their last bits from one
    machine's BLAS to another's, so a model trained again here is not the shipped one byte for
    byte, and its version (its hash) would change for nothing."""
    files, report = _calibrated(RECIPES[timeframe], shipped_trained(timeframe))
    _write(shipped_name(timeframe), files, out)
    return report


def build_defaults(out: Path = MODELS_DIR) -> list[TrainedModel]:
    """Every shipped timeframe's default."""
    return [build_default(timeframe, out)[0] for timeframe in SHIPPED_TIMEFRAMES]


def _main(args: list[str]) -> None:
    """`python -m trademesh.core.advisor.defaults [--calibrations] [OUT]`: every default, or with
    `--calibrations` the shipped models' calibrations only, into OUT (trademesh/core/advisor/models)."""
    out = Path(next((a for a in args if not a.startswith("--")), MODELS_DIR))
    if "--calibrations" in args:
        for timeframe in SHIPPED_TIMEFRAMES:
            print(f"calibrated {recalibrate_default(timeframe, out).version}")
        return
    for built in build_defaults(out):
        print(f"built {built.artifact.version}")


if __name__ == "__main__":
    _main(sys.argv[1:])
