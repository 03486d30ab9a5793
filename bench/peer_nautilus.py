"""The NautilusTrader side of bench/backtest_peer.py: run in the peer's own virtualenv
(`sh bench/peer_setup.sh nautilus`, bench/.peer-nautilus-venv), never with the project's.

Reads the bench's bars (a CSV the bench writes: close time ns, open, high, low, close, volume),
builds NautilusTrader's BacktestEngine with one simulated venue (a cash account, netting, an L1
book driven by the bars: `bar_execution`, Nautilus's default) and Binance's spot BTCUSDT as its
test kit ships it (ticks of 0.01, sizes of 0.000001, maker and taker fees 0.1 %), and an EMA
cross: long only, a market buy of --size when the fast EMA crosses above the slow one while
flat, the position closed at market when it crosses back below. The EMAs are Nautilus's own
(`ExponentialMovingAverage`: seeded with the first close, alpha 2 / (period + 1)); a cross is
read as trademesh's `crosses_above` reads it (the sides of two successive bars, both EMAs
warm).

Prints one JSON object: the CPU seconds (time.process_time) of `engine.run()` alone, the same
with the engine's set-up (venue, instrument, strategy, `add_data` of the bars), and the fills
(time, side, price, size, commission). With --reports DIR (bench/backtest_e2e.py: the peer end to
end, as a user runs it), its reports after the run too, written there as CSV: the orders, the
fills, the positions and the account (the trader's `generate_*_report`), their CPU seconds
reported as `reports_cpu_s`.

    bench/.peer-nautilus-venv/bin/python bench/peer_nautilus.py BARS.csv --size 0.1
    bench/.peer-nautilus-venv/bin/python bench/peer_nautilus.py BARS.csv --fast 10 --slow 30 --reports DIR
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from decimal import Decimal
from pathlib import Path

from nautilus_trader.backtest.engine import BacktestEngine, BacktestEngineConfig
from nautilus_trader.config import LoggingConfig, StrategyConfig
from nautilus_trader.indicators import ExponentialMovingAverage
from nautilus_trader.model.currencies import BTC, USDT
from nautilus_trader.model.data import Bar, BarType
from nautilus_trader.model.enums import AccountType, OmsType, OrderSide
from nautilus_trader.model.events import OrderFilled
from nautilus_trader.model.identifiers import InstrumentId, TraderId, Venue
from nautilus_trader.model.objects import Money, Price, Quantity
from nautilus_trader.test_kit.providers import TestInstrumentProvider
from nautilus_trader.trading.strategy import Strategy

VENUE = Venue("BINANCE")
BAR_TYPE = "BTCUSDT.BINANCE-1-MINUTE-LAST-EXTERNAL"


class CrossConfig(StrategyConfig, frozen=True):  # type: ignore[misc,call-arg]
    instrument_id: InstrumentId
    bar_type: BarType
    size: Decimal
    fast: int = 12
    slow: int = 26


class Cross(Strategy):  # type: ignore[misc]
    """Long only: in on the fast EMA's cross above the slow one, out on its cross below."""

    def __init__(self, config: CrossConfig) -> None:
        super().__init__(config)
        self.fast = ExponentialMovingAverage(config.fast)
        self.slow = ExponentialMovingAverage(config.slow)
        self.above: bool | None = None
        self.long = False
        self.fills: list[list[object]] = []

    def on_start(self) -> None:
        self.quantity = self.cache.instrument(self.config.instrument_id).make_qty(self.config.size)
        self.register_indicator_for_bars(self.config.bar_type, self.fast)
        self.register_indicator_for_bars(self.config.bar_type, self.slow)
        self.subscribe_bars(self.config.bar_type)

    def on_bar(self, bar: Bar) -> None:
        if not (self.fast.initialized and self.slow.initialized):
            return
        above = self.fast.value > self.slow.value
        was, self.above = self.above, above
        if was is None or above == was:
            return
        side = OrderSide.BUY if above else OrderSide.SELL
        if above == self.long:
            return
        self.long = above
        order = self.order_factory.market(self.config.instrument_id, side, self.quantity)
        self.submit_order(order)

    def on_order_filled(self, event: OrderFilled) -> None:
        side, price, size = event.order_side.name, str(event.last_px), str(event.last_qty)
        self.fills.append([event.ts_event, side, price, size, str(event.commission)])


def read_bars(path: str, bar_type: BarType) -> list[Bar]:
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle))
    return [
        Bar(
            bar_type,
            Price.from_str(o),
            Price.from_str(h),
            Price.from_str(lo),
            Price.from_str(c),
            Quantity.from_str(f"{Decimal(v):.6f}"),
            int(ts),
            int(ts),
        )
        for ts, o, h, lo, c, v in rows
    ]


def write_reports(engine: BacktestEngine, directory: Path) -> None:
    """The trader's reports after the run, as a user writes them: orders, fills, positions, account."""
    directory.mkdir(parents=True, exist_ok=True)
    trader = engine.trader
    trader.generate_orders_report().to_csv(directory / "orders.csv")
    trader.generate_order_fills_report().to_csv(directory / "fills.csv")
    trader.generate_positions_report().to_csv(directory / "positions.csv")
    trader.generate_account_report(VENUE).to_csv(directory / "account.csv")


def run(path: str, size: Decimal, fast: int, slow: int, reports: Path | None = None) -> dict[str, object]:
    bar_type = BarType.from_str(BAR_TYPE)
    bars = read_bars(path, bar_type)
    started = time.process_time()
    config = BacktestEngineConfig(trader_id=TraderId("BENCH-001"), logging=LoggingConfig(bypass_logging=True))
    engine = BacktestEngine(config)
    engine.add_venue(
        venue=VENUE, oms_type=OmsType.NETTING, account_type=AccountType.CASH,
        starting_balances=[Money(10_000_000, USDT), Money(0, BTC)],
    )  # fmt: skip
    instrument = TestInstrumentProvider.btcusdt_binance()
    engine.add_instrument(instrument)
    engine.add_data(bars)
    strategy = Cross(
        CrossConfig(instrument_id=instrument.id, bar_type=bar_type, size=size, fast=fast, slow=slow)
    )
    engine.add_strategy(strategy)
    ran = time.process_time()
    engine.run()
    done = time.process_time()
    result = {
        "run_cpu_s": done - ran, "setup_and_run_cpu_s": done - started, "bars": len(bars),
        "fills": strategy.fills,
    }  # fmt: skip
    if reports is not None:
        write_reports(engine, reports)
        result["reports_cpu_s"] = time.process_time() - done
    engine.dispose()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("bars")
    parser.add_argument("--size", default="0.01")
    parser.add_argument("--fast", type=int, default=12)
    parser.add_argument("--slow", type=int, default=26)
    parser.add_argument("--reports", type=Path, help="write the reports after the run into this directory")
    args = parser.parse_args()
    print(json.dumps(run(args.bars, Decimal(args.size), args.fast, args.slow, args.reports)))


if __name__ == "__main__":
    main()
