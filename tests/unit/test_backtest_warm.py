"""A backtest warms each patch as the live detector does (trademesh.core.detector.history): from the bars
its own sources need, closed by the warm-up's cut, never from more. The recorded bars are
fetched once for all the patches of a symbol, so the trend example (30 bars) beside mean
reversion (35 bars) on BTC/USDT would otherwise start from 35 bars: other EMA values than
live, and a signal a bar apart (issue 18's parity test found it)."""

from __future__ import annotations

import random

from trademesh.core.backtest.detect import DetectStage
from trademesh.core.backtest.synthetic import Walk, walk
from trademesh.core.detector.config import example_strategies
from trademesh.core.detector.engine.catalog import Catalog
from trademesh.core.detector.engine.io import Event
from trademesh.core.detector.engine.values import BarValue
from trademesh.core.detector.needs import patch_history, warm_bars
from trademesh.core.detector.strategy_file import Strategy, load_strategy
from trademesh.core.domain.model import Timeframe

S = 1_000_000_000
CUT = 1_767_225_600 * S + 400_000_000  # the warm-up's cut, inside a second
BARS = 60


def _strategies(*ids: str) -> list[Strategy]:
    loaded = [load_strategy(path, Catalog.builtin()) for path in example_strategies()]
    return [s for s in loaded if s.id in ids]


def _history(symbol: str = "BTC/USDT", seed: int = 7) -> list[tuple[str, Event]]:
    """BARS closed 1s bars of a walk before the cut, and one still open at it."""
    rng, close = random.Random(seed), 65_000.0
    bars: list[tuple[str, Event]] = []
    first = CUT - CUT % S - BARS * S
    for n in range(BARS + 1):
        open_, close = close, close * (1 + rng.gauss(0, 0.002))
        high, low = max(open_, close) * 1.0005, min(open_, close) * 0.9995
        volume = rng.uniform(0.1, 2.0)
        bars.append(
            ("sim", BarValue(symbol, 1, first + n * S, open_, high, low, close, volume, volume * close, 30))
        )
    return bars


def test_each_patch_takes_the_bars_it_would_fetch_live() -> None:
    stage = DetectStage(_strategies("trend", "mean_reversion"), CUT)
    history = _history()
    counts = {p: len(patch_history(stage.engine, p, history, CUT)) for p in stage.warming}
    assert counts == {"trend/sim/BTC/USDT": 30, "trend/sim/ETH/USDT": 0, "mean_reversion/sim/BTC/USDT": 35}
    chosen = patch_history(stage.engine, "trend/sim/BTC/USDT", history, CUT)
    last = chosen[-1][1]
    assert isinstance(last, BarValue) and last.open_time_ns + S <= CUT  # the open bar stays out


def _recorded(history: list[tuple[str, Event]], count: int) -> list[tuple[str, Event]]:
    """As trademesh.core.backtest.assemble.recorded_history reads them: per symbol, the bars the patch
    needing the most (`count`) wants."""
    kept: list[tuple[str, Event]] = []
    for symbol in ("BTC/USDT", "ETH/USDT"):
        bars = [e for _, e in history if isinstance(e, BarValue) and e.symbol == symbol]
        kept += [("sim", bar) for bar in warm_bars(bars, count, Timeframe.S1, CUT)]
    return kept


def test_a_patch_warms_alike_whatever_other_patches_share_its_symbol() -> None:
    history = _history() + _history("ETH/USDT", seed=8)
    market = list(walk(Walk(start_ns=CUT + S, steps=240, step_ns=250_000_000, volatility=0.002, seed=3)))
    signals, slow = [], []
    for ids, most in ((("trend",), 30), (("trend", "mean_reversion"), 35)):
        stage = DetectStage(_strategies(*ids), CUT)
        stage.warm_from_history(_recorded(history, most), CUT)
        stage.engine.probe("trend/sim/BTC/USDT", "slow.value", CUT)
        slow += [u.value for u in stage.engine.probe_updates(CUT)]
        emitted = []
        for event in market:
            while (due := stage.next_tick(event.ts_event_ns)) is not None and due <= event.ts_event_ns:
                emitted += stage.tick().signals
            emitted += stage.feed("sim", [event], event.ts_event_ns).signals
        signals.append(
            [(s.signal_time_ns, s.symbol, s.conviction) for s in emitted if s.strategy_id == "trend"]
        )
    alone, beside = signals
    assert alone, "the walk makes the trend example signal"
    assert beside == alone
    assert len(slow) == 2 and slow[0] == slow[1], "the slow EMA starts from the same value"
