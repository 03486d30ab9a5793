"""`trademesh overwatch`: its flags (declared on its config), its config, its app
(core.foundations.command)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from core.foundations.command import ServiceCommand, add_redis_argument
from core.foundations.config_flags import add_flags, flag_values
from core.overwatch.config import OverwatchAppConfig

if TYPE_CHECKING:
    from core.foundations.service import ServiceApp

__all__ = ["COMMAND"]


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    add_redis_argument(parser)
    add_flags(parser, OverwatchAppConfig)


def _config(args: argparse.Namespace) -> OverwatchAppConfig:
    from core.foundations.env import GATEWAY, read_secret, redis_url

    return OverwatchAppConfig(
        redis_url(args.redis_url), gateway=read_secret(GATEWAY), **flag_values(args, OverwatchAppConfig)
    )


def _create(config: OverwatchAppConfig) -> ServiceApp:
    from core.overwatch.app import OverwatchApp

    return OverwatchApp(config)


COMMAND: ServiceCommand[OverwatchAppConfig] = ServiceCommand(
    config=_config, create=_create, add_arguments=_add_arguments, settings=(OverwatchAppConfig,)
)
