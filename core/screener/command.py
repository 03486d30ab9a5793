"""`trademesh screener`: its flags, its config, its app (core.foundations.command)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from core.foundations.command import ServiceCommand, add_redis_argument, whole_number
from core.foundations.mesh_config import venue_args

if TYPE_CHECKING:
    from core.foundations.command import MeshView
    from core.foundations.service import ServiceApp
    from core.screener.app import ScreenerAppConfig

__all__ = ["COMMAND"]


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    add_redis_argument(parser)
    parser.add_argument(
        "--screens",
        help="the directory of screens (*.toml, docs/screener.md) to evaluate (default: the shipped "
        "core/screener/screens/)",
    )
    parser.add_argument(
        "--queue-size", type=whole_number(1), default=100,
        help="results queued per StreamResults call before a slow one is ended (default 100)",
    )  # fmt: skip
    parser.add_argument("--source", help="name written into every bus entry (default: screener/<hostname>)")
    parser.add_argument(
        "--venue", action="append", default=[], metavar="NAME=HOST:PORT",
        help="a screen venue asked for its tickers at once (GetTickers) while the bus has no fresh one; "
        "repeatable; adds to the venues registered with the gateway (TRADEMESH_GATEWAY), over one "
        "registered under its name",
    )  # fmt: skip


def _config(args: argparse.Namespace) -> ScreenerAppConfig:
    from pathlib import Path

    from core.foundations.env import GATEWAY, read_secret, redis_url
    from core.foundations.mesh_config import parse_venue_link
    from core.screener.app import ScreenerAppConfig

    extra: dict[str, object] = {} if args.source is None else {"source": args.source}
    if args.screens is not None:
        extra["screens_dir"] = Path(args.screens)
    extra["venues"] = tuple((link.name, link.address) for link in map(parse_venue_link, args.venue))
    extra["gateway"] = read_secret(GATEWAY)
    return ScreenerAppConfig(redis_url(args.redis_url), queue_size=args.queue_size, **extra)  # type: ignore[arg-type]


def _create(config: ScreenerAppConfig) -> ServiceApp:
    from core.screener.app import ScreenerApp

    return ScreenerApp(config)


def _mesh_args(mesh: MeshView) -> list[str]:
    return venue_args(mesh.venues)


COMMAND: ServiceCommand[ScreenerAppConfig] = ServiceCommand(
    config=_config, create=_create, add_arguments=_add_arguments, mesh_args=_mesh_args
)
