"""`trademesh bridge`: its flags, its config, its app (core.foundations.command)."""

from __future__ import annotations

import argparse
import socket
from typing import TYPE_CHECKING

from core.bridge.config import BridgeConfig
from core.foundations.command import (
    ServiceCommand,
    add_redis_argument,
    positive_float,
    positive_int,
    whole_number,
)

if TYPE_CHECKING:
    from core.foundations.service import ServiceApp

__all__ = ["COMMAND", "replica_group"]

_DEFAULTS = BridgeConfig(redis_url="")


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    add_redis_argument(parser)
    parser.add_argument(
        "--queue-batches",
        type=positive_int,
        default=_DEFAULTS.queue_batches,
        help="messages queued per subscriber before it is conflated or disconnected "
        f"(default {_DEFAULTS.queue_batches})",
    )
    parser.add_argument(
        "--group",
        default=_DEFAULTS.group,
        help="consumer group on the bus; every bridge replica needs its own: {hostname} in it is "
        f"replaced by this machine's host name, e.g. bridge-{{hostname}} (default {_DEFAULTS.group})",
    )
    parser.add_argument(
        "--discover-s",
        type=positive_float,
        default=_DEFAULTS.discover_s,
        help=f"seconds between looks for new bus streams (default {_DEFAULTS.discover_s})",
    )
    parser.add_argument(
        "--lookback-entries",
        type=positive_int,
        default=_DEFAULTS.lookback_entries,
        help="at start, entries per book stream to look back for the latest snapshots "
        f"(default {_DEFAULTS.lookback_entries})",
    )
    parser.add_argument(
        "--linger-ms",
        type=whole_number(0),
        default=_DEFAULTS.linger_ms,
        help="after a bus read short of a batch, wait this long before the next: fewer reads, "
        f"more latency (default {_DEFAULTS.linger_ms:g})",
    )


def replica_group(template: str) -> str:
    """The group named by --group, `{hostname}` replaced by the host's name: one service of
    replicas (compose's `deploy.replicas`) gives each its own group from one command line."""
    return template.replace("{hostname}", socket.gethostname())


def _config(args: argparse.Namespace) -> BridgeConfig:
    from core.foundations.env import redis_url

    return BridgeConfig(
        redis_url=redis_url(args.redis_url),
        group=replica_group(args.group),
        queue_batches=args.queue_batches,
        discover_s=args.discover_s,
        lookback_entries=args.lookback_entries,
        linger_ms=args.linger_ms,
    )


def _create(config: BridgeConfig) -> ServiceApp:
    from core.bridge.app import BridgeService

    return BridgeService(config)


COMMAND: ServiceCommand[BridgeConfig] = ServiceCommand(
    config=_config, create=_create, add_arguments=_add_arguments
)
