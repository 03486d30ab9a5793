"""`trademesh screener`: its flags, its config, its app (trademesh.core.platform.service.command)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from trademesh.core.platform.config.flags import add_flags, flag_values
from trademesh.core.platform.config.mesh import venue_args
from trademesh.core.platform.service.command import ServiceCommand, add_redis_argument
from trademesh.core.screener.config import ScreenerAppConfig

if TYPE_CHECKING:
    from trademesh.core.platform.service.command import MeshView
    from trademesh.core.platform.service.lifecycle import ServiceApp

__all__ = ["COMMAND"]


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    add_redis_argument(parser)
    add_flags(parser, ScreenerAppConfig)
    parser.add_argument(
        "--venue", action="append", default=[], metavar="NAME=HOST:PORT",
        help="a screen venue asked for its tickers at once (GetTickers) while the bus has no fresh one; "
        "repeatable; adds to the venues registered with the gateway (TRADEMESH_GATEWAY), over one "
        "registered under its name",
    )  # fmt: skip


def _config(args: argparse.Namespace) -> ScreenerAppConfig:
    from trademesh.core.platform.config.env import GATEWAY, read_secret, redis_url
    from trademesh.core.platform.config.mesh import parse_venue_link

    return ScreenerAppConfig(
        redis_url(args.redis_url),
        venues=tuple((link.name, link.address) for link in map(parse_venue_link, args.venue)),
        gateway=read_secret(GATEWAY),
        **flag_values(args, ScreenerAppConfig),
    )


def _create(config: ScreenerAppConfig) -> ServiceApp:
    from trademesh.core.screener.app import ScreenerApp

    return ScreenerApp(config)


def _mesh_args(mesh: MeshView) -> list[str]:
    screens = [] if mesh.screens_dir is None else ["--screens", str(mesh.screens_dir)]
    return [*venue_args(mesh.venues), *screens]


COMMAND: ServiceCommand[ScreenerAppConfig] = ServiceCommand(
    config=_config,
    create=_create,
    add_arguments=_add_arguments,
    mesh_args=_mesh_args,
    settings=(ScreenerAppConfig,),
)
