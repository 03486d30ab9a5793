"""`trademesh overwatch`: its flags, its config, its app (core.foundations.command)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from core.foundations.command import (
    ServiceCommand,
    add_leader_argument,
    add_redis_argument,
    positive_float,
    whole_number,
)

if TYPE_CHECKING:
    from core.foundations.service import ServiceApp
    from core.overwatch.app import OverwatchAppConfig

__all__ = ["COMMAND"]


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    add_redis_argument(parser)
    add_leader_argument(parser, "overwatch")
    parser.add_argument(
        "--timeframe",
        default="1m",
        help="the bars read (bars.{<venue>}.<timeframe>), one regime per market on them: 1s 1m 5m 15m "
        "1h 4h 1d 1w (default 1m: the bars the classifier was measured on and the advisor reads)",
    )
    parser.add_argument(
        "--max-markets", type=whole_number(1), default=10_000,
        help="markets tracked at once; a new one past it is refused (default 10000)",
    )  # fmt: skip
    parser.add_argument(
        "--discover-s", type=positive_float, default=5.0,
        help="seconds between looks for new bar streams (default 5)",
    )  # fmt: skip
    parser.add_argument(
        "--queue-size", type=whole_number(1), default=1000,
        help="changes queued per StreamRegimes call before a slow one is ended (default 1000)",
    )  # fmt: skip
    parser.add_argument("--source", help="name written into every bus entry (default: overwatch/<hostname>)")
    parser.add_argument(
        "--overview-every-s", type=positive_float, default=1.0,
        help="seconds between StreamOverview's messages (default 1; the services read through "
        "the gateway's registry at $TRADEMESH_GATEWAY)",
    )  # fmt: skip


def _config(args: argparse.Namespace) -> OverwatchAppConfig:
    from core.foundations.env import GATEWAY, read_secret, redis_url
    from core.foundations.model import Timeframe
    from core.overwatch.app import OverwatchAppConfig

    source = {} if args.source is None else {"source": args.source}
    return OverwatchAppConfig(
        redis_url(args.redis_url),
        Timeframe.from_label(args.timeframe),
        max_markets=args.max_markets,
        discover_s=args.discover_s,
        queue_size=args.queue_size,
        gateway=read_secret(GATEWAY),
        overview_every_s=args.overview_every_s,
        leader_ttl_ms=args.leader_ttl_ms,
        **source,
    )


def _create(config: OverwatchAppConfig) -> ServiceApp:
    from core.overwatch.app import OverwatchApp

    return OverwatchApp(config)


COMMAND: ServiceCommand[OverwatchAppConfig] = ServiceCommand(
    config=_config, create=_create, add_arguments=_add_arguments
)
