"""`trademesh recorder`: the command line of the recorder service."""

from __future__ import annotations

import argparse
import asyncio
import logging

import uvloop

from core.env import database_url, redact_url, redis_url
from core.recorder.app import Recorder, RecorderOptions, default_consumer, prepare
from core.recorder.database import open_pool
from core.rpc.server import ServerOptions
from core.service import run_service

__all__ = ["add_arguments", "options_from_args", "run"]

log = logging.getLogger(__name__)

_CLOSE_TIMEOUT_S = 5.0


def _positive(value: str) -> int:
    number = int(value)
    if number <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return number


def _not_negative(value: str) -> int:
    number = int(value)
    if number < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return number


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--database-url",
        help="PostgreSQL (default: $DATABASE_URL, else postgresql://postgres@127.0.0.1:5432/postgres)",
    )
    parser.add_argument(
        "--retention-days",
        type=_not_negative,
        default=0,
        help="drop whole days of data older than this many days; 0 keeps everything (default 0)",
    )
    parser.add_argument(
        "--batch",
        type=_positive,
        default=500,
        help="bus entries per stream per transaction (each holds many events; default 500)",
    )
    parser.add_argument(
        "--group",
        default="recorder",
        help="consumer group (default recorder); a recorder writing to another database needs its own",
    )
    parser.add_argument(
        "--consumer", help="consumer name in the group, stable across restarts (default: recorder-<host>)"
    )
    parser.add_argument(
        "--stream-pattern",
        action="append",
        default=[],
        metavar="GLOB",
        help="streams to record (repeatable; default: md.* and bars.*)",
    )
    parser.add_argument(
        "--claim-idle-ms",
        type=_positive,
        default=30_000,
        help="retry an unacknowledged entry after it sat this long (default 30000)",
    )
    parser.add_argument(
        "--max-deliveries",
        type=_positive,
        default=5,
        help="dead-letter an entry after this many failed deliveries (default 5)",
    )
    parser.add_argument(
        "--maintenance-s",
        type=float,
        default=300.0,
        help="how often to create coming partitions and apply retention (default 300)",
    )


def options_from_args(args: argparse.Namespace) -> RecorderOptions:
    return RecorderOptions(
        database_url=database_url(args.database_url),
        redis_url=redis_url(args.redis_url),
        retention_days=args.retention_days,
        batch=args.batch,
        group=args.group,
        consumer=args.consumer or default_consumer(),
        patterns=tuple(args.stream_pattern) or ("md.*", "bars.*"),
        claim_idle_ms=args.claim_idle_ms,
        max_deliveries=args.max_deliveries,
        maintenance_s=args.maintenance_s,
    )


def run(args: argparse.Namespace) -> None:
    uvloop.run(serve(options_from_args(args), args.server_options))


async def serve(options: RecorderOptions, server: ServerOptions) -> None:
    pool = await open_pool(options.database_url)
    log.info(
        "recorder: database %s, bus %s, streams %s, retention %s",
        redact_url(options.database_url),
        redact_url(options.redis_url),
        " ".join(options.patterns),
        f"{options.retention_days} days" if options.retention_days else "forever",
    )
    try:
        partitions = await prepare(pool, options)
        await run_service("recorder", server, Recorder(pool, partitions, options).work)
    finally:
        try:
            await asyncio.wait_for(pool.close(), _CLOSE_TIMEOUT_S)
        except TimeoutError:
            pool.terminate()
