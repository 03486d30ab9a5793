"""What the demo's first half hour costs and earns: `trademesh up`'s chain (the example
strategies, the advisor as `up` runs it, the inspector's shipped policies, the venue's fees) over
minutes of the sim venue's own synthetic market, through the backtest (the same engine cores as
live, on a simulated clock).

The market is the sim's (trademesh/venues/sim/market_data.py; its config as `up` runs it, or
--sim-config) played offline in simulated time: its trades as they happen and, per market step,
one book delta of the levels the step changed (the book a live subscriber holds after the
step's batch). With the config's `history_s`, that much market is played first and only its
bars are kept, as `up`'s mesh opens: the detector's patches warm from them (the venue's
candles live), the advisor's context starts with them (the bar service's backfill live). It is
not a recording of a live session: the chain's own orders meet the replayed book as in any
backtest (docs/backtest.md). A 30-minute live `trademesh up` is too heavy for a shared 2-core
machine; this runs the same cores on 30 minutes of the same market.

    .venv/bin/python bench/demo_edge.py                      # 30 minutes, `up`'s defaults
    .venv/bin/python bench/demo_edge.py --minutes 5 --no-save
    .venv/bin/python bench/demo_edge.py --sim-config F --timeframe 1s --label before

Printed: signals, decisions (intents and the commonest block reasons), the inspector's verdicts,
stand-downs, fills, round trips, fees against realised PnL (before and net of fees).
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import re
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import _common as common

from trademesh.bus.v1 import bus_pb2 as bus
from trademesh.common.v1 import common_pb2
from trademesh.core.advisor.config import MESH_MAX_NOTIONAL_SHARE, MESH_TIMEFRAME
from trademesh.core.backtest.assemble import build
from trademesh.core.backtest.config import BacktestConfig
from trademesh.core.backtest.detect import bar_value
from trademesh.core.backtest.outcome import outcome
from trademesh.core.backtest.session import drive_sync
from trademesh.core.bars.engine import VenueBars
from trademesh.core.bars.watermark import WatermarkRules
from trademesh.core.detector.config import example_strategies
from trademesh.core.detector.engine.catalog import Catalog
from trademesh.core.detector.strategy_file import load_strategy
from trademesh.core.domain.matching.engine import LevelChange
from trademesh.core.domain.matching.exchange import SimExchange
from trademesh.core.domain.model import Side
from trademesh.core.inspector.engine.events import RiskAction, RiskOutput, RiskVerdict
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.venues.sim.config import DEMO_MARKET, SimConfig, load_config
from trademesh.venues.sim.market_data import SyntheticMarket
from trademesh.venues.sim.symbols import instruments

S_NS = 1_000_000_000
START_NS = 1_767_225_600 * S_NS  # 2026-01-01: the half hour measured starts here
CENT = Decimal("0.01")


class SimTape:
    """The sim's market played in simulated time; a SimListener writing its trades and each
    step's book changes as MarketEvents."""

    def __init__(self, config: SimConfig, start_ns: int) -> None:
        self.now_ns = start_ns
        self.step_ns = config.tick_interval_ms * 1_000_000
        self.events: list[md.MarketEvent] = []
        self.exchange = SimExchange(
            "sim", instruments(config), maker_fee_rate=config.maker_fee_rate,
            taker_fee_rate=config.taker_fee_rate, balances=dict(config.balances), clock=lambda: self.now_ns,
            listener=self,
        )  # fmt: skip
        self._changed: dict[str, dict[tuple[Side, int], int]] = collections.defaultdict(dict)
        self._sequence: dict[str, int] = collections.defaultdict(int)
        self.market = SyntheticMarket(self.exchange, config)
        self.market.prime()
        for item in config.symbols:
            self.snapshot(item.symbol)

    def play(self, seconds: int) -> list[md.MarketEvent]:
        """The next `seconds` of market, as events."""
        self.events = []
        for _ in range(seconds * S_NS // self.step_ns):
            self.now_ns += self.step_ns
            self.market.step()
            self._flush()
        return self.events

    def snapshot(self, symbol: str) -> None:
        book = self.exchange.book(symbol)
        snapshot = self._book(symbol, snapshot=True).book_snapshot
        for side, levels in ((Side.BUY, snapshot.bids), (Side.SELL, snapshot.asks)):
            for price, lots in book.depth(side):
                levels.add(price=self._price(symbol, price), size=self.exchange.size_str(symbol, lots))
        self._changed[symbol].clear()

    def on_trade(
        self, symbol: str, trade_id: str, price_ticks: int, lots: int, taker_side: Side, ts_ns: int
    ) -> None:
        event = md.MarketEvent(venue="sim", symbol=symbol, ts_event_ns=ts_ns, ts_recv_ns=ts_ns)
        trade = event.trade
        trade.trade_id, trade.price = trade_id, self._price(symbol, price_ticks)
        trade.size = self.exchange.size_str(symbol, lots)
        trade.taker_side = common_pb2.SIDE_BUY if taker_side is Side.BUY else common_pb2.SIDE_SELL
        self.events.append(event)

    def on_levels(self, symbol: str, changes: list[LevelChange]) -> None:
        levels = self._changed[symbol]
        for side, price, lots in changes:
            levels[(side, price)] = lots

    def on_execution(self, execution: Any) -> None:
        pass

    def _flush(self) -> None:
        """The step's changed levels, one delta per symbol, a nanosecond after its trades."""
        for symbol, levels in self._changed.items():
            if levels:
                delta = self._book(symbol, snapshot=False).book_delta
                for (side, price), lots in sorted(levels.items(), key=lambda kv: (kv[0][0].value, kv[0][1])):
                    out = delta.bids if side is Side.BUY else delta.asks
                    out.add(price=self._price(symbol, price), size=self.exchange.size_str(symbol, lots))
                levels.clear()

    def _price(self, symbol: str, ticks: int) -> str:
        return self.exchange.price_str(symbol, ticks)

    def _book(self, symbol: str, snapshot: bool) -> md.MarketEvent:
        self._sequence[symbol] += 1
        at = self.now_ns + 1
        event = md.MarketEvent(venue="sim", symbol=symbol, ts_event_ns=at, ts_recv_ns=at)
        (event.book_snapshot if snapshot else event.book_delta).sequence = self._sequence[symbol]
        self.events.append(event)
        return event


def history_bars(events: list[md.MarketEvent]) -> list[bus.Bar]:
    """The bar service's bars of the history's trades (its engine), every timeframe, by close."""
    engine = VenueBars("sim", WatermarkRules())
    trades = [e for e in events if e.HasField("trade")]
    envelopes = []
    for index in range(0, len(trades), 500):
        envelope = bus.Envelope()
        envelope.market.events.extend(trades[index : index + 500])
        ms = trades[index].ts_event_ns // 1_000_000
        envelopes.append((f"{ms}-{index}", envelope))
    out = [engine.process(envelopes), engine.close_all()]
    bars = [bar for o in out for found in o.bars.values() for bar in found]
    return sorted(bars, key=lambda b: b.open_time_ns)


def _stand_downs(backtest: Any) -> list[Any]:
    """Every STAND_DOWN event the inspector's core makes (observed; the run is not changed)."""
    seen: list[Any] = []
    feed = backtest.inspect._feed

    def observed(entry: Any) -> RiskOutput | RiskVerdict:
        result: RiskOutput | RiskVerdict = feed(entry)
        output = result.output if isinstance(result, RiskVerdict) else result
        seen.extend(e for e in output.events if e.action is RiskAction.STAND_DOWN)
        return result

    backtest.inspect._feed = observed
    return seen


def run(args: argparse.Namespace) -> dict[str, Any]:
    sim_path = args.sim_config or DEMO_MARKET
    sim = load_config(sim_path)
    files = list(example_strategies())
    strategies = [load_strategy(path, Catalog.builtin()) for path in files]
    traded = {symbol for s in strategies for symbol in s.symbols}
    sim = dataclasses.replace(sim, symbols=tuple(s for s in sim.symbols if s.symbol in traded))
    started = time.perf_counter()
    tape = SimTape(sim, START_NS - sim.history_s * S_NS)
    history = history_bars(tape.play(sim.history_s)) if sim.history_s else []
    events = tape.play(int(args.minutes * 60))
    config = BacktestConfig(
        strategies=tuple(files), start_ns=START_NS, end_ns=START_NS + int(args.minutes * 60 + 1) * S_NS,
        symbols=tuple(sorted(traded)), sim_config=sim_path, timeframe=args.timeframe,
        advisor_config=args.advisor_config, max_notional_share=MESH_MAX_NOTIONAL_SHARE, sample_s=60,
    )  # fmt: skip
    backtest = build(config, strategies)
    backtest.detect.warm_from_history([("sim", bar_value(b)) for b in history], START_NS)
    backtest.bars.warm(history)
    stand_downs = _stand_downs(backtest)
    done = outcome(drive_sync(backtest, events), backtest.settings.sample_ns)
    return _figures(args, sim_path, events, done, stand_downs, time.perf_counter() - started)


def _figures(
    args: Any, sim: Path, events: list[Any], done: Any, downs: list[Any], wall: float
) -> dict[str, Any]:
    tape = done.tape
    blocked = collections.Counter(_reason(d.block_reason) for d in tape.decisions if not d.HasField("intent"))
    intents = [d for d in tape.decisions if d.HasField("intent")]
    refused = collections.Counter(v.reasons[0].policy for v in tape.verdicts if not v.allowed and v.reasons)
    fees = sum((f.fee for f in done.fills), Decimal(0))
    net = sum((t.pnl for t in done.trips), Decimal(0))
    gross = net + sum((t.fees for t in done.trips), Decimal(0))
    return {
        "minutes": args.minutes, "sim_config": str(sim), "timeframe": args.timeframe,
        "market_events": len(events), "signals": len(tape.signals), "decisions": len(tape.decisions),
        "intents": len(intents),
        "first_intent_s": round((intents[0].ts_decision_ns - START_NS) / S_NS) if intents else None,
        "blocked": dict(blocked.most_common(6)),
        "verdicts": dict(collections.Counter(v.action.value for v in tape.verdicts)),
        "inspector_blocked": dict(refused),
        "stand_downs": len(downs),
        "first_stand_down_s": round((downs[0].at_ns - START_NS) / S_NS) if downs else None,
        "fills": len(done.fills), "round_trips": len(done.trips),
        "wins": sum(1 for t in done.trips if t.pnl > 0),
        "fees_all_fills": str(fees.quantize(CENT)), "realised_gross": str(gross.quantize(CENT)),
        "realised_net_of_fees": str(net.quantize(CENT)), "wall_s": round(wall, 1),
    }  # fmt: skip


def _reason(text: str) -> str:
    """A block reason without its numbers, so like reasons count together."""
    return re.sub(r"-?\d[\d.,]*", "#", text)[:80]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--timeframe", default=MESH_TIMEFRAME, help="the advisor's bars (default: up's)")
    parser.add_argument("--sim-config", type=Path, help="the sim's config (default: up's demo market)")
    parser.add_argument("--advisor-config", type=Path, help="the advisor's engine options")
    parser.add_argument("--label", default="", help="the results file's suffix")
    parser.add_argument("--no-save", action="store_true", help="print only")
    args = parser.parse_args()
    figures = run(args)
    for name, value in figures.items():
        print(f"{name:>20}  {value}")
    if not args.no_save:
        common.write_result(
            f"demo_edge{'_' + args.label if args.label else ''}",
            {"started": common.now_iso(), "machine": common.machine(), "command": common.command_line(),
             "figures": figures},
        )  # fmt: skip


if __name__ == "__main__":
    main()
