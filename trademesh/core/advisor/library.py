"""The advisor's artifacts on disk: models by version and the calibration in use.

- Models: the shipped defaults, one per timeframe the mesh uses (trademesh/core/advisor/models/
  default-<timeframe>.model.*: SHIPPED_TIMEFRAMES), and every model `trademesh advisor train`
  wrote into the model directory, as `<version>.model.pkl` (the estimator),
  `<version>.model.json` (hash, features, reference statistics, the training report and where
  the bars came from) and `<version>.model.md` (the report in words). A model is named by its
  version or by the path of its .json file; no name is the shipped default of the bars'
  timeframe.
- Calibrations: `<name>.calibration.json` (the artifact the core applies) beside
  `<name>.reliability.json` (its held-out report; optional), as `trademesh advisor calibrate`
  writes them; the shipped default of the timeframe's otherwise.

**A model serves only bars of the timeframe it was trained on** (`serving_model`): its
features (returns, volatility, RSI over 21 bars) and its horizon are counted in bars, so the
same numbers over 1s bars mean something else than over 1m bars. A model of another timeframe
than the advisor's bars, or no shipped model for the bars' timeframe, is refused with the way
out in the message, before anything is decided.

Reading a model's report reads its JSON only; loading it for decisions checks the pickle's
sha256 against the JSON's (trademesh.core.advisor.artifact).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from trademesh.advisor.v1 import messages_pb2 as am
from trademesh.core.advisor.artifact import load_model
from trademesh.core.advisor.engine.calibration import Calibration
from trademesh.core.advisor.engine.model import ModelArtifact
from trademesh.core.advisor.engine.regime import LEGACY_REGIMES, REGIMES, UNKNOWN
from trademesh.core.domain.model import Timeframe
from trademesh.core.platform.errors import Corrupt, InvalidArgument, NotFound, shown
from trademesh.core.platform.parsing import loads_json

__all__ = [
    "SHIPPED_TIMEFRAMES",
    "CalibrationFiles",
    "ModelLibrary",
    "calibration_to_pb",
    "legacy_keys",
    "load_calibration",
    "serving_model",
    "shipped_name",
]

_PACKAGE = "trademesh.core.advisor.models"
# The timeframes a default model ships for: the advisor's default and `trademesh up`'s (1m), and
# the sim's 1s bars the tests' meshes decide on (1s).
SHIPPED_TIMEFRAMES = ("1s", "1m")
DEFAULT_TIMEFRAME = "1m"
_MODEL_JSON = ".model.json"
_METHODS = {
    "identity": am.CALIBRATION_METHOD_IDENTITY,
    "platt": am.CALIBRATION_METHOD_PLATT,
    "isotonic": am.CALIBRATION_METHOD_ISOTONIC,
}


def _read_json(path: Path | Any, what: str) -> dict[str, Any]:
    try:
        data = loads_json(path.read_text(), what)
    except (OSError, ValueError, InvalidArgument) as exc:
        raise Corrupt(f"{what} {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise Corrupt(f"{what} {path}: not a JSON object")
    return data


@dataclass(frozen=True)
class _Entry:
    version: str
    meta: dict[str, Any]
    pickle: Any  # a Path or an importlib Traversable
    shipped: bool


def shipped_name(timeframe: str) -> str:
    """The files' stem of the shipped default of a timeframe: default-1m.model.json, ..."""
    return f"default-{timeframe}"


def _trained_entry(path: Path) -> _Entry:
    meta = _read_json(path, "model")
    pickle = path.with_name(path.name.removesuffix(".json") + ".pkl")
    return _Entry(str(meta.get("version", "")), meta, pickle, False)


def _shipped_entry(timeframe: str) -> _Entry:
    files = resources.files(_PACKAGE)
    stem = shipped_name(timeframe)
    meta = _read_json(files.joinpath(f"{stem}.model.json"), "model")
    return _Entry(str(meta["version"]), meta, files.joinpath(f"{stem}.model.pkl"), True)


