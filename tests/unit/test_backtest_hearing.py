"""What the backtest's strategies hear back, read straight from its inspector core
(trademesh.core.backtest.hearing), against what the live detector reads from the inspector's
answers (GetRiskState and ListPositions through trademesh.core.detector.feedback): at every step
of a chain that opens, protects and closes positions and holds capital reserved for its strategy,
and through a cooldown after a loss, the same values, of the same types, bit for bit."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

from trademesh.core.backtest.assemble import build
from trademesh.core.backtest.config import BacktestConfig
from trademesh.core.backtest.hearing import held_of, risk_values_of
from trademesh.core.backtest.session import drive_sync
from trademesh.core.backtest.synthetic import Walk, bar_walk
from trademesh.core.detector.engine.catalog import Catalog
from trademesh.core.detector.feedback import _held, risk_values
from trademesh.core.detector.strategy_file import ModuleDecl, Strategy, load_strategy
from trademesh.core.inspector.config import DEFAULT_POLICIES
from trademesh.core.inspector.views import positions_view, risk_state

TREND = Path("trademesh/core/detector/strategies/trend.toml")
_MINUTE_NS = 60 * 1_000_000_000
BARS = 3_000
# A cooldown of 10 minutes after each loss, and capital reserved for the trend strategy.
COOLDOWN = ("cooldown_after_loss_ms = 0", "cooldown_after_loss_ms = 600000")
RESERVED = '\n[capital.reserved]\ntrend = "90000"\n'


def _trend_on_bars() -> Strategy:
    base = load_strategy(TREND, Catalog.builtin())
    source = ModuleDecl("bars", "bars", {"timeframe": "1m"})
    modules = tuple(source if m.type == "trade_bars" else m for m in base.modules)
    return dataclasses.replace(base, venues=("sim",), symbols=("BTC/USDT",), modules=modules)


def _typed(values: dict[Any, Any]) -> list[tuple[Any, str]]:
    """Each value with its repr (a bool is not a float; -0.0 is not 0.0)."""
    return sorted((key, repr(value)) for key, value in values.items())


def test_the_values_read_from_the_core_are_the_answers_values_at_every_step(tmp_path: Path) -> None:
    policies = tmp_path / "policies.toml"
    policies.write_text(Path(DEFAULT_POLICIES).read_text().replace(*COOLDOWN) + RESERVED)
    walk = Walk(step_ns=_MINUTE_NS, steps=BARS, volatility=0.004, levels=1)
    config = BacktestConfig(
        strategies=(TREND,), start_ns=walk.start_ns, end_ns=walk.start_ns + (BARS + 1) * _MINUTE_NS,
        symbols=("BTC/USDT",), timeframe="1m", sample_s=3600, policies=policies,
    )  # fmt: skip
    backtest = build(config, [_trend_on_bars()])
    core = backtest.inspect.core
    seen = {"steps": 0, "drawdown": 0, "held": 0, "reserved": 0}

    def checked(items: Iterator[Any]) -> Iterator[Any]:
        for item in items:
            yield item  # drive_sync runs the steps before it asks for the next item
            now = backtest.tape.data_ns
            answered = risk_values(risk_state(core, now, core.book.venues_down))
            read = risk_values_of(core, now)
            assert _typed(read) == _typed(answered)
            held = _held(positions_view(core, "", core.book.legacy, set()))
            assert _typed(held_of(core)) == _typed(held)
            seen["steps"] += 1
            seen["drawdown"] += answered["inspector.drawdown"] != 0
            seen["held"] += bool(held)
            seen["reserved"] += "inspector.capital.trend.reserved" in answered

    tape = drive_sync(backtest, checked(bar_walk(walk)))
    assert tape.fills and seen["steps"] == 3 * BARS
    # Every value the comparison covers took more than one form in the run.
    assert 0 < seen["drawdown"] < seen["steps"] and 0 < seen["held"] < seen["steps"]
    assert seen["reserved"] == seen["steps"]
    # This walk's trips lose none: a loss recorded, its cooldown running, then run out.
    end = backtest.tape.data_ns
    core.streak.record(Decimal("-1"), end)
    for now in (end, end + 5 * _MINUTE_NS, end + 10 * _MINUTE_NS, end + 11 * _MINUTE_NS):
        answered = risk_values(risk_state(core, now, core.book.venues_down))
        assert _typed(risk_values_of(core, now)) == _typed(answered)
        assert answered["inspector.cooldown"] is (now < end + 10 * _MINUTE_NS)
