"""What LogHub costs a service (issue 40): log lines at INFO with the log stream's handler
(trademesh.core.platform.logs.stream: stderr and the bus's `logs` stream), with stderr only, and with
logging off (the level above INFO: each call returns at its level check), alternating in one run.

- CPU per line at a paced 10,000 lines/s (--rate) for --seconds: the process's CPU (every
  thread's: the stream's sender thread included) over the lines logged, and Redis's own CPU
  per line (INFO cpu) for the stream;
- throughput: a tight loop of --lines log calls, lines/s, and what the stream dropped
  (a full queue) in that burst.

Each line is a service's usual one: a message with two arguments and bound fields (venue,
symbol). stderr goes to /dev/null, formatted as the text lines setup_logging writes. Medians of
--repeats rounds; ratios against stderr only, measured in the same run.

    .venv/bin/python bench/log_cost.py --repeats 5

Redis at $REDIS_URL (else 127.0.0.1:6379), logical database --redis-db (14), claimed and flushed.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

import redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as common

from trademesh.core.platform.logs.setup import bind_log_fields, record_fields
from trademesh.core.platform.logs.stream import STREAM, StreamLogHandler, StreamSettings
from trademesh.core.platform.logs.stream.handler import LINES_DROPPED

MODES = ("off", "stderr", "stream")


class Logging:
    """A logger set up for one mode; close() takes its handlers down (the sender sends what waits)."""

    def __init__(self, mode: str, url: str) -> None:
        self.devnull = open(os.devnull, "w")  # noqa: SIM115 - closed in close()
        stderr = logging.StreamHandler(self.devnull)
        stderr.setFormatter(logging.Formatter("%(asctime)s %(levelname)s bench %(name)s: %(message)s"))
        self.handlers: list[logging.Handler] = [stderr]
        if mode == "stream":
            self.handlers.append(StreamLogHandler(StreamSettings(url), "bench", "bench", record_fields))
        self.logger = logging.getLogger(f"bench.log_cost.{mode}")
        self.logger.propagate = False
        self.logger.handlers[:] = self.handlers
        self.logger.setLevel(logging.WARNING if mode == "off" else logging.INFO)

    def close(self) -> None:
        for handler in self.handlers:
            handler.close()
        self.logger.handlers.clear()
        self.devnull.close()


def redis_cpu_s(client: Any) -> float:
    info = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def paced(mode: str, url: str, client: Any, rate: int, seconds: float) -> dict[str, float]:
    setup = Logging(mode, url)
    log, lines, step = setup.logger, int(rate * seconds), 100  # 100 lines, then a sleep to the pace
    redis_before, cpu_before, started = redis_cpu_s(client), time.process_time(), time.perf_counter()
    for n in range(0, lines, step):
        for i in range(step):
            log.info("order %s filled at %s", n + i, "101.5")
        ahead = started + (n + step) / rate - time.perf_counter()
        if ahead > 0:
            time.sleep(ahead)
    setup.close()  # the sender's last batch counted in
    cpu = time.process_time() - cpu_before
    return {
        "us_per_line": cpu / lines * 1e6,
        "cpu_share": cpu / (time.perf_counter() - started),
        "redis_us_per_line": (redis_cpu_s(client) - redis_before) / lines * 1e6,
    }


def burst(mode: str, url: str, lines: int) -> dict[str, float]:
    setup = Logging(mode, url)
    dropped_before = LINES_DROPPED.labels("queue_full")._value.get()
    started = time.perf_counter()
    for n in range(lines):
        setup.logger.info("order %s filled at %s", n, "101.5")
    elapsed = time.perf_counter() - started
    setup.close()
    dropped = LINES_DROPPED.labels("queue_full")._value.get() - dropped_before
    return {"lines_per_s": lines / elapsed, "dropped": float(dropped)}


def run(args: argparse.Namespace, url: str) -> dict[str, Any]:
    client = redis.Redis.from_url(url)
    client.flushdb()
    bind_log_fields(venue="sim", symbol="BTC/USDT")
    rounds: dict[str, dict[str, list[dict[str, float]]]] = {m: {"paced": [], "burst": []} for m in MODES}
    for mode in MODES:  # warm every path once
        paced(mode, url, client, args.rate, 0.3)
    for _ in range(args.repeats):
        for mode in MODES:
            rounds[mode]["paced"].append(paced(mode, url, client, args.rate, args.seconds))
            rounds[mode]["burst"].append(burst(mode, url, args.lines))
    streamed = int(client.xlen(STREAM))
    client.flushdb()
    client.close()
    medians = {
        mode: {
            kind: {key: common.median([r[key] for r in found]) for key in found[0]}
            for kind, found in kinds.items()
        }
        for mode, kinds in rounds.items()
    }
    return {"rounds": rounds, "medians": medians, "stream_entries_at_end": streamed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=int, default=10_000, help="lines/s of the paced rounds")
    parser.add_argument("--seconds", type=float, default=3.0, help="length of a paced round")
    parser.add_argument("--lines", type=int, default=100_000, help="lines of a burst round")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--redis-db", type=int, default=14)
    parser.add_argument("--result", default="log_cost")
    args = parser.parse_args()
    url = common.redis_db_url(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"), args.redis_db)
    common.require_local(url, "Redis", "log_cost")
    with common.claimed_redis_db(args.redis_db):
        found = run(args, url)
    m = found["medians"]
    base = m["stderr"]["paced"]["us_per_line"]
    burst_base = m["stderr"]["burst"]["lines_per_s"]
    common.print_table(
        ["mode", "µs CPU/line at rate", "x stderr", "Redis µs/line", "burst lines/s", "x stderr", "dropped"],
        [
            [
                mode,
                f"{m[mode]['paced']['us_per_line']:.2f}",
                f"{m[mode]['paced']['us_per_line'] / base:.2f}",
                f"{m[mode]['paced']['redis_us_per_line']:.2f}",
                f"{m[mode]['burst']['lines_per_s']:,.0f}",
                f"{m[mode]['burst']['lines_per_s'] / burst_base:.2f}",
                f"{m[mode]['burst']['dropped']:,.0f}",
            ]
            for mode in MODES
        ],
    )
    payload = {
        "command": common.command_line(),
        "at": common.now_iso(),
        "machine": common.machine(),
        "source": common.source_version(),
        **found,
    }
    print(common.write_result(args.result, payload))


if __name__ == "__main__":
    main()
