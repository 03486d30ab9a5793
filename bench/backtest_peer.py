"""A peer on the same bars (issue 18): backtesting.py (PyPI `backtesting`, installed with
`pip install -e .[bench]`), an EMA cross (12 over 26: buy on the cross up, sell on the cross
down) over the same year of synthetic 1-minute bars as bench/backtest_chain.py, against
trademesh in the same run on the same bars:

- peer: backtesting.py's Backtest.run over a pandas frame of the bars (its indicators computed
  once over the whole frame with numpy, then a loop over the bars in Python; orders filled at
  the next bar's open; no order book, no fees model beyond a commission rate, no risk checks);
- detector: trademesh's strategy engine alone, the trend example's EMA cross graph on the bar
  service's 1m bars (bar by bar, as live), no orders;
- chain: docs/benchmarks.md §15's figure (every core, the matching engine) is not rerun here.

CPU time of this process, medians of --repeats.

    pip install -e '.[bench]' && .venv/bin/python bench/backtest_peer.py
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "gen"))

import _common as common
import pandas as pd
from backtesting import Backtest, Strategy
from backtesting.lib import crossover

from core.backtest.detect import DetectStage
from core.backtest.synthetic import Walk, bar_walk
from core.detector.engine.catalog import Catalog
from core.detector.strategy_file import ModuleDecl, load_strategy
from trademesh.bus.v1 import bus_pb2 as bus

TREND = Path(__file__).resolve().parents[1] / "core/detector/strategies/trend.toml"
MINUTE_NS = 60 * 10**9


def bars(count: int) -> list[bus.Bar]:
    walk = Walk(step_ns=MINUTE_NS, steps=count, volatility=0.0015, levels=1)
    return [item for item in bar_walk(walk) if isinstance(item, bus.Bar)]


def _ema(values: Any, period: int) -> Any:
    return pd.Series(values).ewm(span=period, adjust=False).mean().to_numpy()


class EmaCross(Strategy):  # type: ignore[misc]
    fast = 12
    slow = 26

    def init(self) -> None:
        self.fast_line = self.I(_ema, self.data.Close, self.fast)
        self.slow_line = self.I(_ema, self.data.Close, self.slow)

    def next(self) -> None:
        if crossover(self.fast_line, self.slow_line):
            self.position.close()
            self.buy()
        elif crossover(self.slow_line, self.fast_line):
            self.position.close()


def run_peer(frame: pd.DataFrame) -> tuple[float, int]:
    started = time.process_time()
    stats = Backtest(frame, EmaCross, cash=10_000_000, commission=0.002, finalize_trades=True).run()
    return time.process_time() - started, int(stats["# Trades"])


def run_detector(data: list[bus.Bar]) -> tuple[float, int]:
    base = load_strategy(TREND, Catalog.builtin())
    source = ModuleDecl("bars", "bars", {"timeframe": "1m"})
    modules = tuple(source if m.type == "trade_bars" else m for m in base.modules)
    strategy = dataclasses.replace(base, venues=("sim",), symbols=("BTC/USDT",), modules=modules)
    stage = DetectStage([strategy], Walk().start_ns)
    signals = 0
    started = time.process_time()
    for bar in data:
        signals += len(stage.feed("sim", (), bar.open_time_ns + MINUTE_NS, (bar,)).signals)
    return time.process_time() - started, signals


def frame_of(data: list[bus.Bar]) -> pd.DataFrame:
    index = pd.to_datetime([b.open_time_ns for b in data], unit="ns")
    columns = {
        "Open": [float(b.open) for b in data], "High": [float(b.high) for b in data],
        "Low": [float(b.low) for b in data], "Close": [float(b.close) for b in data],
        "Volume": [float(b.volume) for b in data],
    }  # fmt: skip
    return pd.DataFrame(columns, index=index)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bars", type=int, default=525_600)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-save", action="store_true")
    args = parser.parse_args()
    started, machine = common.now_iso(), common.machine()
    data = bars(args.bars)
    frame = frame_of(data)
    peer, detector = [], []
    for _ in range(args.repeats):
        peer.append(run_peer(frame))
        detector.append(run_detector(data))
    figures = {
        "peer_backtesting_py": {"cpu_s": common.median([r[0] for r in peer]), "trades": peer[-1][1]},
        "trademesh_detector": {"cpu_s": common.median([r[0] for r in detector]), "signals": detector[-1][1]},
    }
    for values in figures.values():
        values["bars_per_cpu_s"] = args.bars / float(values["cpu_s"])
    ratio = float(figures["trademesh_detector"]["cpu_s"]) / float(figures["peer_backtesting_py"]["cpu_s"])
    rows = [[name, f"{v['cpu_s']:.2f}", f"{v['bars_per_cpu_s']:,.0f}"] for name, v in figures.items()]
    common.print_table(["run", "cpu s", "bars/cpu s"], rows)
    print(f"trademesh detector / backtesting.py CPU: {ratio:.2f}x")
    if not args.no_save:
        common.write_result(
            "backtest_peer",
            {"started": started, "machine": machine, "command": common.command_line(), "bars": args.bars,
             "repeats": args.repeats, "figures": figures, "detector_over_peer": ratio},
        )  # fmt: skip


if __name__ == "__main__":
    main()
