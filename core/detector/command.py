"""`trademesh detector`: its flags, its config, its app (core.foundations.command)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from core.foundations.command import (
    MeshView,
    ServiceCommand,
    add_leader_argument,
    add_redis_argument,
    instance_name,
    positive_float,
    positive_int,
    whole_number,
)
from core.foundations.env import DETECTOR_SIGNING_KEY
from core.foundations.mesh_config import add_mesh_arguments, venue_args

if TYPE_CHECKING:
    from core.detector.config import DetectorConfig
    from core.foundations.service import ServiceApp

__all__ = ["COMMAND"]


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    add_redis_argument(parser)
    add_mesh_arguments(parser)
    add_leader_argument(parser, "detector")
    parser.add_argument("--database-url", help="where patches are saved (default: $DATABASE_URL)")
    parser.add_argument(
        "--strategy",
        type=Path,
        action="append",
        default=[],
        metavar="FILE",
        help="a strategy file to run (TOML, docs/detector.md); repeatable; default: the examples",
    )
    parser.add_argument("--no-examples", action="store_true", help="run no example strategy by default")
    parser.add_argument(
        "--instance",
        type=instance_name,
        default="detector",
        help="this detector's name with the gateway (default detector)",
    )
    parser.add_argument(
        "--tick-hz", type=positive_float, default=10.0, help="clock ticks a second (default 10)"
    )
    parser.add_argument(
        "--hold-ms",
        type=whole_number(0),
        default=0,
        help="hold market data this long and feed it in event-time order, as a backtest does "
        "(default 0: at once; docs/backtest.md)",
    )
    parser.add_argument(
        "--inspector",
        metavar="HOST:PORT",
        help="the inspector the strategies hear back from (default: the gateway's)",
    )
    parser.add_argument(
        "--feedback-every-ms",
        type=positive_int,
        default=1_000,
        help="how often the inspector's risk state and positions are read (default 1000)",
    )
    parser.add_argument(
        "--probe-rate-hz", type=positive_float, default=30.0, help="updates a second per probe, at most 30"
    )
    parser.add_argument(
        "--module-budget-us",
        type=positive_int,
        default=1_000,
        help="a module step slower than this is flagged (default 1000)",
    )


def _config(args: argparse.Namespace) -> DetectorConfig:
    from core.detector.config import DetectorConfig, example_strategies
    from core.foundations.env import GATEWAY, database_url, read_secret, redis_url
    from core.foundations.mesh_config import mesh_config_from_args

    strategies = tuple(args.strategy) or (() if args.no_examples else example_strategies())
    return DetectorConfig(
        mesh=mesh_config_from_args(args),
        redis_url=redis_url(args.redis_url),
        database_url=database_url(args.database_url),
        strategies=strategies,
        instance=args.instance,
        tick_hz=args.tick_hz,
        hold_ms=args.hold_ms,
        probe_rate_hz=args.probe_rate_hz,
        module_budget_us=args.module_budget_us,
        gateway=read_secret(GATEWAY),
        leader_ttl_ms=args.leader_ttl_ms,
        inspector=args.inspector,
        feedback_every_ms=args.feedback_every_ms,
    )


def _create(config: DetectorConfig) -> ServiceApp:
    from core.detector.app import Detector

    return Detector(config)


def _mesh_args(mesh: MeshView) -> list[str]:
    return venue_args(mesh.venues)


COMMAND: ServiceCommand[DetectorConfig] = ServiceCommand(
    config=_config,
    create=_create,
    add_arguments=_add_arguments,
    mesh_args=_mesh_args,
    # Its key signs the position requests it writes: the inspector carries out only those.
    holds=(DETECTOR_SIGNING_KEY,),
)
