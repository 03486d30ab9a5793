"""Advisor stages 3-5 on their own: features, rules, the model and its attribution,
conviction (the regime: test_advisor_regime.py)."""

from __future__ import annotations

import math
from decimal import Decimal

import numpy as np
import pytest

from tests.advisor_support import NOW_NS, context, signal, trend_bars
from trademesh.core.advisor.defaults import default_calibration, default_model
from trademesh.core.advisor.engine.config import (
    AdvisorConfig,
    ConvictionConfig,
    RulesConfig,
    SynthesisConfig,
)
from trademesh.core.advisor.engine.conviction import combine
from trademesh.core.advisor.engine.core import AdvisorCore
from trademesh.core.advisor.engine.decision import Decision
from trademesh.core.advisor.engine.evaluation import evaluate, score_bars
from trademesh.core.advisor.engine.features import (
    FEATURE_NAMES,
    LOOKBACK,
    bar_series,
    compute_features,
    features_of,
)
from trademesh.core.advisor.engine.model import ModelArtifact
from trademesh.core.advisor.engine.rules import evaluate_rules
from trademesh.core.advisor.engine.snapshot import snapshot
from trademesh.core.advisor.synthetic import regime_bars
from trademesh.core.domain.contracts.signal import Direction


@pytest.fixture(scope="module")
def model() -> ModelArtifact:
    return default_model()


def test_flat_prices_give_zero_returns_neutral_rsi_and_zero_scores() -> None:
    f = compute_features([100.0] * 30, [101.0] * 30, [99.0] * 30, [5.0] * 30)
    assert f is not None
    named = f.named()
    assert named["ret_1"] == named["ret_20"] == named["vol_20"] == 0.0
    assert named["rsi_14"] == 0.5
    assert named["zscore_20"] == named["volume_z_20"] == 0.0
    assert named["range_10"] == pytest.approx(0.02)


def test_features_of_a_steady_rise() -> None:
    close = [100.0 * 1.001**i for i in range(LOOKBACK)]
    f = compute_features(close, close, close, [1.0] * LOOKBACK)
    assert f is not None
    assert f.get("ret_1") == pytest.approx(math.log(1.001))
    assert f.get("ret_5") == pytest.approx(5 * math.log(1.001))
    assert f.get("ret_20") == pytest.approx(20 * math.log(1.001))
    assert f.get("rsi_14") == 1.0
    assert f.get("sma_cross_5_20") > 0
    assert f.get("vol_20") == pytest.approx(0.0, abs=1e-12)


def test_too_few_bars_give_no_features() -> None:
    assert compute_features([100.0] * (LOOKBACK - 1), [100.0] * 20, [100.0] * 20, [1.0] * 20) is None


def test_live_candles_and_training_arrays_give_the_same_features() -> None:
    bars = regime_bars(200, 5)
    candles = bars.candles(100, 121, tick=Decimal("0.0000000001"))
    live = features_of(bar_series(candles))
    offline = compute_features(
        bars.close[100:121].tolist(), bars.high[100:121].tolist(), bars.low[100:121].tolist(),
        bars.volume[100:121].tolist(),
    )  # fmt: skip
    assert live is not None and offline is not None
    assert live.values == pytest.approx(offline.values, rel=1e-6)


def test_rules_on_a_steady_uptrend_for_a_long_and_a_short() -> None:
    f = features_of(bar_series(trend_bars(40)))
    assert f is not None
    cfg = RulesConfig()
    long = evaluate_rules(f, 1, cfg)
    assert long.fired == ("trend", "momentum", "volatility")  # RSI 1.0 is overextended; volume below average
    assert long.score == pytest.approx(0.3 + 0.25 + 0.15)
    short = evaluate_rules(f, -1, cfg)
    assert short.fired == ("not_overextended", "volatility")
    assert short.score == pytest.approx(0.2 + 0.15)


def test_evaluation_without_enough_bars_says_so() -> None:
    ev = evaluate(snapshot(signal(), context(trend_bars(10)), NOW_NS), 1, None, RulesConfig())
    assert ev.features is None and ev.rules is None and ev.model is None
    assert ev.note == "10 bar(s), the features need 21"


def test_the_models_probability_is_turned_towards_the_signals_direction(model: ModelArtifact) -> None:
    snap = snapshot(signal(), context(), NOW_NS)
    long = evaluate(snap, 1, model, RulesConfig())
    short = evaluate(snap, -1, model, RulesConfig())
    assert long.model is not None and long.p_direction is not None and short.p_direction is not None
    assert long.p_direction == long.model.p_up
    assert short.p_direction == pytest.approx(1 - long.model.p_up)
    assert long.model_version == model.version


