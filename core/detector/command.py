"""`trademesh detector`: its flags, its config, its app (core.foundations.command)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from core.detector.config import DetectorConfig
from core.foundations.command import MeshView, ServiceCommand, add_redis_argument
from core.foundations.config_flags import add_flags, flag_values
from core.foundations.env import DETECTOR_SIGNING_KEY
from core.foundations.mesh_config import add_mesh_arguments, venue_args

if TYPE_CHECKING:
    from core.foundations.service import ServiceApp

__all__ = ["COMMAND"]


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    add_redis_argument(parser)
    add_mesh_arguments(parser)
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
    add_flags(parser, DetectorConfig)


def _config(args: argparse.Namespace) -> DetectorConfig:
    from core.detector.config import example_strategies
    from core.foundations.env import GATEWAY, database_url, read_secret, redis_url
    from core.foundations.mesh_config import mesh_config_from_args

    strategies = tuple(args.strategy) or (() if args.no_examples else example_strategies())
    return DetectorConfig(
        mesh=mesh_config_from_args(args),
        redis_url=redis_url(args.redis_url),
        database_url=database_url(args.database_url),
        strategies=strategies,
        gateway=read_secret(GATEWAY),
        **flag_values(args, DetectorConfig),
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
    settings=(DetectorConfig,),
)