class ModelLibrary:
    def __init__(self, directory: Path | None) -> None:
        self.directory = directory
        self.shipped = {timeframe: _shipped_entry(timeframe) for timeframe in SHIPPED_TIMEFRAMES}

    def _trained(self) -> list[_Entry]:
        if self.directory is None or not self.directory.is_dir():
            return []
        found = []
        for path in self.directory.glob(f"*{_MODEL_JSON}"):
            found.append(_trained_entry(path))
        return sorted(found, key=lambda e: (int(e.meta.get("trained_at_ns", 0)), e.version), reverse=True)

    def versions(self) -> list[str]:
        """Every version available, newest first; the shipped defaults last."""
        return [e.version for e in self._trained()] + [e.version for e in self.shipped.values()]

    def entry(self, name: str | None, field: str = "version", timeframe: str = DEFAULT_TIMEFRAME) -> _Entry:
        """By version, by the path of its .model.json, or (None or "") the timeframe's shipped one."""
        if not name:
            return self._shipped(timeframe)
        if name.endswith(_MODEL_JSON):
            path = Path(name)
            if not path.is_file():
                raise InvalidArgument.field(field, f"{shown(name)}: no such model file")
            return _trained_entry(path)
        for entry in [*self._trained(), *self.shipped.values()]:
            if entry.version == name:
                return entry
        raise NotFound(f"no model version {shown(name)}; versions: {', '.join(self.versions())}")

    def load(self, name: str | None, timeframe: str = DEFAULT_TIMEFRAME) -> ModelArtifact:
        entry = self.entry(name, "model", timeframe)
        return load_model(entry.pickle.read_bytes(), json.dumps(entry.meta))

    def to_pb(self, name: str | None) -> am.Model:
        return _model_pb(self.entry(name))

    def _shipped(self, timeframe: str) -> _Entry:
        entry = self.shipped.get(timeframe)
        if entry is None:
            raise InvalidArgument.field(
                "timeframe",
                f"no model ships for {shown(timeframe)} bars (shipped: {', '.join(SHIPPED_TIMEFRAMES)}): "
                f"train one on them (`trademesh advisor train --timeframe {timeframe}`) and serve it with "
                "--model",
            )
        return entry


def serving_model(library: ModelLibrary, name: str | None, timeframe: str | None) -> ModelArtifact:
    """The model for bars of `timeframe` (None: the named model's, else the default 1m): the
    named one, else the timeframe's shipped default. InvalidArgument when the named model was
    trained on another timeframe: its features over these bars would mean nothing."""
    model = library.load(name, timeframe or DEFAULT_TIMEFRAME)
    if timeframe is None or model.timeframe == timeframe:
        return model
    raise InvalidArgument.field(
        "timeframe",
        f"model {model.version} was trained on {model.timeframe} bars, not the {timeframe} bars asked for: "
        f"its features and horizon are counted in bars and mean nothing on another timeframe. Serve it "
        f"with --timeframe {model.timeframe}, or give a model trained on {timeframe} bars "
        f"(`trademesh advisor train --timeframe {timeframe}`; shipped: {', '.join(SHIPPED_TIMEFRAMES)})",
    )


def _model_pb(entry: _Entry) -> am.Model:
    meta = entry.meta
    report = meta.get("report", {})
    walk = report.get("walk_forward", {})
    step = Timeframe.from_label(str(meta.get("timeframe", "1m"))).ns
    coefficients = report.get("standardised_coefficients", {})
    return am.Model(
        version=entry.version,
        sha256=str(meta.get("sha256", "")),
        trained_at_ns=int(meta.get("trained_at_ns", 0)),
        estimator=str(report.get("estimator", "")),
        features=list(meta.get("feature_names", [])),
        report=am.TrainingReport(
            venue=str(meta.get("venue", "")),
            symbol=str(meta.get("symbol", "")),
            since_ns=int(meta.get("since_ns", 0)),
            until_ns=int(meta.get("until_ns", 0)),
            horizon_ns=int(meta.get("horizon_bars", 0)) * step,
            samples=int(report.get("samples", 0)),
            folds=[
                am.FoldScore(
                    fold=i + 1,
                    train_samples=int(f.get("train_samples", 0)),
                    test_samples=int(f.get("samples", 0)),
                    accuracy=_num(f.get("accuracy")),
                    brier=_num(f.get("brier")),
                    roc_auc=_num(f.get("auc")),
                )
                for i, f in enumerate(walk.get("folds", []))
            ],
            features=[
                am.FeatureImportance(feature=name, importance=abs(_num(value)))
                for name, value in sorted(coefficients.items(), key=lambda kv: -abs(_num(kv[1])))
            ],
            summary=" ".join(str(s) for s in report.get("statements", [])),
        ),
        shipped_default=entry.shipped,
    )


