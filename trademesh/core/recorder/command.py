"""`trademesh recorder`: its flags, its config, its app (trademesh.core.platform.service.command)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from trademesh.core.platform.config.flags import add_flags, flag_values
from trademesh.core.platform.service.command import ServiceCommand, add_redis_argument
from trademesh.core.recorder.config import RecorderConfig

if TYPE_CHECKING:
    from trademesh.core.platform.service.lifecycle import ServiceApp

__all__ = ["COMMAND"]


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    add_redis_argument(parser)
    parser.add_argument(
        "--database-url",
        help="PostgreSQL (default: $DATABASE_URL, else postgresql://postgres@127.0.0.1:5432/postgres)",
    )
    add_flags(parser, RecorderConfig)
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


def _config(args: argparse.Namespace) -> RecorderConfig:
    from trademesh.core.platform.config.env import database_url, redis_url
    from trademesh.core.recorder.app import default_consumer

    patterns, streams = tuple(args.stream_pattern), tuple(args.stream)
    if not patterns and not streams:
        patterns, streams = RecorderConfig.patterns, RecorderConfig.streams
    return RecorderConfig(
        database_url=database_url(args.database_url),
        redis_url=redis_url(args.redis_url),
        consumer=args.consumer or default_consumer(),
        patterns=patterns,
        streams=streams,
        **flag_values(args, RecorderConfig),
    )


def _create(config: RecorderConfig) -> ServiceApp:
    from trademesh.core.recorder.app import RecorderService

    return RecorderService(config)


COMMAND: ServiceCommand[RecorderConfig] = ServiceCommand(
    config=_config, create=_create, add_arguments=_add_arguments, settings=(RecorderConfig,)
)
