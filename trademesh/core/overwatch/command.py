"""`trademesh overwatch`: its flags (declared on its config), its config, its app
(trademesh.core.platform.service.command)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from trademesh.core.overwatch.config import OverwatchAppConfig
from trademesh.core.platform.config.flags import add_flags, flag_values
from trademesh.core.platform.service.command import ServiceCommand, add_redis_argument

if TYPE_CHECKING:
    from trademesh.core.platform.service.lifecycle import ServiceApp

__all__ = ["COMMAND"]


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    add_redis_argument(parser)
    add_flags(parser, OverwatchAppConfig)


def _config(args: argparse.Namespace) -> OverwatchAppConfig:
    from trademesh.core.platform.config.env import GATEWAY, read_secret, redis_url

    return OverwatchAppConfig(
        redis_url(args.redis_url), gateway=read_secret(GATEWAY), **flag_values(args, OverwatchAppConfig)
    )


def _create(config: OverwatchAppConfig) -> ServiceApp:
    from trademesh.core.overwatch.app import OverwatchApp

    return OverwatchApp(config)


COMMAND: ServiceCommand[OverwatchAppConfig] = ServiceCommand(
    config=_config, create=_create, add_arguments=_add_arguments, settings=(OverwatchAppConfig,)
)