def _num(value: Any) -> float:
    return float(value) if isinstance(value, int | float) else math.nan


# ---------------------------------------------------------------- calibration


@dataclass(frozen=True)
class CalibrationFiles:
    calibration: Calibration
    reliability: dict[str, Any] | None  # the held-out report, when it was written beside it
    fitted_at_ns: int
    model_version: str


def load_calibration(path: Path | None, timeframe: str = DEFAULT_TIMEFRAME) -> CalibrationFiles:
    """`<name>.calibration.json` (and its `<name>.reliability.json`), or the shipped default of
    the timeframe (fitted on its shipped model's convictions)."""
    if path is None:
        files = resources.files(_PACKAGE)
        stem = shipped_name(timeframe)
        calibration = Calibration.from_json(files.joinpath(f"{stem}.calibration.json").read_text())
        reliability = _read_json(files.joinpath(f"{stem}.reliability.json"), "reliability report")
        meta = json.loads(files.joinpath(f"{stem}.calibration.json").read_text())
        return CalibrationFiles(calibration, reliability, 0, str(meta.get("model_version", "")))
    if not path.is_file():
        raise InvalidArgument.field("calibration", f"{shown(str(path))}: no such calibration file")
    text = path.read_text()
    calibration = Calibration.from_json(text)
    meta = loads_json(text, "calibration")  # parsed by from_json already: its nesting is bounded
    sibling = path.with_name(path.name.removesuffix(".calibration.json") + ".reliability.json")
    report = _read_json(sibling, "reliability report") if sibling.is_file() else None
    return CalibrationFiles(
        calibration, report, int(meta.get("fitted_at_ns", 0)), str(meta.get("model_version", ""))
    )


def _bins(raw: list[dict[str, Any]]) -> list[am.ReliabilityBin]:
    return [
        am.ReliabilityBin(
            lower=_num(b.get("low")),
            upper=_num(b.get("high")),
            count=int(b.get("count", 0)),
            mean_predicted=_num(b.get("mean_predicted")),
            observed_rate=_num(b.get("observed")),
        )
        for b in raw
    ]


def legacy_keys(calibration: Calibration) -> list[str]:
    """The artifact's calibrators keyed by regimes no decision reads now (the advisor's labels
    before it read Overwatch's classifier): never applied, the fallback serves those decisions."""
    return sorted(set(calibration.by_regime) - set(REGIMES))


def calibration_to_pb(files: CalibrationFiles, regime: str = "") -> am.Calibration:
    """The calibration in use, per regime (one regime's when named): its method, and from the
    reliability report its held-out Brier score and ECE before and after, with the bins."""
    cal = files.calibration
    reports = {str(r["key"]): r for r in (files.reliability or {}).get("regimes", [])}
    keys = [*sorted(set(cal.by_regime) | {k for k in reports if k != "fallback"}), "fallback"]
    if regime:
        # An old decision's regime (LEGACY_REGIMES, or a key of the artifact in use) is asked too:
        # the answer is what a decision of it is calibrated with now.
        if regime not in (*REGIMES, UNKNOWN, "fallback", *LEGACY_REGIMES, *keys):
            known = ", ".join((*REGIMES, UNKNOWN, "fallback"))
            raise InvalidArgument.field("regime", f"{shown(regime)} is not a regime; regimes: {known}")
        keys = [regime]
    regimes = []
    for key in keys:
        method = (cal.fallback if key == "fallback" else cal.calibrator(key)[1]).method.value
        report = reports.get(key, {})
        regimes.append(
            am.RegimeCalibration(
                regime=key,
                method=_METHODS[method],
                samples=int(report.get("fit_samples", 0)) + int(report.get("holdout_samples", 0)),
                brier_before=_num(report.get("brier_raw")),
                brier_after=_num(report.get("brier_after")),
                ece_before=_num(report.get("ece_before")),
                ece_after=_num(report.get("ece_after")),
                bins_before=_bins(report.get("before", [])),
                bins_after=_bins(report.get("after", [])),
            )
        )
    return am.Calibration(
        version=cal.version,
        fitted_at_ns=files.fitted_at_ns,
        model_version=files.model_version,
        regimes=regimes,
    )
