"""The markets the backtest's inspector holds (InspectStage.holds/held, asked every step), kept
between journal entries and across marks (a mark moves no position; the orders' version says
when the orders changed): at every step of a chain that opens, protects and closes positions,
its stops trailing the marks (a mark that moves one re-plans the protection), the set kept is
the one made afresh from the core's orders and positions. (A mark that changed which markets
hold orders, which the orders' version guards, does not happen in this run: its stops move
within a market held already.) So are the core's wake_ns and still_from_ns the stage keeps
between journal entries (the run asks for both several times a step): equal to the core's own at
every step, as they move with its entries."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from trademesh.core.backtest.assemble import build
from trademesh.core.backtest.config import BacktestConfig
from trademesh.core.backtest.inspect import InspectStage
from trademesh.core.backtest.session import drive_sync
from trademesh.core.backtest.synthetic import Walk, bar_walk
from trademesh.core.detector.engine.catalog import Catalog
from trademesh.core.detector.strategy_file import ModuleDecl, Strategy, load_strategy
from trademesh.core.inspector.config import DEFAULT_POLICIES

TREND = Path("trademesh/core/detector/strategies/trend.toml")
_MINUTE_NS = 60 * 1_000_000_000
BARS = 4_000
# The shipped policies, the stop trailing 1 % behind the best mark, moved by each step of 0.1 %.
TRAILING = '\n[protect]\ntrailing_stop = "0.01"\ntrailing_step = "0.001"\ncoalesce_ms = 0\n'


def _trend_on_bars() -> Strategy:
    base = load_strategy(TREND, Catalog.builtin())
    source = ModuleDecl("bars", "bars", {"timeframe": "1m"})
    modules = tuple(source if m.type == "trade_bars" else m for m in base.modules)
    return dataclasses.replace(base, venues=("sim",), symbols=("BTC/USDT",), modules=modules)


def _fresh(stage: InspectStage) -> set[tuple[str, str]]:
    book = stage.core.book
    orders = {w.key for w in book.orders}
    return orders | {k for k, p in book.positions.positions.items() if p.size != 0}


def test_the_held_set_kept_is_made_afresh_at_every_step(tmp_path: Path) -> None:
    policies = tmp_path / "policies.toml"
    policies.write_text(Path(DEFAULT_POLICIES).read_text() + TRAILING)
    walk = Walk(step_ns=_MINUTE_NS, steps=BARS, volatility=0.004, levels=1)
    config = BacktestConfig(
        strategies=(TREND,), start_ns=walk.start_ns, end_ns=walk.start_ns + (BARS + 1) * _MINUTE_NS,
        symbols=("BTC/USDT",), timeframe="1m", sample_s=3600, policies=policies,
    )  # fmt: skip
    backtest = build(config, [_trend_on_bars()])
    stage = backtest.inspect
    compared = {"steps": 0, "holding": 0, "orders changed": 0}
    wakes: set[int | None] = set()
    stills: set[int] = set()

    def checked(items: Iterator[Any]) -> Iterator[Any]:
        for item in items:
            version = stage.core.book.orders.version
            yield item  # drive_sync runs the steps before it asks for the next item
            compared["orders changed"] += stage.core.book.orders.version != version
            assert stage.holds() == bool(_fresh(stage))
            assert stage.held() == sorted(symbol for _, symbol in _fresh(stage))
            assert stage.wake_ns == stage.core.wake_ns
            assert stage.still_from_ns == stage.core.still_from_ns
            wakes.add(stage.wake_ns)
            stills.add(stage.still_from_ns)
            compared["steps"] += 1
            compared["holding"] += stage.holds()

    next_timer = backtest._next_timer

    def timer_checked() -> int | None:  # where the run reads it, several times a step
        assert stage.wake_ns == stage.core.wake_ns
        wakes.add(stage.wake_ns)
        return next_timer()

    backtest._next_timer = timer_checked  # type: ignore[method-assign]
    tape = drive_sync(backtest, checked(bar_walk(walk)))
    assert tape.fills and compared["holding"] > BARS // 4  # positions opened, protected, closed
    assert compared["steps"] == 3 * BARS  # a bar, its book and its trade each
    assert compared["orders changed"] > len(tape.fills)  # stops moved by marks, not only on fills
    assert len(wakes) > 10 and len(stills) > 10  # both moved with the core's entries