def test_the_fast_path_matches_scikit_learns_predict_proba(model: ModelArtifact) -> None:
    bars = regime_bars(300, 9)
    for t in range(40, 300, 37):
        f = compute_features(
            *(col[t - 20 : t + 1].tolist() for col in (bars.close, bars.high, bars.low, bars.volume))
        )
        assert f is not None
        expected = float(model.estimator.predict_proba(np.asarray([f.values]))[0, 1])
        assert model.score(f).p_up == pytest.approx(expected, abs=1e-9)


def test_attribution_is_the_probability_lost_when_a_feature_is_set_to_its_training_mean(
    model: ModelArtifact,
) -> None:
    f = features_of(bar_series(trend_bars(40)))
    assert f is not None
    score = model.score(f)
    assert [name for name, _, _ in score.contributions] == list(FEATURE_NAMES)
    i = FEATURE_NAMES.index("zscore_20")
    occluded = (*f.values[:i], model.reference.means[i], *f.values[i + 1 :])
    expected = score.p_up - float(model.estimator.predict_proba(np.asarray([occluded]))[0, 1])
    assert score.contributions[i][2] == pytest.approx(expected, abs=1e-8)
    # A feature already at its training mean contributes nothing.
    at_mean = type(f)(model.reference.means)
    assert all(c == 0 for _, _, c in model.score(at_mean).contributions)


def test_conviction_is_the_weighted_mean_of_the_parts(model: ModelArtifact) -> None:
    ev = evaluate(snapshot(signal(), context(), NOW_NS), 1, model, RulesConfig())
    c = combine(0.8, ev, ConvictionConfig())
    assert ev.p_direction is not None and ev.rules is not None
    expected = (0.4 * 0.8 + 0.35 * ev.p_direction + 0.25 * ev.rules.score) / 1.0
    assert c.raw == pytest.approx(expected, abs=1e-9)
    assert c.weights == (0.4, 0.35, 0.25)


def test_a_missing_part_drops_out_of_both_sums() -> None:
    no_model = evaluate(snapshot(signal(), context(), NOW_NS), 1, None, RulesConfig())
    c = combine(0.8, no_model, ConvictionConfig())
    assert c.weights == (0.4, 0.0, 0.25)
    assert c.raw == pytest.approx((0.4 * 0.8 + 0.25 * 0.7) / 0.65)
    nothing = evaluate(snapshot(signal(), context(trend_bars(5)), NOW_NS), 1, None, RulesConfig())
    assert combine(0.8, nothing, ConvictionConfig()).raw == pytest.approx(0.8)


def test_equal_bars_are_scored_once_and_a_closed_bar_or_another_model_scores_again(
    model: ModelArtifact,
) -> None:
    bars = trend_bars(41)
    first = score_bars(bars[:40], model, None)
    assert score_bars(tuple(bars[:40]), model, first) is first  # a new tuple of the same bars
    moved = score_bars(bars[1:], model, first)
    assert moved is not first and moved.features == features_of(bar_series(bars[1:][-LOOKBACK:]))
    other = ModelArtifact(
        "other", model.sha256, model.horizon_bars, model.timeframe, model.feature_names, model.reference,
        model.estimator,
    )  # fmt: skip
    assert score_bars(bars[:40], other, first).model is other


def test_a_core_deciding_on_unchanged_bars_evaluates_as_without_the_scores_kept(model: ModelArtifact) -> None:
    core = AdvisorCore(
        AdvisorConfig(synthesis=SynthesisConfig(llm_enabled=False)), model, default_calibration()
    )
    history = regime_bars(120, 5).candles(40, 120)
    for i, direction in enumerate([Direction.LONG, Direction.SHORT, Direction.LONG, Direction.LONG] * 3):
        ctx = context(history[i // 2 : 60 + i // 2])  # a bar closes every second signal
        sig = signal(direction, signal_id=f"s{i}")
        decision = core.on_signal(sig, ctx, NOW_NS + i)
        assert isinstance(decision, Decision) and decision.evaluation is not None
        sign = 1 if direction is Direction.LONG else -1
        assert decision.evaluation == evaluate(snapshot(sig, ctx, NOW_NS + i), sign, model, RulesConfig())
