"""The backtest hub's `bars` option (StartBacktest's options.bars): the run's config file the hub
writes carries it as `trademesh backtest --config` reads it (`bars = "1m"`), the same option as
`--bars`; a label the mesh does not know is a field violation naming options.bars; "" leaves
each strategy's sources on their own timeframes, and the run's id what it was before the option.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from trademesh.backtest.v1 import backtest_pb2 as bt
from trademesh.core.backtest.config import BacktestConfig, backtest_config, read_options
from trademesh.core.backtest.hub.api import _in_options
from trademesh.core.backtest.hub.convert import _options, config_text
from trademesh.core.backtest.hub.strategies import StrategyFiles
from trademesh.core.backtest.summary import config_view, run_id
from trademesh.core.domain.model import TIMEFRAME_LABELS
from trademesh.core.platform.errors import InvalidArgument

START_NS = 1_704_067_200 * 10**9
DAY_NS = 86_400 * 10**9
URL = {"database_url": "postgresql://unused/db"}


def _options_of(**changes: object) -> bt.BacktestOptions:
    values: dict[str, object] = {
        "strategies": ["trend"], "venue": "binance", "symbols": ["BTC/USDT"], "start_ns": START_NS,
        "end_ns": START_NS + DAY_NS,
    }  # fmt: skip
    values.update(changes)
    return bt.BacktestOptions(**values)  # type: ignore[arg-type]


def _config(tmp_path: Path, options: bt.BacktestOptions) -> BacktestConfig:
    """The run's config as the hub reads it (trademesh/core/backtest/hub/runs.py): its file, then the CLI's
    options."""
    path = tmp_path / "run.toml"
    path.write_text(config_text(options, StrategyFiles()), encoding="utf-8")
    return backtest_config(read_options(path), URL)


@pytest.mark.parametrize("label", ["1s", "1m", "1h"])
def test_a_known_timeframe_goes_to_the_runs_config_and_is_shown(tmp_path: Path, label: str) -> None:
    assert label in TIMEFRAME_LABELS
    config = _config(tmp_path, _options_of(bars=label))
    assert config.bars == label
    view = config_view(config)  # what the run stores, and ListRuns/GetResult give back
    assert view["bars"] == label
    assert _options(view).bars == label


def test_no_bars_is_each_strategys_own_and_keeps_the_runs_id(tmp_path: Path) -> None:
    config = _config(tmp_path, _options_of())
    assert config.bars == "" and "bars" not in config_view(config)
    assert _options(config_view(config)).bars == ""
    assert run_id(config) != run_id(_config(tmp_path, _options_of(bars="1m")))


@pytest.mark.parametrize("label", ["2m", "1M", "60s", "1m\U0001f600", "1m\x00", " 1m", "minute"])
def test_an_unknown_timeframe_is_a_violation_of_options_bars(tmp_path: Path, label: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        _config(tmp_path, _options_of(bars=label))
    [violation] = [_in_options(v) for v in caught.value.violations]
    assert violation.field == "options.bars", violation
    assert "is not a timeframe" in violation.description and "1m" in violation.description
