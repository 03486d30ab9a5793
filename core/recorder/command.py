"""`trademesh recorder`: its flags, its config, its app (core.foundations.command)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from core.foundations.command import (
    ServiceCommand,
    add_redis_argument,
    positive_float,
    positive_int,
    whole_number,
)

# The recorder's default wait after a short read (docs/recorder.md, "Latency and batching").
LINGER_MS = 10
# How long an entry sits unacknowledged before it is retried, by whichever replica looks first
# (docs/recorder.md, "Replicas"): a killed replica's rows wait this to 1.5 times this. A full
# batch (500 entries, 50,000 rows) was written in 0.25 s here, 1-2 s at the slowest rates
# measured on a loaded machine: a live replica's batch is not taken from it, and were it
# taken, the rows are keyed (written twice, kept once).
CLAIM_IDLE_MS = 5_000

if TYPE_CHECKING:
    from core.foundations.service import ServiceApp
    from core.recorder.app import RecorderConfig

__all__ = ["COMMAND"]


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    add_redis_argument(parser)
    parser.add_argument(
        "--database-url",
        help="PostgreSQL (default: $DATABASE_URL, else postgresql://postgres@127.0.0.1:5432/postgres)",
    )
    parser.add_argument(
        "--retention-days",
        type=whole_number(0),
        default=0,
        help="drop whole days of data older than this many days; 0 keeps everything (default 0)",
    )
    parser.add_argument(
        "--batch",
        type=positive_int,
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
        help="streams to record, by pattern (repeatable; default: md.*, bars.*, exec.*, funding.*, "
        "inspector.journal.*, regimes.*, screens.* and account.*)",
    )
    parser.add_argument(
        "--stream",
        action="append",
        default=[],
        metavar="NAME",
        help="a stream to record, by name (repeatable; default: the trading streams: signals, "
        "position_requests.{signals}, decisions, intents, advisor.telemetry, and the Supervisor's "
        "supervisor.audit); "
        "with --stream or --stream-pattern, only the streams given are recorded",
    )
    parser.add_argument(
        "--claim-idle-ms",
        type=positive_int,
        default=CLAIM_IDLE_MS,
        help="retry an entry left unacknowledged this long (one that failed, or one a killed "
        f"replica had read: its rows are recorded that much later; default {CLAIM_IDLE_MS})",
    )
    parser.add_argument(
        "--max-deliveries",
        type=positive_int,
        default=5,
        help="dead-letter an entry after this many failed deliveries (default 5)",
    )
    parser.add_argument(
        "--linger-ms",
        type=whole_number(0),
        default=LINGER_MS,
        help="after a bus read short of a batch, wait this long before the next: fewer, larger "
        "transactions while data keeps coming, each entry later by at most that "
        f"(default {LINGER_MS}; 0: none)",
    )
    parser.add_argument(
        "--maintenance-s",
        type=positive_float,
        default=300.0,
        help="how often to create coming partitions and apply retention (default 300)",
    )


def _config(args: argparse.Namespace) -> RecorderConfig:
    from core.foundations.env import database_url, redis_url
    from core.recorder.app import RecorderConfig, default_consumer

    patterns, streams = tuple(args.stream_pattern), tuple(args.stream)
    if not patterns and not streams:
        patterns, streams = RecorderConfig.patterns, RecorderConfig.streams
    return RecorderConfig(
        database_url=database_url(args.database_url),
        redis_url=redis_url(args.redis_url),
        retention_days=args.retention_days,
        batch=args.batch,
        group=args.group,
        consumer=args.consumer or default_consumer(),
        patterns=patterns,
        streams=streams,
        claim_idle_ms=args.claim_idle_ms,
        max_deliveries=args.max_deliveries,
        linger_ms=args.linger_ms,
        maintenance_s=args.maintenance_s,
    )


def _create(config: RecorderConfig) -> ServiceApp:
    from core.recorder.app import RecorderService

    return RecorderService(config)


COMMAND: ServiceCommand[RecorderConfig] = ServiceCommand(
    config=_config, create=_create, add_arguments=_add_arguments
)
