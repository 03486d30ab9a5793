"""How deep the sim's synthetic book is, step by step, and how often a market order of a given size
would find a side too thin to fill it: a measuring script, not a test.

    .venv/bin/python bench/sim_book_depth.py                          # the tests' default symbols
    .venv/bin/python bench/sim_book_depth.py sim.toml --order BTC/USDT=0.01 --order BTC/USDT:USDT=0.5
    .venv/bin/python bench/sim_book_depth.py sim.toml --as-is --seconds 600 --seeds 7

The config is read as a test's sim venue reads it (tests/integration/support.py with_test_step:
the tests' 50 ms step and their default symbols unless it sets its own), or as written with
--as-is. Each seed's market (the real SyntheticMarket on an in-process SimExchange, no user
orders) is primed and stepped for --seconds of market time; after every step each side's total
lots are sampled. Reported per symbol: the side's smallest, 0.1 % and 1 % quantiles and median,
and per --order (a size in the symbol's units) the share of steps whose ask side (what a buy
takes) and bid side (what a sell takes) held less than the order: the odds that a market order
sent at a random moment expires unfilled in part ("not enough liquidity"). A share of 0 over N
steps says the odds are below about 1/N.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository: tests.integration.support

from tests.integration.support import with_test_step
from trademesh.core.domain.model import Side
from trademesh.core.platform.config.file import parse_toml
from trademesh.core.platform.config.schema import load
from trademesh.venues.sim.config import SimConfig
from trademesh.venues.sim.venue import SimVenue

__all__ = ["main"]


def _config(path: Path | None, as_is: bool) -> SimConfig:
    text = path.read_text() if path is not None else ""
    if not as_is:
        text = with_test_step(text)
    source = str(path or "the tests' defaults")
    return load(SimConfig, parse_toml(text, "config", source), source)


def _sample(
    config: SimConfig, seconds: float, seeds: Sequence[int]
) -> dict[str, tuple[list[int], list[int]]]:
    """Per symbol, (ask, bid) total lots after every step, over the seeds."""
    sides: dict[str, tuple[list[int], list[int]]] = {s.symbol: ([], []) for s in config.symbols}
    for seed in seeds:
        venue = SimVenue(dataclasses.replace(config, seed=seed))
        market = venue.market
        market.prime()
        books = [(venue.exchange.book(s.symbol), *sides[s.symbol]) for s in config.symbols]
        for _ in range(round(seconds / market.step_s)):
            market.step()
            for book, asks, bids in books:
                asks.append(sum(lots for _, lots in book.depth(Side.SELL)))
                bids.append(sum(lots for _, lots in book.depth(Side.BUY)))
    return sides


def _orders(items: Sequence[str]) -> dict[str, list[Decimal]]:
    orders: dict[str, list[Decimal]] = {}
    for item in items:
        symbol, _, size = item.rpartition("=")
        if not symbol:
            raise SystemExit(f"--order {item}: SYMBOL=SIZE (BTC/USDT=0.01)")
        orders.setdefault(symbol, []).append(Decimal(size))
    return orders


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("config", nargs="?", type=Path, help="a sim config TOML (none: the tests' defaults)")
    parser.add_argument("--as-is", action="store_true", help="the config as written, not as a test's sim")
    parser.add_argument("--seconds", type=float, default=3600.0, help="market time per seed")
    parser.add_argument("--seeds", default="7,8,9", help="comma-separated seeds")
    parser.add_argument("--order", action="append", default=[], help="SYMBOL=SIZE, repeatable")
    args = parser.parse_args(argv)
    config = _config(args.config, args.as_is)
    orders = _orders(args.order)
    specs = {s.symbol: s for s in config.symbols}
    unknown = set(orders) - set(specs)
    if unknown:
        raise SystemExit(f"no such symbol in the config: {', '.join(sorted(unknown))}")
    seeds = [int(s) for s in args.seeds.split(",")]
    print(f"step {config.tick_interval_ms} ms, {args.seconds:g} s a seed, seeds {seeds}")
    for symbol, (asks, bids) in _sample(config, args.seconds, seeds).items():
        spec = specs[symbol]
        ranked = sorted(asks + bids)
        n = len(ranked)
        print(
            f"{symbol}: makers {spec.maker_size_lots} lots, takers {spec.taker_size_lots}, "
            f"{spec.book_depth_levels} levels {spec.level_spacing_ticks} ticks apart; "
            f"a side over {len(asks)} steps: min {ranked[0]}, 0.1% {ranked[n // 1000]}, "
            f"1% {ranked[n // 100]}, median {ranked[n // 2]} lots"
        )
        for size in orders.get(symbol, []):
            lots = int(size / spec.lot_size)
            thin_asks = sum(1 for v in asks if v < lots) / len(asks)
            thin_bids = sum(1 for v in bids if v < lots) / len(bids)
            print(f"  {size} ({lots} lots): a buy finds too little {thin_asks:.1e}, a sell {thin_bids:.1e}")


if __name__ == "__main__":
    main()
