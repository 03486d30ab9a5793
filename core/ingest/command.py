"""`trademesh ingest`: its flags, its config, its app (core.foundations.command)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from core.foundations.command import MeshView, ServiceCommand, add_redis_argument
from core.foundations.config_flags import add_flags, flag_values
from core.foundations.mesh_config import add_mesh_arguments, venue_args
from core.ingest.config import IngestConfig

if TYPE_CHECKING:
    from core.foundations.service import ServiceApp

__all__ = ["COMMAND"]


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    add_redis_argument(parser)
    add_mesh_arguments(parser)
    add_flags(parser, IngestConfig)


def _config(args: argparse.Namespace) -> IngestConfig:
    from core.foundations.env import GATEWAY, read_secret, redis_url
    from core.foundations.mesh_config import mesh_config_from_args

    return IngestConfig(
        mesh_config_from_args(args),
        redis_url(args.redis_url),
        gateway=read_secret(GATEWAY),
        **flag_values(args, IngestConfig),
    )


def _create(config: IngestConfig) -> ServiceApp:
    from core.ingest.app import Ingest

    return Ingest(config)


def _mesh_args(mesh: MeshView) -> list[str]:
    return venue_args(mesh.venues)


COMMAND: ServiceCommand[IngestConfig] = ServiceCommand(
    config=_config,
    create=_create,
    add_arguments=_add_arguments,
    mesh_args=_mesh_args,
    settings=(IngestConfig,),
)
