"""What margin and liquidation cost the matching engine's market step (issue 60): a measuring
script, not a test.

    .venv/bin/python bench/margin_check.py                 # 200,000 steps, 5 repeats
    .venv/bin/python bench/margin_check.py --steps 50000 --repeats 3

A step is what the sim does after each market move: the synthetic quotes of one perpetual
replaced (a cancel and a submit on each side, the mark is their mid) and `check_liquidations()`
asked. Three exchanges, each stepped through the same seeded random walk of quotes (the walk
never comes near the position's liquidation price, so nothing is liquidated and every step is a
check that finds nothing due):
- unmargined: an exchange built without MarginTerms (perpetuals fee-only, no liquidation);
- margined, flat: MarginTerms, no position (the check's floor: no position to reckon);
- margined, 10x isolated long: MarginTerms and an open 10x position whose liquidation price is
  looked at every step (the price is kept until the account changes: margin_account.py).
Reported per workload: median CPU µs a step over the repeats (this process's time; the steps are
single-threaded), and its ratio to the unmargined step measured in the same run.
"""

from __future__ import annotations

import argparse
import random
import time
from decimal import Decimal
from typing import Any

import _common as bench_common  # bench/ (the script's own directory)

from trademesh.core.domain.matching.exchange import NullListener, SimExchange
from trademesh.core.domain.matching.margin_account import MarginTerms
from trademesh.core.domain.model import (
    Instrument,
    InstrumentKind,
    MarginMode,
    OrderRequest,
    OrderType,
    Side,
    TimeInForce,
)

__all__ = ["main"]

D = Decimal
PERP = "BTC/USDT:USDT"
INSTRUMENT = Instrument(
    "sim", PERP, "BTCUSDT-PERP", InstrumentKind.PERPETUAL, "BTC", "USDT", "USDT", D("0.1"), D("0.001")
)
WORKLOADS = ("unmargined", "margined, flat", "margined, 10x isolated long")


def _walk(steps: int, seed: int) -> list[tuple[int, int]]:
    """(bid, ask) ticks of each step: a walk of a tick or two around 50,000.0, 2 ticks wide."""
    rng = random.Random(seed)
    mid, quotes = 500_000, []
    for _ in range(steps):
        mid = min(max(mid + rng.choice((-2, -1, 0, 1, 2)), 499_000), 501_000)
        quotes.append((mid - 1, mid + 1))
    return quotes


def _exchange(workload: str) -> tuple[SimExchange, list[int]]:
    margin = None if workload == "unmargined" else MarginTerms()
    exchange = SimExchange(
        "sim", [INSTRUMENT], maker_fee_rate=D(0), taker_fee_rate=D("0.0004"),
        balances={"USDT": D(100_000)}, clock=lambda: 5_000_000_000, listener=NullListener(), margin=margin,
    )  # fmt: skip
    ids = [
        exchange.submit_synthetic(PERP, Side.BUY, 499_999, 10_000_000),
        exchange.submit_synthetic(PERP, Side.SELL, 500_001, 10_000_000),
    ]
    if workload.endswith("long"):
        exchange.set_leverage(PERP, D(10), MarginMode.ISOLATED)
        exchange.place(OrderRequest(PERP, Side.BUY, OrderType.MARKET, D(1), None, TimeInForce.IOC))
    return exchange, ids


def _run(workload: str, quotes: list[tuple[int, int]]) -> float:
    """CPU seconds of stepping through `quotes`."""
    exchange, ids = _exchange(workload)
    started = time.process_time()
    for bid, ask in quotes:
        exchange.cancel_synthetic(PERP, ids[0])
        exchange.cancel_synthetic(PERP, ids[1])
        ids[0] = exchange.submit_synthetic(PERP, Side.BUY, bid, 10_000_000)
        ids[1] = exchange.submit_synthetic(PERP, Side.SELL, ask, 10_000_000)
        if exchange.check_liquidations():
            raise RuntimeError("a liquidation in the bench's walk: it must stay far from the price")
    return time.process_time() - started


def run(args: argparse.Namespace) -> dict[str, Any]:
    quotes = _walk(args.steps, args.seed)
    times: dict[str, list[float]] = {name: [] for name in WORKLOADS}
    for round_ in range(args.repeats):
        order = WORKLOADS[round_ % 3 :] + WORKLOADS[: round_ % 3]  # rotated: no workload always first
        for name in order:
            times[name].append(_run(name, quotes))
    per_step = {name: bench_common.median(values) / args.steps * 1e6 for name, values in times.items()}
    base = per_step["unmargined"]
    rows = [(name, f"{per_step[name]:.2f}", f"{per_step[name] / base:.3f}x") for name in WORKLOADS]
    bench_common.print_table(("workload", "CPU µs a step (median)", "vs unmargined"), rows)
    return {
        "steps": args.steps,
        "repeats": args.repeats,
        "seed": args.seed,
        "us_per_step": per_step,
        "ratio_to_unmargined": {name: per_step[name] / base for name in WORKLOADS},
        "cpu_s": times,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=200_000, help="market steps a run (default 200,000)")
    parser.add_argument("--repeats", type=int, default=5, help="rounds, workloads rotated (default 5)")
    parser.add_argument("--seed", type=int, default=60, help="the quotes' walk (default 60)")
    args = parser.parse_args()
    load = bench_common.machine()
    result = run(args)
    path = bench_common.write_result(
        "margin_check", {"machine": load, "command": bench_common.command_line(), **result}
    )
    print(f"written: {path}")


if __name__ == "__main__":
    main()
