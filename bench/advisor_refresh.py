"""The advisor's CPU while it only follows its markets, no signals: what the context's
background refresh costs the process whose loop also makes the decisions (issue 14).

The mesh of bench/advisor_pipeline.py (sim venue, ingest, recorder, bars, bridge, `trademesh
advisor` on 1s bars); a dry-run decision on each of the three sim symbols makes the advisor
follow them (its `warm`), then, after --settle-s, the advisor's CPU (user + system from /proc)
over --seconds. With --no-follow the decisions are skipped: the floor (bus reads, the loop,
metrics) with no market followed.

    .venv/bin/python bench/advisor_refresh.py
    .venv/bin/python bench/advisor_refresh.py --no-follow --result advisor_refresh_floor
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as common
import advisor_pipeline as pipeline
import uvloop

from trademesh.core.platform.config.env import TOKEN


async def main(args: argparse.Namespace) -> dict[str, Any]:
    """The mesh, the advisor following the sim's symbols (or not), its CPU over the window."""
    result: dict[str, Any] = {"machine": common.machine(), "started": common.now_iso(),
                              "command": common.command_line()}  # fmt: skip
    async with pipeline.mesh(args) as built:
        advisor = pipeline.start_advisor(built, None)
        if args.follow:
            await pipeline.warm(advisor, built.env[TOKEN])
        await asyncio.sleep(args.settle_s)
        meter = common.CpuMeter(advisor.process.pid)
        await asyncio.sleep(args.seconds)
        percent = meter.percent()
        built.stop(advisor)
    result["followed"] = list(pipeline.SYMBOLS) if args.follow else []
    result["advisor_cpu_ms_per_s"] = round(percent * 10, 1)  # 1 % of a core is 10 ms a second
    result["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    return result


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=15.0, help="the measured window")
    parser.add_argument("--settle-s", type=float, default=3.0, help="after the warm-up, before measuring")
    parser.add_argument("--no-follow", dest="follow", action="store_false", help="follow no market")
    parser.add_argument("--redis-db", type=int, default=15)
    parser.add_argument("--result", default="advisor_refresh", help="bench/results/<name>.json")
    return parser.parse_args()


if __name__ == "__main__":
    arguments = parse()
    outcome = uvloop.run(main(arguments))
    print(f"advisor CPU: {outcome['advisor_cpu_ms_per_s']} ms a second, following {outcome['followed']}")
    print(f"wrote {common.write_result(arguments.result, outcome)}")
