"""The trend example replayed trade by trade as a backtest drives the engine (feed, then
evaluate_due at each trade's time): its signals are those recorded before the bar builder's
fast path (bench/backtest_engine.py, issue 18), and evaluating in coalesced bursts instead of
after every trade gives the same bars and the same signals (a closed bar is evaluated once
each, whatever the burst: Engine's promise), only stamped with the burst's time."""

from __future__ import annotations

import dataclasses
import hashlib
import random

import pytest

from tests.detector_support import BASE_NS, S, engine
from trademesh.core.detector.config import EXAMPLES_DIR
from trademesh.core.detector.engine.catalog import Catalog
from trademesh.core.detector.engine.engine import Engine
from trademesh.core.detector.engine.outputs import EmittedSignal
from trademesh.core.detector.engine.values import BarValue, TradeValue
from trademesh.core.detector.modules.sources import TradeBarsSource
from trademesh.core.detector.strategy_file import build_patches, load_strategy

SYMBOL = "BTC/USDT"
TRADES = 50_000
# sha256 of the signals' text (below) of 50,000 trades of seed 18, evaluated after every trade,
# recorded with the bar builder as it was before its fast path (commit 92c4f3c).
RECORDED_SIGNALS = 50
RECORDED_DIGEST = "95178a29f93e2266e206fab82a41005115fa96f73730279282589cba133c3b22"


def tape(count: int, seed: int) -> list[TradeValue]:
    """Trades about 40 a second, a walk on a 0.01 tick; every 997th a copy of an earlier one
    (a duplicate), every 1,009th stamped 1.5 s back (late: dropped), some sharing a time."""
    rng = random.Random(seed)
    cents, ts, out = 3_000_000, BASE_NS, []
    for n in range(count):
        ts += rng.choice((0, rng.randrange(1, 100_000_000)))
        cents = max(1, cents + rng.randrange(-40, 41))
        size = rng.randrange(1, 5_000) / 1_000
        when = ts - 1_500_000_000 if n % 1_009 == 1_008 else ts
        out.append(TradeValue(SYMBOL, when, cents / 100, size, rng.random() < 0.5, str(n + 1)))
        if n % 997 == 996:
            out.append(out[rng.randrange(max(0, len(out) - 30), len(out))])
    return out


def trend_engine() -> Engine:
    """The trend example as shipped on one symbol, warmed from 1s bars, active."""
    catalog = Catalog.builtin()
    strategy = load_strategy(EXAMPLES_DIR / "trend.toml", catalog)
    strategy = dataclasses.replace(strategy, venues=("sim",), symbols=(SYMBOL,))
    core = engine(catalog)
    (patch,) = build_patches(core, strategy, BASE_NS)
    need = core.history_needed(patch.id)["bars"]
    history = [
        BarValue(
            SYMBOL, 1, BASE_NS - (need - k) * S, 100.0 + k, 101.0 + k, 99.0 + k, 100.5 + k, 2.0, 201.0, 3
        )
        for k in range(need)
    ]
    core.warm(patch.id, [("sim", bar) for bar in history])
    patch.activate(BASE_NS)
    return core


def replay(trades: list[TradeValue], burst: random.Random | None = None) -> list[EmittedSignal]:
    """Feed each trade; evaluate after each (burst None) or after bursts of 1-200 trades."""
    core, signals = trend_engine(), []
    left = 0
    for trade in trades:
        core.feed("sim", trade)
        if burst is not None:
            if left > 0:
                left -= 1
                continue
            left = burst.randrange(0, 200)
        signals += core.evaluate_due(trade.ts_event_ns).signals
    signals += core.evaluate_due(trades[-1].ts_event_ns).signals
    return signals


def said(signal: EmittedSignal) -> str:
    """What a signal says, without when it was said."""
    rules = " ".join(f"{r.name}:{r.value!r}:{r.fired}" for r in signal.rules)
    return f"{signal.direction.value} {signal.score!r} {signal.conviction!r} {signal.threshold!r} {rules}"


def digest(signals: list[EmittedSignal]) -> str:
    text = "\n".join(f"{s.signal_id} {s.signal_time_ns} {s.ts_event_ns} {said(s)}" for s in signals)
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture(scope="module")
def trades() -> list[TradeValue]:
    return tape(TRADES, 18)


def test_the_replay_gives_the_signals_recorded_before_the_fast_path(trades: list[TradeValue]) -> None:
    signals = replay(trades)
    assert (len(signals), digest(signals)) == (RECORDED_SIGNALS, RECORDED_DIGEST)


def test_coalesced_bursts_give_the_same_signals_as_evaluating_every_trade(trades: list[TradeValue]) -> None:
    each = replay(trades)
    bursts = replay(trades, random.Random(7))
    assert len(each) > 20
    assert [said(s) for s in bursts] == [said(s) for s in each]


def test_the_bars_do_not_depend_on_when_they_are_taken(trades: list[TradeValue]) -> None:
    params: dict[str, int | float | bool | str] = {
        "venue": "",
        "symbol": SYMBOL,
        "timeframe": "1s",
        "lateness_ms": 1000,
    }
    each, later = TradeBarsSource(params), TradeBarsSource(params)
    bars_each: list[object] = []
    for trade in trades:
        each.feed(trade)
        while each.backlog():
            bars_each.append(each.step(None, 0)["bar"])  # type: ignore[arg-type]
        later.feed(trade)
    bars_later: list[object] = []
    while later.backlog():
        bars_later.append(later.step(None, 0)["bar"])  # type: ignore[arg-type]
    assert len(bars_each) > 1_000
    assert bars_later == bars_each
    assert each.builder.late > 0 and each.builder.duplicates > 0
