"""`trademesh backtester`: the backtest hub (its flags, its typed config)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from trademesh.core.backtest.hub.config import BacktesterConfig
from trademesh.core.platform.config.flags import add_flags, flag_values
from trademesh.core.platform.service.command import ServiceCommand

if TYPE_CHECKING:
    from trademesh.core.platform.service.lifecycle import ServiceApp

__all__ = ["COMMAND"]


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--database-url",
        help="the recorder's database: the history, and the runs' results (default: $DATABASE_URL)",
    )
    add_flags(parser, BacktesterConfig)


def _config(args: argparse.Namespace) -> BacktesterConfig:
    from trademesh.core.platform.config.env import GATEWAY, database_url, read_secret
    from trademesh.core.platform.errors import InvalidArgument

    if not 1 <= args.max_runs <= 64:
        raise InvalidArgument.field("max-runs", f"{args.max_runs} is out of range: 1 to 64")
    if args.strategy_dir is not None and not args.strategy_dir.is_dir():
        raise InvalidArgument.field("strategy-dir", f"{args.strategy_dir}: no such directory")
    return BacktesterConfig(
        database_url=database_url(args.database_url),
        gateway=read_secret(GATEWAY),
        **flag_values(args, BacktesterConfig),
    )


def _create(config: BacktesterConfig) -> ServiceApp:
    from trademesh.core.backtest.hub.app import Backtester

    return Backtester(config)


COMMAND: ServiceCommand[BacktesterConfig] = ServiceCommand(
    config=_config, create=_create, add_arguments=_add_arguments, settings=(BacktesterConfig,)
)
