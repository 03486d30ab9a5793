"""The chaos run at length (issue 37, "How to show it"): the chaos test's mesh and faults
(tests/integration/chaos_run.py, docs/chaos.md) for --duration-s, with --kills kill -9s of the
chain's services and --freezes freezes of the inspector past its dead-man ttl, then the figures
read from the sim's own executions: unprotected windows (count, longest, total; the pair and the
stop alone), protection stripped while the inspector was away, double entries, the ledger
against the venue, fills, fees against realised PnL (the venue's, and the ledger's per strategy: the
demo's apart from the run's own intents, strategy "chaos"; --intent-every-s 0 leaves the trading
to the demo alone, but for the anchor the freezes need). --leveraged adds the chaos test's
perpetual (BTC/USDT:USDT, 20x isolated, its market falling: liquidations during the run) and
the leveraged figures: liquidations, the inspector's risk events of them, the margin ratios the
venue reported during the faults, the books' margin against the venue's.

    .venv/bin/python bench/chaos.py                                   # 30 minutes, 21 kills, 3 freezes
    .venv/bin/python bench/chaos.py --duration-s 300 --kills 5 --freezes 1 --no-save
    .venv/bin/python bench/chaos.py --seed 7                          # a plan again
    .venv/bin/python bench/chaos.py --leveraged --duration-s 300 --kills 5 --freezes 1

Redis at $REDIS_URL (else 127.0.0.1:6379), logical db --redis-db (14), claimed and FLUSHDB'd;
PostgreSQL at $DATABASE_URL (else postgres@127.0.0.1:5432), a fresh database bench_chaos_<hex>,
dropped after. The services' logs and the venue's executions stay in the printed directory
with --keep. Only 127.0.0.1; every process started is stopped.
"""

from __future__ import annotations

import os

# The run starts the services as child processes (exec'd, as `trademesh up` does): gRPC's fork
# handlers are not needed, and with other threads inside gRPC they only warn. Before gRPC loads.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "0")

import argparse
import contextlib
import random
import shutil
import sys
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as common

from tests.integration.chaos_run import VICTIMS, ChaosConfig, run_chaos
from trademesh.core.platform.bus.redis import open_redis
from trademesh.core.platform.config.env import REDIS_URL, database_url, read_secret

_DEFAULT_REDIS = "redis://127.0.0.1:6379/0"


@contextlib.asynccontextmanager
async def backing(redis_db: int) -> AsyncIterator[tuple[str, str]]:
    """(bus URL, database URL): the claimed Redis database emptied, a new PostgreSQL database."""
    redis_url = common.redis_db_url(read_secret(REDIS_URL) or _DEFAULT_REDIS, redis_db)
    async with (
        common.scratch_database(database_url(), "bench_chaos") as db_url,
        common.flushed_redis(open_redis(redis_url)),
    ):
        yield redis_url, db_url


async def main(args: argparse.Namespace, config: ChaosConfig) -> dict[str, Any]:
    directory = Path(tempfile.mkdtemp(prefix="trademesh-chaos-"))
    try:
        async with backing(args.redis_db) as (bus, database):
            report = await run_chaos(config, directory, bus, database, print)
    finally:
        if args.keep:
            print(f"kept: {directory} (services' logs, executions.pb, run.json, journal.bin)")
        else:
            shutil.rmtree(directory, ignore_errors=True)
    print("\n".join(report.lines()))
    return report.summary()


def _positive(text: str) -> float:
    value = float(text)
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number above 0")
    return value


def _not_negative(text: str) -> float:
    value = float(text)
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not 0 or a number above it")
    return value


def _count(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number")
    return int(text)


def parse() -> tuple[argparse.Namespace, ChaosConfig]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add = parser.add_argument
    add("--duration-s", type=_positive, default=1800.0, help="the chaos's length (default 1800)")
    add("--kills", type=_count, default=21, help="kill -9s of the chain's services (default 21)")
    add("--freezes", type=_count, default=3, help="freezes of the inspector (default 3)")
    add("--freeze-s", type=_positive, default=15.0, help="each freeze's length (default 15; the ttl is 10)")
    add("--bound-s", type=_positive, default=1.0, help="how long a position may lack its pair (default 1)")
    add(
        "--intent-every-s", type=_not_negative, default=2.5,
        help="the run's own intents, about this often (default 2.5); 0: none, the demo's alone",
    )  # fmt: skip
    add("--victims", default=",".join(VICTIMS), help=f"the services killed (default {','.join(VICTIMS)})")
    add(
        "--leveraged", action="store_true",
        help="trade a 20x perpetual too, its market falling: positions near and at liquidation",
    )  # fmt: skip
    add("--seed", type=_count, help="the plan's seed (default: random)")
    add("--redis-db", type=_count, default=14)
    add("--keep", action="store_true", help="keep the run's directory (logs, the venue's executions)")
    add("--no-save", action="store_true", help="print only; write no result file")
    add("--result", default="chaos", help="bench/results/<name>.json")
    args = parser.parse_args()
    try:
        config = ChaosConfig(
            seed=args.seed if args.seed is not None else random.randrange(2**32),
            duration_s=args.duration_s, kills=args.kills, freezes=args.freezes, freeze_s=args.freeze_s,
            bound_s=args.bound_s, victims=tuple(v for v in args.victims.split(",") if v),
            intent_every_s=args.intent_every_s, leveraged=args.leveraged,
        )  # fmt: skip
    except ValueError as exc:
        parser.error(str(exc))
    return args, config


if __name__ == "__main__":
    arguments, chaos = parse()
    with common.claimed_redis_db(arguments.redis_db):
        figures = uvloop.run(main(arguments, chaos))
    if not arguments.no_save:
        result = {
            "machine": common.machine(),
            "when": common.now_iso(),
            "command": common.command_line(),
            **figures,
        }
        print(f"wrote {common.write_result(arguments.result, result)}")
