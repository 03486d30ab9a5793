"""`trademesh detector`: its flags, its config, its app (trademesh.core.platform.service.command)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from trademesh.core.detector.config import DetectorConfig
from trademesh.core.platform.config.env import DETECTOR_SIGNING_KEY
from trademesh.core.platform.config.flags import add_flags, flag_values
from trademesh.core.platform.config.mesh import add_mesh_arguments, venue_args
from trademesh.core.platform.service.command import MeshView, ServiceCommand, add_redis_argument

if TYPE_CHECKING:
    from trademesh.core.platform.service.lifecycle import ServiceApp

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
    from trademesh.core.detector.config import example_strategies
    from trademesh.core.platform.config.env import GATEWAY, database_url, read_secret, redis_url
    from trademesh.core.platform.config.mesh import mesh_config_from_args

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
    from trademesh.core.detector.app import Detector

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
