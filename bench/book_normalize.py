"""BookNormalizer.poll per book update (issue 17): deltas from ccxt's change log vs the full diff.

A ccxt.pro order book of --levels levels per side at depth --levels (ccxt trims it after every
update, as watch_order_book does) takes --updates venue updates of 1 to 5 levels each (mostly
near the top: sizes change, levels go, new levels come and push the worst one out). After each
update the normalizer polls the book as the live venue does (ccxt resolved it). Two modes on
the same updates:

- `ccxt`: ccxt's own OrderBook, no poll: what ccxt alone spends on the updates (store, limit);
- `diff`: ccxt's own OrderBook, whose sides keep no log, polled: both sides rebuilt and diffed
  whole on every poll (what every poll did before issue 17);
- `log`: the book our exchanges create (trademesh.venues.live.tracked_book), polled: only the touched
  levels are re-read (its store also records the price: that cost is counted).

A pass times its whole loop of updates and polls with the process's CPU clock (a clock per
poll would cost a system call, more than a logged poll; CPU time, as the machine is shared);
the deltas are flushed after the clock stopped. Passes alternate ccxt, diff, log, ccxt...
each on a new book from the same seed. A mode's figure is the median of its passes' CPU µs
per update; the poll's cost is that minus the `ccxt` mode's. The deltas of `diff` and `log`
are checked equal (as {price: size} per side) on the first pass.

    .venv/bin/python bench/book_normalize.py --levels 1000 --updates 20000 --passes 7
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path
from typing import Any

from ccxt.async_support.base.ws.order_book import OrderBook

from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.venues.live.normalize import BookNormalizer
from trademesh.venues.live.tracked_book import TrackedOrderBook
from trademesh.venues.runtime.fanout import MarketRoute
from trademesh.venues.runtime.feed import MarketFeed
from trademesh.venues.runtime.stats import StreamTable

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common

SYMBOL = "BTC/USDT"
TICK = 0.01
MID = 50_000.0
MODES = {"ccxt": OrderBook, "diff": OrderBook, "log": TrackedOrderBook}

Update = list[tuple[bool, float, float]]  # (bid?, price, size: 0 removes)


class Sink:
    """Keeps the deltas of the first pass (to compare the modes), drops everything after."""

    def __init__(self, keep: bool) -> None:
        self.keep = keep
        self.deltas: list[tuple[dict[str, str], dict[str, str]]] = []

    def dispatch(self, pending: dict[MarketRoute, bytes]) -> None:
        if not self.keep:
            return
        for chunk in pending.values():
            for event in md.SubscribeResponse.FromString(chunk).events:
                if event.HasField("book_delta"):
                    delta = event.book_delta
                    self.deltas.append(
                        ({lv.price: lv.size for lv in delta.bids}, {lv.price: lv.size for lv in delta.asks})
                    )


def _price(bid: bool, ticks: int) -> float:
    return round(MID - ticks * TICK if bid else MID + ticks * TICK, 2)


def _size(rng: random.Random) -> float:
    return round(rng.lognormvariate(0.0, 1.5), 4) or 0.0001


def snapshot(levels: int, rng: random.Random) -> dict[str, Any]:
    """Levels every 2 ticks from the mid (new levels can come between them)."""
    return {
        "bids": [[_price(True, 1 + 2 * i), _size(rng)] for i in range(levels)],
        "asks": [[_price(False, 1 + 2 * i), _size(rng)] for i in range(levels)],
    }


def updates(count: int, levels: int, rng: random.Random) -> list[Update]:
    """Each of 1-5 levels at a distance from the top drawn mostly near it; 60 % a size change,
    20 % a level gone, 20 % a level between two (new, or changed when already there)."""
    out: list[Update] = []
    for _ in range(count):
        update: Update = []
        for _ in range(rng.randint(1, 5)):
            bid = rng.random() < 0.5
            rank = min(int(rng.expovariate(1 / 20)), levels - 1)
            roll = rng.random()
            if roll < 0.6:
                update.append((bid, _price(bid, 1 + 2 * rank), _size(rng)))
            elif roll < 0.8:
                update.append((bid, _price(bid, 1 + 2 * rank), 0.0))
            else:
                update.append((bid, _price(bid, 2 + 2 * rank), _size(rng)))
        out.append(update)
    return out


def one_pass(mode: str, levels: int, stream: list[Update], seed: int, keep: bool) -> tuple[float, Sink]:
    """(CPU µs per update, the sink) of one pass of `mode` over `stream`: ccxt's work on the book
    (store and limit), plus the normalizer's poll unless the mode is `ccxt`."""
    sink = Sink(keep)
    feed = MarketFeed("bench", StreamTable())
    feed.attach(sink)  # type: ignore[arg-type]
    book = MODES[mode](snapshot(levels, random.Random(seed)), levels)
    book["nonce"] = 0
    exchange = type("Exchange", (), {"orderbooks": {SYMBOL: book}})()
    normalizer = BookNormalizer(feed, SYMBOL, {id(book)})  # ccxt resolved the book: polled each time
    normalizer.poll(exchange)  # the snapshot, not timed
    feed.flush()
    bids, asks, limit = book["bids"], book["asks"], book.limit
    poll = normalizer.poll if mode != "ccxt" else None
    started = time.process_time()
    for nonce, update in enumerate(stream, 1):
        for bid, price, size in update:
            (bids if bid else asks).store(price, size)
        limit()
        book["nonce"] = nonce
        if poll is not None:
            poll(exchange)
    spent = time.process_time() - started
    feed.flush()  # the deltas go out in one batch, after the clock stopped
    return 1e6 * spent / len(stream), sink


