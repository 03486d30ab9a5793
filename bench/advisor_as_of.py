"""What deciding a signal as of its event time costs the advisor's loop, in process (docs/
backtest.md, "Parity with live"; the advisor's CPU with its book subscription in a mesh is
bench/advisor_refresh.py's):

- the book feed: a bridge message of one book delta parsed and applied (trademesh.core.advisor.book_feed's
  TopKeeper: the book's levels by price, the top's change kept by event time), on a book of 25
  levels a side whose deltas fall near the top (an exponential depth, a fifth of them removals);
- a lookup of the top as of a time in 5 s of tops (trademesh.core.domain.tops: a bisection);
- a context (ContextGatherer._context) of a followed market with 60 1s bars, as of a time 3 s
  back against one of the latest, with 0, 2 and 20 fills between the account's read and the
  time (the balances and positions recomputed): medians of alternating rounds.

    .venv/bin/python bench/advisor_as_of.py
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
from collections import deque
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as common

from tests.unit.test_advisor_gather import BTC, MS, T0, Clock, Tools, _bar, _fill
from trademesh.common.v1 import common_pb2 as common_pb
from trademesh.core.advisor.book_feed import TopHistory, TopKeeper
from trademesh.core.advisor.engine.context import BookTop
from trademesh.core.advisor.fills import RecentFills, _Venue, parse_fill
from trademesh.core.advisor.gather import ContextGatherer
from trademesh.core.advisor.gather_config import GatherConfig
from trademesh.core.tools.market import MarketTools
from trademesh.livedata.v1 import livedata_pb2 as lv
from trademesh.marketdata.v1 import marketdata_pb2 as md


def _level(ticks: int, size: str) -> md.BookLevel:
    return md.BookLevel(price=f"{ticks / 100:.2f}", size=size)


def _messages(count: int, rng: random.Random) -> tuple[md.MarketEvent, list[bytes], int]:
    bids = [_level(350_000 - i, "1.5") for i in range(25)]
    asks = [_level(350_001 + i, "1.5") for i in range(25)]
    book = md.BookSnapshot(sequence=1, bids=bids, asks=asks)
    snapshot = md.MarketEvent(venue="sim", symbol="ETH/USDT", ts_event_ns=1, book_snapshot=book)
    messages, ts = [], 10
    for n in range(count):
        ts += 2_500_000  # 400 a second
        bid = rng.random() < 0.5
        depth = min(int(rng.expovariate(0.3)), 24)
        level = _level(350_000 - depth if bid else 350_001 + depth, "0" if rng.random() < 0.2 else "2.5")
        delta = md.BookDelta(sequence=n + 2, bids=[level] if bid else [], asks=[] if bid else [level])
        event = md.MarketEvent(venue="sim", symbol="ETH/USDT", ts_event_ns=ts, book_delta=delta)
        messages.append(lv.SubscribeResponse(events=[event]).SerializeToString())
    return snapshot, messages, ts


def feed(deltas: int, rounds: int) -> dict[str, float]:
    rng = random.Random(1)
    snapshot, messages, last_ts = _messages(deltas, rng)
    per_delta = []
    for _ in range(rounds):
        keeper = TopKeeper(TopHistory(5_000 * MS))
        keeper.on_event(snapshot)
        started = time.perf_counter()
        for data in messages:
            for event in lv.SubscribeResponse.FromString(data).events:
                keeper.on_event(event)
        per_delta.append((time.perf_counter() - started) / deltas * 1e6)
    history = keeper.history
    times = [rng.randrange(last_ts - 5_000 * MS, last_ts) for _ in range(20_000)]
    started = time.perf_counter()
    for at in times:
        history.at(at)
    lookup = (time.perf_counter() - started) / len(times) * 1e6
    return {"delta_us": round(statistics.median(per_delta), 2), "tops_kept": len(history),
            "lookup_us": round(lookup, 2)}  # fmt: skip


async def context(fills: int, rounds: int, each: int) -> dict[str, float]:
    tools, clock = Tools(), Clock()
    tools.bars = [_bar(T0 - (70 - n) * 1000 * MS, str(100 + n)) for n in range(70)]
    gathering = ContextGatherer(cast(MarketTools, tools), GatherConfig(timeframe="1s", bars=60), clock)
    recent = gathering.fills = RecentFills(cast(Any, None), 5_000 * MS, clock)
    venue = recent._venues["sim"] = _Venue(T0 - 10_000 * MS)
    made = [_fill(T0 - n * 200 * MS, common_pb.SIDE_BUY, "0.01", "100", "0.001") for n in range(fills)]
    venue.fills = deque(sorted((parse_fill(e.fill, 0) for e in made), key=lambda f: f.ts_ns))
    await gathering.gather("sim", BTC)
    history = gathering.tops._histories[("sim", BTC)]
    for n in range(2000):  # 5 s of tops at 400 a second
        history.add(
            T0 - 5_000 * MS + n * 2_500_000, BookTop(Decimal(100), Decimal(1), Decimal(101), Decimal(n), 0)
        )
    view = gathering._views[("sim", BTC)]
    found: dict[str, list[float]] = {"latest_us": [], "as_of_us": []}
    for _ in range(rounds):
        for name, at in (("latest_us", None), ("as_of_us", T0 - 3_000 * MS)):
            started = time.perf_counter()
            for _ in range(each):
                gathering._context(view, at)
            found[name].append((time.perf_counter() - started) / each * 1e6)
    await gathering.tops.close()
    return {name: round(statistics.median(values), 1) for name, values in found.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--deltas", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--result", default="advisor_as_of", help="bench/results/<name>.json")
    args = parser.parse_args()
    result: dict[str, Any] = {"machine": common.machine(), "started": common.now_iso(),
                              "command": common.command_line()}  # fmt: skip
    result["feed"] = feed(args.deltas, args.rounds)
    result["context"] = {f"{n}_fills": asyncio.run(context(n, args.rounds, 2000)) for n in (0, 2, 20)}
    print(result["feed"], result["context"])
    common.write_result(args.result, result)


if __name__ == "__main__":
    main()
