"""The replayed venue's book mirror alone (trademesh.core.backtest.market, issue 18): recorded book
snapshots and trades through ReplayedMarket.on_market, no order of ours; a measuring script,
not a test.

Two books, --snapshots snapshots each, a trade after each snapshot, seeded:

- moving: one level a side around a price that moves by about 100 ticks a snapshot (the book of
  bench/backtest_chain.py: every level is new at every snapshot);
- deep: --levels levels a side on the tick grid around a mid that moves by at most a tick a
  snapshot, each price keeping its size but two changed a snapshot (most levels as the
  snapshot before).

The figure is the CPU (time.process_time) per snapshot, its trade included, median of
--repeats runs. Run it under each tree to compare (PYTHONPATH=<tree>).

    PYTHONPATH=.:gen .venv/bin/python bench/backtest_mirror.py
    PYTHONPATH=.:gen .venv/bin/python bench/backtest_mirror.py --snapshots 20000 --levels 20 --repeats 3
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from decimal import Decimal

from trademesh.common.v1 import common_pb2 as common
from trademesh.core.backtest.market import ReplayedMarket
from trademesh.core.domain.matching.order_manager import FeeSchedule
from trademesh.core.domain.model import Instrument, InstrumentKind
from trademesh.marketdata.v1 import marketdata_pb2 as md

SYMBOL = "BTC/USDT"
START_NS = 1_767_225_600 * 1_000_000_000
INSTRUMENT = Instrument(
    venue="sim", symbol=SYMBOL, native_symbol="BTCUSDT", kind=InstrumentKind.SPOT, base_asset="BTC",
    quote_asset="USDT", settle_asset="USDT", tick_size=Decimal("0.01"), lot_size=Decimal("0.00001"),
)  # fmt: skip
SIZES = ("0.5", "0.25", "1.2", "0.75", "2")


def _event(ts_ns: int) -> md.MarketEvent:
    return md.MarketEvent(venue="sim", symbol=SYMBOL, ts_event_ns=ts_ns)


def _book(n: int, mid: int, levels: int, sizes: list[str]) -> md.MarketEvent:
    """A snapshot of `levels` a side one tick apart around `mid` (ticks), a spread of two ticks."""
    event = _event(START_NS + n * 1_000_000_000)
    for i in range(levels):
        event.book_snapshot.bids.add(price=_price(mid - 1 - i), size=sizes[i])
        event.book_snapshot.asks.add(price=_price(mid + 1 + i), size=sizes[levels + i])
    return event


def _trade(n: int, mid: int, buy: bool) -> md.MarketEvent:
    event = _event(START_NS + n * 1_000_000_000 + 1)
    side = common.SIDE_BUY if buy else common.SIDE_SELL
    event.trade.CopyFrom(
        md.Trade(trade_id=str(n), price=_price(mid + 1 if buy else mid - 1), size="0.1", taker_side=side)
    )
    return event


def _price(ticks: int) -> str:
    return f"{ticks // 100}.{ticks % 100:02d}"


def moving(snapshots: int, seed: int) -> list[md.MarketEvent]:
    rng, mid, out = random.Random(seed), 6_500_000, []
    for n in range(snapshots):
        mid += int(rng.gauss(0, 100))
        out += [_book(n, mid, 1, [rng.choice(SIZES), rng.choice(SIZES)]), _trade(n, mid, rng.random() < 0.5)]
    return out


def deep(snapshots: int, levels: int, seed: int) -> list[md.MarketEvent]:
    rng, mid, out = random.Random(seed), 6_500_000, []
    size: dict[int, str] = {}  # each price's size (ticks), kept while the mid moves
    for n in range(snapshots):
        mid += rng.choice((-1, 0, 0, 1))
        prices = [mid - 1 - i for i in range(levels)] + [mid + 1 + i for i in range(levels)]
        for price in rng.sample(prices, 2):
            size[price] = rng.choice(SIZES)
        listed = [size.setdefault(price, rng.choice(SIZES)) for price in prices]
        out += [_book(n, mid, levels, listed), _trade(n, mid, rng.random() < 0.5)]
    return out


def run(events: list[md.MarketEvent]) -> float:
    fees = FeeSchedule(maker=Decimal("0.001"), taker=Decimal("0.002"))
    market = ReplayedMarket("sim", [INSTRUMENT], fees, {"USDT": Decimal(10**9), "BTC": Decimal(10**4)})
    cpu = time.process_time()
    for event in events:
        market.on_market(event)
    return time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--snapshots", type=int, default=20_000)
    parser.add_argument("--levels", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    books = {"moving, 1 level": moving(args.snapshots, 7), f"deep, {args.levels} levels": deep(
        args.snapshots, args.levels, 7)}  # fmt: skip
    for name, events in books.items():
        cpu = statistics.median(run(events) for _ in range(args.repeats))
        print(f"{name:>20}: {cpu:6.2f} CPU s, {cpu / args.snapshots * 1e6:6.1f} us a snapshot")


if __name__ == "__main__":
    main()
