"""`trademesh bridge`: its flags, its config, its app (trademesh.core.platform.service.command)."""

from __future__ import annotations

import argparse
import socket
from typing import TYPE_CHECKING

from trademesh.core.bridge.config import BridgeConfig
from trademesh.core.platform.config.flags import add_flags, flag_values
from trademesh.core.platform.service.command import ServiceCommand, add_redis_argument

if TYPE_CHECKING:
    from trademesh.core.platform.service.lifecycle import ServiceApp

__all__ = ["COMMAND", "replica_group"]


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    add_redis_argument(parser)
    add_flags(parser, BridgeConfig)


def replica_group(template: str) -> str:
    """The group named by --group, `{hostname}` replaced by the host's name: one service of
    replicas (compose's `deploy.replicas`) gives each its own group from one command line."""
    return template.replace("{hostname}", socket.gethostname())


def _config(args: argparse.Namespace) -> BridgeConfig:
    from trademesh.core.platform.config.env import redis_url

    settings = flag_values(args, BridgeConfig)
    settings["group"] = replica_group(settings["group"])
    return BridgeConfig(redis_url=redis_url(args.redis_url), **settings)


def _create(config: BridgeConfig) -> ServiceApp:
    from trademesh.core.bridge.app import BridgeService

    return BridgeService(config)


COMMAND: ServiceCommand[BridgeConfig] = ServiceCommand(
    config=_config, create=_create, add_arguments=_add_arguments, settings=(BridgeConfig,)
)
