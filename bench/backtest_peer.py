"""The engines' floor (issue 62): a bench-only loop over three engine cores, which no user runs,
against NautilusTrader's whole `run()`; the like-for-like figures are bench/backtest_e2e.py's
(`trademesh backtest` end to end) and bench/backtest_inprocess.py's (the whole chain in process).

Peers on the same bars (issues 18 and 43): NautilusTrader (the highest peer) and backtesting.py,
against trademesh's strategy engine, matching engine and portfolio, in the same run, on the same
year of synthetic 1-minute bars as bench/backtest_chain.py (trademesh.core.backtest.synthetic.bar_walk:
per bar at its close, the bar, a book of one level a side around the close (0.01 away, 0.5 BTC
each) and a trade at the close).

The strategy, the same in all three: an EMA 12 / 26 cross on the closes, long only: buy 0.01 BTC at
market when the fast EMA crosses above the slow one while flat, sell it at market when it crosses
back below. Fees: 0.1 % of the notional on every fill, in all three.

What each run includes (CPU seconds of its process, `time.process_time`, medians of --repeats,
the runs alternated):

- trademesh (`tm_path`): per bar, the replayed venue takes the book and the trade
  (trademesh.core.backtest.market.ReplayedMarket: the sim's matching engine under the recorded book), the
  strategy engine takes the bar (trademesh.core.backtest.detect.DetectStage: bench/strategies/ema_cross.toml,
  evaluated once per bar as live), each position request it makes becomes a market order (IOC)
  to the venue, arriving at once, and each execution is posted to the ledger's books
  (trademesh.core.backtest.books.BooksStage, the portfolio: balances, positions, PnL). No advisor, no
  inspector (bench/backtest_chain.py measures those). The glue (requests to orders) is this
  bench's, a dozen lines.
- NautilusTrader (`nautilus`; `sh bench/peer_setup.sh nautilus` once: 1.221.0 in its own
  virtualenv, run as a child process by bench/peer_nautilus.py): `BacktestEngine.run()` with one
  simulated exchange (an L1 book driven by the bars, a cash account, netting), its `Strategy`
  with its own `ExponentialMovingAverage`s, market orders, its portfolio and cache. Reported:
  `run()` alone (what is compared) and with the engine's set-up and `add_data`.
- backtesting.py (`backtesting_py`, `pip install -e '.[bench]'`): `Backtest.run` over a pandas
  frame (its indicators computed once over the whole frame with pandas, then a Python loop over
  the bars), `trade_on_close` (fills at the signal bar's close), a commission of 0.1 %; whole
  units only, so it trades 1 BTC (its PnL is scaled to 0.01 BTC below).
- the strategy engine alone (`tm_detector`): the same DetectStage over the same items, no orders.

The trades are compared: their count, each trip's entry and exit bar, and the PnL, whose
difference the fill models explain (printed: trademesh's market orders meet the recorded book,
the ask 0.01 above the close to buy and the bid 0.01 below to sell; Nautilus fills at the bar's
close, its L1 book set from the bar's prices; Nautilus seeds its EMAs with the first close,
trademesh with the mean of the first `period` closes, so the first crosses may differ).

    sh bench/peer_setup.sh nautilus && pip install -e '.[bench]'
    .venv/bin/python bench/backtest_peer.py                     # 525,600 bars, 3 repeats
    .venv/bin/python bench/backtest_peer.py --bars 50000 --repeats 1 --no-save
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import _common as common
import pandas as pd
from backtesting import Backtest, Strategy
from backtesting.lib import crossover

from trademesh.bus.v1 import bus_pb2 as bus
from trademesh.core.backtest.books import BooksStage
from trademesh.core.backtest.detect import DetectStage
from trademesh.core.backtest.market import ReplayedMarket
from trademesh.core.backtest.session import item_time
from trademesh.core.backtest.synthetic import Walk, bar_walk
from trademesh.core.detector.engine.catalog import Catalog
from trademesh.core.detector.strategy_file import load_strategy
from trademesh.core.domain.matching.config import SIM_VENUE, ExchangeConfig, instruments
from trademesh.core.domain.matching.order_manager import FeeSchedule
from trademesh.core.domain.model import OrderRequest, OrderType, Side, TimeInForce
from trademesh.marketdata.v1 import marketdata_pb2 as md

HERE = Path(__file__).resolve().parent
STRATEGY = HERE / "strategies/ema_cross.toml"
NAUTILUS_PYTHON = HERE / ".peer-nautilus-venv/bin/python"
MINUTE_NS = 60 * 10**9
SYMBOL = "BTC/USDT"
SIZE = Decimal("0.01")  # BTC a trade (the walk's book has 0.5 a level; Nautilus's bar book 0.04)
FEE = Decimal("0.001")
CASH = Decimal(10_000_000)


def items(count: int) -> list[Any]:
    return list(bar_walk(Walk(step_ns=MINUTE_NS, steps=count, volatility=0.0015, levels=1)))


# A bench's items by time: (time, the market events, the bars).
Steps = list[tuple[int, list[md.MarketEvent], list[bus.Bar]]]


def steps(data: list[Any]) -> Steps:
    """The items by time (bench/backtest_chain.py's grouping): (time, events, bars)."""
    out: Steps = []
    for item in data:
        at = item_time(item)
        if not out or out[-1][0] != at:
            out.append((at, [], []))
        (out[-1][1] if isinstance(item, md.MarketEvent) else out[-1][2]).append(item)
    return out


# ---- trademesh: the strategy engine, the matching engine, the portfolio


@dataclass
class Fills:
    """(time, side, price, size, fee) of each fill."""

    rows: list[tuple[int, str, Decimal, Decimal, Decimal]] = field(default_factory=list)


def run_trademesh(grouped: Steps) -> tuple[float, Fills, Decimal]:
    """CPU seconds, the fills, and the ledger's PnL in USDT at the last close."""
    exchange = ExchangeConfig(maker_fee_rate=FEE, taker_fee_rate=FEE)
    listed = instruments(exchange, SIM_VENUE)
    balances = {"USDT": CASH}
    start = Walk().start_ns
    market = ReplayedMarket("sim", listed, FeeSchedule(maker=FEE, taker=FEE), balances, start_ns=start)
    books = BooksStage("sim", {i.symbol: i for i in listed})
    books.open(balances, start)
    stage = DetectStage([load_strategy(STRATEGY, Catalog.builtin())], start)
    fills, long = Fills(), False
    buy = OrderRequest(SYMBOL, Side.BUY, OrderType.MARKET, SIZE, None, TimeInForce.IOC)
    sell = OrderRequest(SYMBOL, Side.SELL, OrderType.MARKET, SIZE, None, TimeInForce.IOC)
    on_market, feed = market.on_market, stage.feed
    started = time.process_time()
    for at, events, bars in grouped:
        for event in events:
            on_market(event)
        for asked in feed("sim", events, at, bars).positions:
            if (asked.action == "open") != long:  # open while flat, close while long
                long = not long
                market.submit(buy if long else sell, at)
        for _, execution in market.advance(at):
            books.execution(execution)
            fill = execution.fill
            if fill is not None:
                fills.rows.append((fill.ts_event_ns, fill.side.value, fill.price, fill.size, fill.fee))
    cpu = time.process_time() - started
    last = Decimal(grouped[-1][2][-1].close) if grouped[-1][2] else Decimal(0)
    pnl = sum((line.total for line in books.pnl({("sim", SYMBOL): last}).values()), Decimal(0))
    return cpu, fills, pnl


def run_detector(grouped: Steps) -> tuple[float, int]:
    stage = DetectStage([load_strategy(STRATEGY, Catalog.builtin())], Walk().start_ns)
    requests = 0
    started = time.process_time()
    for at, events, bars in grouped:
        requests += len(stage.feed("sim", events, at, bars).positions)
    return time.process_time() - started, requests


# ---- NautilusTrader (a child process in its own virtualenv)


def write_csv(grouped: list[tuple[int, list[md.MarketEvent], list[bus.Bar]]], path: Path) -> None:
    with path.open("w") as out:
        for _, _, bars in grouped:
            for b in bars:
                out.write(f"{b.open_time_ns + MINUTE_NS},{b.open},{b.high},{b.low},{b.close},{b.volume}\n")


def run_nautilus(csv_path: Path) -> dict[str, Any]:
    done = subprocess.run(
        [str(NAUTILUS_PYTHON), str(HERE / "peer_nautilus.py"), str(csv_path), "--size", str(SIZE)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def nautilus_fills(result: dict[str, Any]) -> Fills:
    fills = Fills()
    for ts, side, price, size, fee in result["fills"]:
        fills.rows.append((int(ts), side.lower(), Decimal(price), Decimal(size), Decimal(fee.split()[0])))
    return fills


# ---- backtesting.py


def _ema(values: Any, period: int) -> Any:
    return pd.Series(values).ewm(span=period, adjust=False).mean().to_numpy()


class EmaCross(Strategy):  # type: ignore[misc]
    fast = 12
    slow = 26

    def init(self) -> None:
        self.fast_line = self.I(_ema, self.data.Close, self.fast)
        self.slow_line = self.I(_ema, self.data.Close, self.slow)

    def next(self) -> None:
        if crossover(self.fast_line, self.slow_line) and not self.position:
            self.buy(size=1)
        elif crossover(self.slow_line, self.fast_line) and self.position:
            self.position.close()


def frame_of(grouped: Steps) -> pd.DataFrame:
    data = [b for _, _, bars in grouped for b in bars]
    index = pd.to_datetime([b.open_time_ns for b in data], unit="ns")
    columns = {
        "Open": [float(b.open) for b in data], "High": [float(b.high) for b in data],
        "Low": [float(b.low) for b in data], "Close": [float(b.close) for b in data],
        "Volume": [float(b.volume) for b in data],
    }  # fmt: skip
    return pd.DataFrame(columns, index=index)


def run_backtesting_py(frame: pd.DataFrame) -> tuple[float, int, float]:
    """CPU seconds, trades, PnL of 0.01 BTC a trade (its 1 BTC's, scaled)."""
    started = time.process_time()
    test = Backtest(frame, EmaCross, cash=1_000_000_000, commission=float(FEE), trade_on_close=True)
    stats = test.run()
    cpu = time.process_time() - started
    trades = stats["_trades"]
    return cpu, int(stats["# Trades"]), float(trades["PnL"].sum()) * float(SIZE)


# ---- the trades compared


def trips(fills: Fills) -> list[tuple[int, int, Decimal]]:
    """Round trips: (entry time, exit time, PnL after fees); a fill split in parts is one leg."""
    legs: list[list[Any]] = []
    for ts, side, price, size, fee in fills.rows:
        if legs and legs[-1][0] == ts and legs[-1][1] == side:
            legs[-1][2] += price * size
            legs[-1][3] += fee
        else:
            legs.append([ts, side, price * size, fee])
    out = []
    for entry, exit_ in zip(legs[0::2], legs[1::2], strict=False):
        out.append((entry[0], exit_[0], exit_[2] - entry[2] - entry[3] - exit_[3]))
    return out


def compare(ours: Fills, theirs: Fills) -> dict[str, Any]:
    mine, peer = trips(ours), trips(theirs)
    same = {(a, b) for a, b, _ in mine} & {(a, b) for a, b, _ in peer}
    pnl_ours = sum((p for _, _, p in mine), Decimal(0))
    pnl_peer = sum((p for _, _, p in peer), Decimal(0))
    # The fill models' difference: ours buy 0.01 above the close and sell 0.01 below, so a trip
    # costs 0.02 x SIZE more, and its fees are on those prices (0.1 % of 0.01 x SIZE a leg more
    # or less, nearly cancelling).
    spread = Decimal("0.02") * SIZE
    shared = [p for a, b, p in mine if (a, b) in same]
    shared_peer = [p for a, b, p in peer if (a, b) in same]
    return {
        "trips_trademesh": len(mine),
        "trips_nautilus": len(peer),
        "trips_same_bars": len(same),
        "pnl_trademesh": str(pnl_ours),
        "pnl_nautilus": str(pnl_peer),
        "pnl_difference": str(pnl_ours - pnl_peer),
        "pnl_difference_on_shared_trips": str(sum(shared, Decimal(0)) - sum(shared_peer, Decimal(0))),
        "spread_cost_of_shared_trips": str(-spread * len(same)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bars", type=int, default=525_600)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-save", action="store_true")
    args = parser.parse_args()
    if not NAUTILUS_PYTHON.exists():
        raise SystemExit("NautilusTrader's virtualenv is missing: sh bench/peer_setup.sh nautilus")
    started, machine = common.now_iso(), common.machine()
    grouped = steps(items(args.bars))
    frame = frame_of(grouped)
    names = ("tm_path", "nautilus", "nautilus_with_setup", "backtesting_py", "tm_detector")
    runs: dict[str, list[float]] = {name: [] for name in names}
    with tempfile.TemporaryDirectory() as scratch:
        csv_path = Path(scratch) / "bars.csv"
        write_csv(grouped, csv_path)
        for _ in range(args.repeats):
            peer = run_nautilus(csv_path)
            runs["nautilus"].append(peer["run_cpu_s"])
            runs["nautilus_with_setup"].append(peer["setup_and_run_cpu_s"])
            cpu, fills, ledger_pnl = run_trademesh(grouped)
            runs["tm_path"].append(cpu)
            cpu_bt, trades_bt, pnl_bt = run_backtesting_py(frame)
            runs["backtesting_py"].append(cpu_bt)
            runs["tm_detector"].append(run_detector(grouped)[0])
    figures = {
        name: {"cpu_s": common.median(values), "cpu_s_runs": values,
               "us_per_bar": 1e6 * common.median(values) / args.bars}
        for name, values in runs.items()
    }  # fmt: skip
    agreement = compare(fills, nautilus_fills(peer))
    agreement |= {"ledger_pnl_trademesh": str(ledger_pnl), "trades_backtesting_py": trades_bt,
                  "pnl_backtesting_py_scaled": pnl_bt}  # fmt: skip
    ratios = {
        "tm_path_over_nautilus": figures["tm_path"]["cpu_s"] / figures["nautilus"]["cpu_s"],
        "tm_path_over_backtesting_py": figures["tm_path"]["cpu_s"] / figures["backtesting_py"]["cpu_s"],
        "tm_detector_over_nautilus": figures["tm_detector"]["cpu_s"] / figures["nautilus"]["cpu_s"],
    }
    rows = [[name, f"{v['cpu_s']:.2f}", f"{v['us_per_bar']:.1f}", f"{args.bars / v['cpu_s']:,.0f}"]
            for name, v in figures.items()]  # fmt: skip
    common.print_table(["run", "cpu s", "us/bar", "bars/cpu s"], rows)
    for name, ratio in ratios.items():
        print(f"{name}: {ratio:.2f}x")
    print(json.dumps(agreement, indent=1))
    if not args.no_save:
        common.write_result(
            "backtest_peer",
            {"started": started, "machine": machine, "command": common.command_line(), "bars": args.bars,
             "repeats": args.repeats, "nautilus_trader": "1.221.0", "figures": figures, "ratios": ratios,
             "agreement": agreement},
        )  # fmt: skip


if __name__ == "__main__":
    main()
