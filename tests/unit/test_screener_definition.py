"""Screen files: the example loads; every bad key is refused naming its field and the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from trademesh.core.domain.model import InstrumentKind, Timeframe
from trademesh.core.platform.errors import InvalidArgument
from trademesh.core.screener.engine.definition import parse_screen
from trademesh.core.screener.screen_file import SCREENS_DIR, load_screen

GOOD = """
name = "small"
venue = "sim"
filters = ["volume_24h >= 1e6", "spread_bps<=5", " momentum > -0.5 "]

[score]
weights = { momentum = 1.0, spread_bps = -0.5 }
"""


def _fields(text: str) -> dict[str, str]:
    with pytest.raises(InvalidArgument) as caught:
        parse_screen(text, "bad.toml")
    for violation in caught.value.violations:
        assert "bad.toml" in violation.description
    return {v.field: v.description for v in caught.value.violations}


def _with(line: str, score: str = "weights = { momentum = 1.0 }") -> str:
    return f'name = "s"\nvenue = "sim"\n{line}\n[score]\n{score}\n'


def test_the_example_screen_loads() -> None:
    screen = load_screen(SCREENS_DIR / "momentum.toml")
    assert screen.name == "momentum" and screen.top == 10
    assert screen.universe.kinds == (InstrumentKind.PERPETUAL,)
    assert screen.bars.timeframe is Timeframe.H1
    assert [str(f) for f in screen.filters] == ["volume_24h >= 1e+06", "spread_bps <= 5"]
    assert screen.needed == ("volume_24h", "spread_bps", "volatility", "momentum")
    assert screen.measured == (*screen.needed, "funding_rate")
    assert screen.hold_ns == 900 * 10**9
    assert screen.source.endswith("momentum.toml")


def test_defaults_and_the_cadence() -> None:
    screen = parse_screen(GOOD, "good.toml")
    assert (screen.cadence_s, screen.top, screen.max_age_s, screen.score.normalise) == (60, 10, 300, "rank")
    assert [(f.metric, f.op, f.value) for f in screen.filters] == [
        ("volume_24h", ">=", 1e6), ("spread_bps", "<=", 5.0), ("momentum", ">", -0.5),
    ]  # fmt: skip
    assert screen.hold_ns == 5 * 60 * 10**9  # five cadences when the file sets none
    assert screen.next_due_ns(0) == 60 * 10**9
    assert screen.next_due_ns(61 * 10**9) == 120 * 10**9
    assert screen.next_due_ns(120 * 10**9) == 180 * 10**9


@pytest.mark.parametrize(
    ("line", "field", "words"),
    [
        ('filters = ["volum_24h >= 1"]', "filters[0]", "'volum_24h' is not one of volume_24h"),
        ('filters = ["spread_bps => 5"]', "filters[0]", "'=>' is not one of >=, >, <=, <"),
        ('filters = ["spread_bps == 5"]', "filters[0]", "'==' is not one of"),
        ('filters = ["momentum > 1", "spread_bps"]', "filters[1]", 'is not a comparison "<metric>'),
        ('filters = ["momentum > abc"]', "filters[0]", "'abc' is not a number"),
        ('filters = ["momentum > 1e999"]', "filters[0]", "'1e999' is not a finite number"),
        ('filters = ["momentum > 1 or 1"]', "filters[0]", "is not a comparison"),
        ("filters = [\"__import__('os') > 1\"]", "filters[0]", "is not a comparison"),
        ("filters = [5]", "filters[0]", "5 is not a comparison"),
        ('filters = "momentum > 1"', "filters", "is not a list of comparisons"),
        ('show = ["depth"]', "show[0]", "'depth' is not one of"),
        ("top = 0", "top", "must be between 1 and 1000, got 0"),
        ("cadence_s = 0", "cadence_s", "must be between 1 and 86400, got 0"),
        ("max_age_s = 1.5", "max_age_s", "1.5 is not a whole number"),
        ("min_hold_s = -1", "min_hold_s", "must be between 0"),
        ('name = "Bad Name"', "name", "is not a screen name"),
        ("colour = 1", "colour", "unknown key; known: name, description, venue"),
        ('universe = { kinds = ["swap"] }', "universe.kinds", "'swap' is not one of spot, perpetual"),
        ('universe = { quote = ["USDT"] }', "universe.quote", "unknown key"),
        ('bars = { timeframe = "2h" }', "bars.timeframe", "'2h' is not a timeframe; known: 1s"),
        ("bars = { volatility = 1 }", "bars.volatility", "must be between 2 and 10000, got 1"),
        ("bars = { momentum = 0 }", "bars.momentum", "must be between 1"),
    ],
)
def test_a_bad_key_is_named(line: str, field: str, words: str) -> None:
    text = _with(line)
    if line.startswith("name ="):
        text = text.replace('name = "s"\n', "", 1)
    found = _fields(text)
    assert field in found, found
    assert words in found[field]


@pytest.mark.parametrize(
    ("score", "field", "words"),
    [
        ("weights = { momentum = 0 }", "score.weights.momentum", "must not be 0"),
        ('weights = { momentum = "1" }', "score.weights.momentum", "'1' is not a finite number"),
        ("weights = { momentum = true }", "score.weights.momentum", "True is not a finite number"),
        ("weights = { momentum = nan }", "score.weights.momentum", "is not a finite number"),
        ("weights = { momentum = 1e4 }", "score.weights.momentum", "must be between -1000 and 1000"),
        ("weights = { speed = 1.0 }", "score.weights.speed", "'speed' is not one of volume_24h"),
        ("weights = {}", "score.weights", "is not a table of metric = weight"),
        ('normalise = "minmax"\nweights = { momentum = 1 }', "score.normalise", "is not one of rank, zscore"),
        ('normalise = "rank"', "score.weights", "is required"),
    ],
)
def test_a_bad_score_is_named(score: str, field: str, words: str) -> None:
    found = _fields(_with("", score))
    assert field in found, found
    assert words in found[field]


def test_every_bad_key_of_a_file_is_named_at_once() -> None:
    found = _fields(
        _with('top = 0\nfilters = ["x > 1", "momentum >= 1", "momentum ! 2"]', "weights = { y = 1 }")
    )
    assert set(found) == {"top", "filters[0]", "filters[2]", "score.weights.y"}


def test_required_keys_and_bad_toml() -> None:
    assert set(_fields("[score]\nweights = { momentum = 1 }\n")) == {"name", "venue"}
    assert set(_fields('name = "s"\nvenue = "sim"\n')) == {"score"}
    assert "not valid TOML" in _fields("name = ")["file"]


def test_a_file_that_cannot_be_read_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument) as caught:
        load_screen(tmp_path / "none.toml")
    assert caught.value.violations[0].field == "file"
