"""The advisor's offline library: dataset and labels, walk-forward splits, the versioned
artifact (hash checked on load), honest out-of-sample metrics, and the shipped defaults."""

from __future__ import annotations

import json

import numpy as np
import pytest

from trademesh.core.advisor.artifact import load_model, sha256_hex
from trademesh.core.advisor.defaults import MODELS_DIR, default_calibration, default_model
from trademesh.core.advisor.engine.config import AdvisorConfig
from trademesh.core.advisor.engine.features import FEATURE_NAMES, LOOKBACK, BarSeries
from trademesh.core.advisor.engine.regime import REGIMES, UNKNOWN
from trademesh.core.advisor.library import SHIPPED_TIMEFRAMES, load_calibration
from trademesh.core.advisor.samples import conviction_samples
from trademesh.core.advisor.synthetic import random_walk_bars, regime_bars
from trademesh.core.advisor.training import TrainedModel, build_dataset, train_model, walk_forward_splits
from trademesh.core.platform.errors import Corrupt


def test_labels_are_the_forward_move_over_the_horizon() -> None:
    close = tuple(float(100 + (i % 7)) for i in range(60))
    ds = build_dataset(BarSeries(close, close, close, tuple(1.0 for _ in close)), horizon=3)
    assert ds.x.shape == (60 - LOOKBACK + 1 - 3, len(FEATURE_NAMES))
    for row, t in enumerate(ds.bar_index):
        assert ds.y[row] == (1 if close[t + 3] > close[t] else 0)
    assert ds.bar_index[0] == LOOKBACK - 1 and ds.bar_index[-1] == 60 - 3 - 1


def test_walk_forward_trains_only_on_the_past_with_an_embargo() -> None:
    splits = walk_forward_splits(1200, folds=5, embargo=5)
    assert len(splits) == 5
    for train, test in splits:
        assert train.start == 0
        assert test.start - train.stop == 5  # labels of the last 5 train samples would see the test block
    assert [test.start for _, test in splits] == [200, 400, 600, 800, 1000]
    assert splits[-1][1].stop == 1200
    with pytest.raises(ValueError):
        walk_forward_splits(10, folds=5, embargo=5)


@pytest.fixture(scope="module")
def trained() -> TrainedModel:
    return train_model(
        regime_bars(4000, 3), name="t", timeframe="1m", trained_on="test bars", folds=3,
        checks={"random walk": random_walk_bars(2000, 4)},
    )  # fmt: skip


def test_the_report_carries_out_of_sample_metrics_and_statements(trained: TrainedModel) -> None:
    report = trained.report
    folds = report["walk_forward"]["folds"]
    assert len(folds) == 3
    assert all(0.0 <= f["auc"] <= 1.0 and f["samples"] > 0 for f in folds)
    assert report["checks"]["random walk"]["auc"] == pytest.approx(0.5, abs=0.06)
    assert any("random walk" in s for s in report["statements"])
    assert set(report["standardised_coefficients"]) == set(FEATURE_NAMES)


def test_the_artifact_round_trips_and_is_named_by_its_hash(trained: TrainedModel) -> None:
    artifact, saved = trained.artifact, trained.saved
    assert artifact.sha256 == sha256_hex(saved.model_bytes)
    assert artifact.version == f"t.{artifact.sha256[:12]}"
    loaded = load_model(saved.model_bytes, saved.meta_json)
    assert loaded.version == artifact.version and loaded.reference == artifact.reference
    assert json.loads(saved.meta_json)["report"]["samples"] == trained.report["samples"]


def test_changed_bytes_are_refused(trained: TrainedModel) -> None:
    saved = trained.saved
    with pytest.raises(Corrupt, match="do not match"):
        load_model(saved.model_bytes[:-1] + b"\x00", saved.meta_json)
    with pytest.raises(Corrupt):
        load_model(saved.model_bytes, "{}")


def test_training_is_reproducible_byte_for_byte() -> None:
    a = train_model(regime_bars(1500, 8), name="r", timeframe="1m", trained_on="x", folds=2)
    b = train_model(regime_bars(1500, 8), name="r", timeframe="1m", trained_on="x", folds=2)
    assert a.saved == b.saved


def test_synthetic_bars_are_seeded_and_well_formed() -> None:
    a, b = regime_bars(500, 1), regime_bars(500, 1)
    assert np.array_equal(a.close, b.close) and not np.array_equal(a.close, regime_bars(500, 2).close)
    assert np.all(a.high >= np.maximum(a.open, a.close)) and np.all(a.low <= np.minimum(a.open, a.close))
    assert np.all(np.diff(a.open_time_ns) == 60_000_000_000)


@pytest.mark.parametrize("timeframe", SHIPPED_TIMEFRAMES)
def test_a_default_model_and_calibration_ship_per_timeframe_and_match_their_report(timeframe: str) -> None:
    model = default_model(timeframe)
    assert model.timeframe == timeframe
    assert model.version.startswith(f"default-{timeframe}.") and model.sha256.startswith(model.version[-12:])
    calibration = default_calibration(timeframe)
    assert calibration.version == f"default-{timeframe}-cal-overwatch.{model.sha256[:12]}"
    # Fitted per the regimes of Overwatch's classifier (none for unknown: the fallback's).
    assert calibration.by_regime and set(calibration.by_regime) <= set(REGIMES)
    assert load_calibration(None, timeframe).model_version == model.version
    report = (MODELS_DIR / f"default-{timeframe}.model.md").read_text()
    assert "What it can and cannot predict" in report
    assert f"Trained on {timeframe} bars, it serves {timeframe} bars only" in report
    assert f"timeframe: {timeframe} bars" in report


def test_the_shipped_models_differ_by_timeframe() -> None:
    one_second, one_minute = default_model("1s"), default_model("1m")
    assert one_second.sha256 != one_minute.sha256
    # The same features over 1s bars are another scale: 1s volatility is ~sqrt(60) times smaller.
    assert one_second.reference.means[3] < one_minute.reference.means[3] / 4


def test_calibration_samples_replay_signals_through_the_live_stages() -> None:
    bars = regime_bars(3000, 5)
    samples = conviction_samples(bars, default_model(), AdvisorConfig(), timeframe=bars.timeframe)
    assert len(samples) > 100
    assert all(0.0 <= s.raw <= 1.0 and s.outcome in (0, 1) for s in samples)
    # Labelled with Overwatch's regimes: unknown only in the classifier's 100-bar warm-up (a
    # signal every 5 bars at most), then regimes of the bars, several of them.
    regimes = [s.regime for s in samples]
    assert set(regimes) <= {*REGIMES, UNKNOWN} and len(set(regimes) - {UNKNOWN}) >= 3
    assert 0 < regimes.count(UNKNOWN) <= 100 // 5 and UNKNOWN not in regimes[regimes.count(UNKNOWN) :]
