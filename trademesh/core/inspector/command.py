"""`trademesh inspector`: its flags, its config, its app (trademesh.core.platform.service.command)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from trademesh.core.inspector.config import InspectorServiceConfig
from trademesh.core.platform.config.env import ADVISOR_SIGNING_KEY, DETECTOR_SIGNING_KEY, TRADE_TOKEN
from trademesh.core.platform.config.flags import add_flags, flag_values
from trademesh.core.platform.config.mesh import add_mesh_arguments, venue_args
from trademesh.core.platform.service.command import MeshView, ServiceCommand, add_redis_argument

if TYPE_CHECKING:
    from trademesh.core.platform.service.lifecycle import ServiceApp

__all__ = ["COMMAND"]


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    add_redis_argument(parser)
    add_mesh_arguments(parser)
    add_flags(parser, InspectorServiceConfig)


def _config(args: argparse.Namespace) -> InspectorServiceConfig:
    from trademesh.core.inspector.engine.policy_file import load_policies
    from trademesh.core.platform.config.env import GATEWAY, read_secret, redis_url
    from trademesh.core.platform.config.file import read_text
    from trademesh.core.platform.config.mesh import mesh_config_from_args
    from trademesh.core.platform.errors import InvalidArgument

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
    from trademesh.core.inspector.app import Inspector

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
