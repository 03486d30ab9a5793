"""Advisor stage 5b: calibrators as the core applies them, and the offline fit (Platt and
isotonic per regime, chosen on held-out Brier) with its reliability report."""

from __future__ import annotations

import math

import numpy as np
import pytest

from trademesh.core.advisor.calibrating import (
    CalibrationSample,
    brier,
    expected_calibration_error,
    fit_calibration,
    reliability_png,
    reliability_table,
    report_markdown,
)
from trademesh.core.advisor.engine.calibration import Calibration, CalibrationMethod, Calibrator, calibrate
from trademesh.core.platform.errors import Corrupt


def overconfident(n: int, seed: int, regime: str = "up.calm") -> list[CalibrationSample]:
    """True probability p; the raw score says p pushed away from 0.5 (overconfident)."""
    rng = np.random.Generator(np.random.PCG64(seed))
    p = rng.uniform(0.2, 0.8, n)
    outcomes = (rng.uniform(0, 1, n) < p).astype(int)
    raw = np.clip(0.5 + (p - 0.5) * 1.6, 0.0, 1.0)
    return [CalibrationSample(regime, float(r), int(o)) for r, o in zip(raw, outcomes, strict=True)]


def test_platt_on_the_logit_with_a_1_and_b_0_is_the_identity() -> None:
    c = Calibrator(CalibrationMethod.PLATT, a=1.0, b=0.0)
    for x in (0.1, 0.5, 0.73):
        assert c.apply(x) == pytest.approx(x)
    shifted = Calibrator(CalibrationMethod.PLATT, a=1.0, b=math.log(3))
    assert shifted.apply(0.5) == pytest.approx(0.75)


def test_isotonic_interpolates_between_steps_and_is_flat_beyond_them() -> None:
    c = Calibrator(CalibrationMethod.ISOTONIC, xs=(0.2, 0.6, 0.8), ys=(0.3, 0.5, 0.9))
    assert c.apply(0.1) == 0.3
    assert c.apply(0.4) == pytest.approx(0.4)
    assert c.apply(0.7) == pytest.approx(0.7)
    assert c.apply(0.95) == 0.9


def test_a_regime_without_its_own_calibrator_uses_the_fallback() -> None:
    cal = Calibration(
        "v1",
        {"up.calm": Calibrator(CalibrationMethod.PLATT, 1.0, math.log(3))},
        Calibrator(CalibrationMethod.IDENTITY),
    )
    own = calibrate(cal, "up.calm", 0.5)
    other = calibrate(cal, "down.volatile", 0.5)
    assert (own.key, own.method, own.calibrated) == ("up.calm", CalibrationMethod.PLATT, 0.75)
    assert (other.key, other.method, other.calibrated) == ("fallback", CalibrationMethod.IDENTITY, 0.5)


def test_the_artifact_round_trips_through_json_and_refuses_garbage() -> None:
    cal = Calibration(
        "v2",
        {
            "up.calm": Calibrator(CalibrationMethod.ISOTONIC, xs=(0.1, 0.9), ys=(0.2, 0.8)),
            "range.calm": Calibrator(CalibrationMethod.PLATT, a=0.5, b=-0.1),
        },
        Calibrator(CalibrationMethod.PLATT, a=0.7, b=0.05),
    )
    again = Calibration.from_json(cal.to_json())
    assert again == cal
    with pytest.raises(Corrupt):
        Calibration.from_json('{"version": "x", "by_regime": {"a": {"method": "magic"}}, "fallback": {}}')


def test_calibration_improves_held_out_brier_on_a_known_miscalibration() -> None:
    samples = overconfident(6000, seed=3)
    cal, report = fit_calibration(samples, version="test", min_samples=500)
    regime = next(r for r in report.regimes if r.key == "up.calm")
    assert regime.chosen in ("platt", "isotonic")
    assert regime.brier_after < regime.brier_raw
    assert regime.ece_after < regime.ece_before
    # And on fresh data from the same process, never seen by the fit:
    fresh = overconfident(4000, seed=4)
    raw = np.asarray([s.raw for s in fresh])
    y = np.asarray([s.outcome for s in fresh], dtype=np.float64)
    after = np.asarray([calibrate(cal, s.regime, s.raw).calibrated for s in fresh])
    assert brier(after, y) < brier(raw, y) - 0.003


def test_the_chosen_method_has_the_lowest_held_out_brier() -> None:
    _, report = fit_calibration(overconfident(3000, seed=5), version="t", min_samples=100)
    for r in report.regimes:
        candidates = {"platt": r.brier_platt, "isotonic": r.brier_isotonic}
        best = min((v, k) for k, v in candidates.items() if v is not None)
        assert r.chosen == (best[1] if best[0] < r.brier_raw else "identity")


def test_already_calibrated_scores_are_left_alone_when_nothing_beats_them() -> None:
    rng = np.random.Generator(np.random.PCG64(8))
    p = rng.uniform(0.3, 0.7, 400)
    samples = [
        CalibrationSample("r", float(x), int(u < x)) for x, u in zip(p, rng.uniform(0, 1, 400), strict=True)
    ]
    _, report = fit_calibration(samples, version="t", min_samples=100)
    for r in report.regimes:
        assert r.brier_after <= r.brier_raw


def test_small_regimes_use_the_fallback() -> None:
    samples = overconfident(3000, seed=6) + overconfident(50, seed=7, regime="down.volatile")
    cal, report = fit_calibration(samples, version="t", min_samples=200)
    assert set(cal.by_regime) == {"up.calm"}
    assert {r.key for r in report.regimes} == {"fallback", "up.calm"}
    assert report.overall.holdout_samples == 900 + 15


def test_reliability_table_and_ece() -> None:
    p = np.asarray([0.05, 0.15, 0.15, 0.95])
    y = np.asarray([0.0, 0.0, 1.0, 1.0])
    table = reliability_table(p, y, 10)
    assert [b.count for b in table] == [1, 2, 0, 0, 0, 0, 0, 0, 0, 1]
    assert table[1].mean_predicted == pytest.approx(0.15) and table[1].observed == 0.5
    # ECE: (1/4)*0.05 + (2/4)*0.35 + (1/4)*0.05
    assert expected_calibration_error(p, y, 10) == pytest.approx(0.2)


def test_report_has_a_table_and_a_png_diagram() -> None:
    _, report = fit_calibration(overconfident(2000, seed=9), version="t", min_samples=100)
    text = report_markdown(report)
    assert "| overall |" in text and "ECE before" in text
    png = reliability_png(report)
    assert png is not None and png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000
