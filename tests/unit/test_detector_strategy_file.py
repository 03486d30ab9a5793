"""Strategy files: the examples load and build; a bad file names the file, the key and why."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.detector_support import catalog_with_indicators, engine
from trademesh.core.detector.engine.warmup import validate
from trademesh.core.detector.strategy_file import build_patches, load_strategy, parse_strategy
from trademesh.core.platform.errors import FailedPrecondition, InvalidArgument

EXAMPLES = Path(__file__).parents[2] / "trademesh" / "core" / "detector" / "strategies"

GOOD = """
id = "small"
venues = ["v"]
symbols = ["BTC-USDT"]
threshold = 1.0
cables = [
    "t.trade -> f.trade", "f.price -> high.a", "high.out -> score.rule_1", "score.signal -> emit.signal",
]

[[modules]]
id = "t"
type = "trades"

[[modules]]
id = "f"
type = "trade_fields"

[[modules]]
id = "high"
type = "compare"
params = { value = 100.0 }

[[modules]]
id = "score"
type = "weighted_score"

[[modules]]
id = "emit"
type = "signal"
"""


@pytest.mark.parametrize("name", ["trend", "mean_reversion", "order_flow"])
def test_the_example_strategies_load_and_build_complete_patches(name: str) -> None:
    catalog = catalog_with_indicators()
    strategy = load_strategy(EXAMPLES / f"{name}.toml", catalog)
    assert strategy.id == name
    patches = build_patches(engine(catalog), strategy, 0)
    assert len(patches) == len(strategy.venues) * len(strategy.symbols)
    for patch in patches:
        assert patch.graph.missing_inputs() == []
        try:
            validate(patch)  # complete; only the warm-up history may be missing
        except FailedPrecondition as exc:
            assert "not warmed up" in str(exc)


def test_a_good_file_runs_as_one_patch_per_venue_and_symbol() -> None:
    catalog = catalog_with_indicators()
    strategy = parse_strategy(GOOD.replace('["BTC-USDT"]', '["BTC-USDT", "ETH-USDT"]'), "small.toml", catalog)
    eng = engine(catalog)
    patches = build_patches(eng, strategy, 0)
    assert [p.id for p in patches] == ["small/v/BTC-USDT", "small/v/ETH-USDT"]
    assert patches[1].graph.nodes["t"].params["symbol"] == "ETH-USDT"
    assert patches[0].graph.nodes["score"].params["threshold"] == 1.0
    for patch in patches:
        patch.activate(0)


SCORE = 'type = "weighted_score"'
BAD_FILES = [  # (text replaced, by, the field named, the reason)
    ('id = "small"', 'id = "small"\ncolour = "red"', "colour", "unknown key"),
    ('type = "trades"', 'type = "trades"\nkind = 1', "modules.t.kind", "unknown key"),
    ("value = 100.0", "value = 'x'", "modules.high.params.value", "is not a float"),
    ("value = 100.0", "vale = 1.0", "modules.high.params.vale", "no parameter 'vale'"),
    ('type = "compare"', 'type = "comparator"', "modules.high.type", "no module type 'comparator'"),
    ('"f.price -> high.a"', '"f.price -> high.z"', "cables[1]", "has no input 'z'"),
    ('"f.price -> high.a"', '"f.price -> high.a", "high.out -> f.trade"', "cables[2]",
     "high.out is boolean but f.trade is trade"),
    ('symbols = ["BTC-USDT"]', "symbols = []", "symbols", "must list at least 1, got 0"),
    ('id = "small"', 'id = "Small!"', "id", "'Small!' is not a strategy id"),
    ('id = "small"', 'id = "small"\nwarmup = -1', "warmup", "must be between 0 and 1000000, got -1"),
    ("threshold = 1.0", 'threshold = "2"', "threshold", "'2' is not a number"),
    ("threshold = 1.0", "threshold = -1.0", "threshold", "must be at least 0, got -1"),
    ('type = "trades"', 'type = ""', "modules.t.type", "'' is not a non-empty string"),
    (SCORE, SCORE + "\nparams = { threshold = 2.0 }", "modules.score.params.threshold",
     "set here and as the strategy's threshold"),
    ("[[modules]]\nid = \"emit\"", "[[modules]\nid = \"emit\"", "file", "not valid TOML"),
]  # fmt: skip


@pytest.mark.parametrize(("old", "new", "field", "reason"), BAD_FILES)
def test_a_bad_file_is_refused_naming_the_file_and_the_key(
    old: str, new: str, field: str, reason: str
) -> None:
    assert old in GOOD
    with pytest.raises(InvalidArgument) as refused:
        parse_strategy(GOOD.replace(old, new), "strategies/small.toml", catalog_with_indicators())
    [violation] = refused.value.violations
    assert violation.field == field
    if field == "file":  # not TOML: trademesh.core.platform.config.file's "<file>: not valid TOML: ..."
        assert violation.description.startswith("strategies/small.toml: ")
    else:
        assert violation.description.endswith(" (in strategies/small.toml)")
    assert reason in violation.description


def test_a_file_that_cannot_be_read_is_named(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match=r"cannot read \S*missing\.toml"):
        load_strategy(tmp_path / "missing.toml", catalog_with_indicators())
