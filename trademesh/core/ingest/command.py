"""`trademesh ingest`: its flags, its config, its app (trademesh.core.platform.service.command)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from trademesh.core.ingest.config import IngestConfig
from trademesh.core.platform.config.flags import add_flags, flag_values
from trademesh.core.platform.config.mesh import add_mesh_arguments, venue_args
from trademesh.core.platform.service.command import MeshView, ServiceCommand, add_redis_argument

if TYPE_CHECKING:
    from trademesh.core.platform.service.lifecycle import ServiceApp

__all__ = ["COMMAND"]


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    add_redis_argument(parser)
    add_mesh_arguments(parser)
    add_flags(parser, IngestConfig)


def _config(args: argparse.Namespace) -> IngestConfig:
    from trademesh.core.platform.config.env import GATEWAY, read_secret, redis_url
    from trademesh.core.platform.config.mesh import mesh_config_from_args

    return IngestConfig(
        mesh_config_from_args(args),
        redis_url(args.redis_url),
        gateway=read_secret(GATEWAY),
        **flag_values(args, IngestConfig),
    )


def _create(config: IngestConfig) -> ServiceApp:
    from trademesh.core.ingest.app import Ingest

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
