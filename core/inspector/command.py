"""`trademesh inspector`: its flags, its config, its app (core.foundations.command)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from core.foundations.command import MeshView, ServiceCommand, add_redis_argument
from core.foundations.config_flags import add_flags, flag_values
from core.foundations.env import ADVISOR_SIGNING_KEY, DETECTOR_SIGNING_KEY, TRADE_TOKEN
from core.foundations.mesh_config import add_mesh_arguments, venue_args
from core.inspector.config import InspectorServiceConfig

if TYPE_CHECKING:
    from core.foundations.service import ServiceApp

__all__ = ["COMMAND"]


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    add_redis_argument(parser)
    add_mesh_arguments(parser)
    add_flags(parser, InspectorServiceConfig)


def _config(args: argparse.Namespace) -> InspectorServiceConfig:
    from core.foundations.config_file import read_text
    from core.foundations.env import GATEWAY, read_secret, redis_url
    from core.foundations.errors import InvalidArgument
    from core.foundations.mesh_config import mesh_config_from_args
    from core.inspector.engine.policy_file import load_policies

    if args.policies is not None and not args.policies.is_file():
        raise InvalidArgument.field("policies", f"{args.policies} is not a file")
    if args.policies is not None:  # read and checked at start: one line, before the bus is reached
        load_policies(read_text(args.policies, "policies"), str(args.policies))
    return InspectorServiceConfig(
        redis_url=redis_url(args.redis_url),
        mesh=mesh_config_from_args(args),
        gateway=read_secret(GATEWAY),
        **flag_values(args, InspectorServiceConfig),
    )


def _create(config: InspectorServiceConfig) -> ServiceApp:
    from core.inspector.app import Inspector

    return Inspector(config)


def _mesh_args(mesh: MeshView) -> list[str]:
    return venue_args(mesh.venues)


COMMAND: ServiceCommand[InspectorServiceConfig] = ServiceCommand(
    config=_config,
    create=_create,
    add_arguments=_add_arguments,
    mesh_args=_mesh_args,
    # The trading credential: the venues place and cancel orders, and take heartbeats, only for
    # it; `trademesh up` gives it to the venues and to the inspector alone. The writers' keys: it
    # acts only on the trading streams' entries they signed (docs/bus.md).
    holds=(TRADE_TOKEN, ADVISOR_SIGNING_KEY, DETECTOR_SIGNING_KEY),
    settings=(InspectorServiceConfig,),
)
