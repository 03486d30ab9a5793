"""The advisor's book subscription alone (trademesh.core.advisor.book_feed), against a real bridge: how many
messages and book events the bridge sends for the sim's three markets, and this process's CPU
reading them, with the tops kept (TopKeeper) and without (read only), in alternating windows.

The mesh of bench/advisor_pipeline.py (sim, ingest, recorder, bars, bridge); no advisor.

    .venv/bin/python bench/advisor_book_feed.py --redis-db 5
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as common
import advisor_pipeline as pipeline

from trademesh.core.advisor.book_feed import TopHistory, TopKeeper
from trademesh.core.platform.config.env import TOKEN
from trademesh.core.tools.book import LIVEDATA, book_events
from trademesh.core.tools.resolver import Instance, MeshResolver
from trademesh.core.tools.upstream import Upstream


async def window(upstream: Upstream, keep: bool, seconds: float) -> dict[str, float]:
    keepers = {symbol: TopKeeper(TopHistory(5_000_000_000)) for symbol in pipeline.SYMBOLS}
    messages = events = 0
    stream = book_events(upstream, "sim", list(pipeline.SYMBOLS))
    cpu, started = time.process_time(), time.monotonic()
    async for batch in stream:
        messages += 1
        events += len(batch)
        if keep:
            for event in batch:
                keeper = keepers.get(event.symbol)
                if keeper is not None:
                    keeper.on_event(event)
        if time.monotonic() - started > seconds:
            break
    await stream.aclose()
    used = time.process_time() - cpu
    return {"keep": keep, "messages_per_s": round(messages / seconds, 1),
            "events_per_s": round(events / seconds, 1), "cpu_ms_per_s": round(used / seconds * 1000, 1),
            "loadavg": round(os.getloadavg()[0], 2)}  # fmt: skip


async def main(args: argparse.Namespace) -> dict[str, Any]:
    result: dict[str, Any] = {"machine": common.machine(), "started": common.now_iso(),
                              "command": common.command_line(), "windows": []}  # fmt: skip
    async with pipeline.mesh(args) as built:
        os.environ[TOKEN] = built.env[TOKEN]
        assert built.bridge is not None
        await asyncio.sleep(args.settle_s)
        resolver = MeshResolver(None, [Instance("bridge", built.bridge.address, (LIVEDATA,))])
        upstream = Upstream(resolver, 5.0)
        try:
            for n in range(args.pairs * 2):
                found = await window(upstream, keep=n % 2 == 1, seconds=args.seconds)
                print(found)
                result["windows"].append(found)
        finally:
            await upstream.close()
    return result


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="each window")
    parser.add_argument("--pairs", type=int, default=3, help="windows read only, then kept, in turn")
    parser.add_argument("--settle-s", type=float, default=8.0)
    parser.add_argument("--redis-db", type=int, default=15)
    parser.add_argument("--result", default="advisor_book_feed", help="bench/results/<name>.json")
    return parser.parse_args()


if __name__ == "__main__":
    options = parse()
    common.write_result(options.result, asyncio.run(main(options)))