def measure(levels: int, count: int, passes: int, seed: int) -> dict[str, Any]:
    stream = updates(count, levels, random.Random(seed + 1))
    per_mode: dict[str, list[float]] = {mode: [] for mode in MODES}
    sinks: dict[str, Sink] = {}
    for index in range(passes):
        for mode in MODES:  # alternating: ccxt, diff, log, ccxt, diff, log...
            us, sink = one_pass(mode, levels, stream, seed, keep=index == 0)
            per_mode[mode].append(us)
            sinks[mode] = sink if index == 0 else sinks[mode]
    assert sinks["log"].deltas == sinks["diff"].deltas, "the modes sent different deltas"
    assert len(sinks["log"].deltas) > count // 2
    median = {mode: common.median(values) for mode, values in per_mode.items()}
    poll = {mode: median[mode] - median["ccxt"] for mode in ("diff", "log")}
    return {
        "levels_per_side": levels,
        "updates": count,
        "levels_touched_per_update": round(sum(len(u) for u in stream) / len(stream), 2),
        "deltas_sent": len(sinks["log"].deltas),
        "cpu_us_per_update": per_mode,
        "cpu_us_per_update_median": median,
        "poll_us": poll,
        "ratio": poll["diff"] / poll["log"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--levels", type=int, default=1_000, help="levels per side (and ccxt's depth)")
    parser.add_argument("--updates", type=int, default=20_000, help="venue updates per pass")
    parser.add_argument("--passes", type=int, default=7, help="passes per mode (median)")
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument("--result", default="book_normalize", help="bench/results/<name>.json")
    args = parser.parse_args()
    started, result = common.now_iso(), measure(args.levels, args.updates, args.passes, args.seed)
    median, poll = result["cpu_us_per_update_median"], result["poll_us"]
    common.print_table(
        ["mode", "CPU µs per update", "poll µs", "passes"],
        [
            [
                mode,
                f"{median[mode]:.1f}",
                f"{poll[mode]:.1f}" if mode in poll else "-",
                " ".join(f"{v:.1f}" for v in result["cpu_us_per_update"][mode]),
            ]
            for mode in MODES
        ],
    )
    print(
        f"{args.levels} levels per side, {result['levels_touched_per_update']} levels touched per update, "
        f"{result['deltas_sent']} deltas; poll: full diff / change log = {result['ratio']:.1f}x"
    )
    if args.result:
        payload = {
            "benchmark": "book_normalize",
            "command": common.command_line(),
            "started": started,
            "machine": common.machine(),
            "settings": vars(args),
            "result": result,
        }
        print(f"results: {common.write_result(args.result, payload)}")


if __name__ == "__main__":
    main()
