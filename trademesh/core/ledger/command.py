"""`trademesh ledger`: its flags, its config, its app (a ServiceCommand); `trademesh ledger verify`."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from trademesh.core.ledger.config import LedgerServiceConfig
from trademesh.core.platform.config.flags import add_flags, flag_values
from trademesh.core.platform.config.mesh import add_mesh_arguments, venue_args
from trademesh.core.platform.service.command import MeshView, ServiceCommand, add_redis_argument

if TYPE_CHECKING:
    from trademesh.core.platform.service.lifecycle import ServiceApp

__all__ = ["COMMAND", "add_trace_parser"]


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    add_redis_argument(parser)
    add_mesh_arguments(parser)
    parser.add_argument("--database-url", help="where the books are kept (default: $DATABASE_URL)")
    add_flags(parser, LedgerServiceConfig)


def _config(args: argparse.Namespace) -> LedgerServiceConfig:
    from trademesh.core.platform.config.env import GATEWAY, database_url, read_secret, redis_url
    from trademesh.core.platform.config.mesh import mesh_config_from_args

    return LedgerServiceConfig(
        redis_url=redis_url(args.redis_url),
        database_url=database_url(args.database_url),
        mesh=mesh_config_from_args(args),
        gateway=read_secret(GATEWAY),
        **flag_values(args, LedgerServiceConfig),
    )


def _create(config: LedgerServiceConfig) -> ServiceApp:
    from trademesh.core.ledger.app import Ledger

    return Ledger(config)


def _mesh_args(mesh: MeshView) -> list[str]:
    return venue_args(mesh.venues)


def _verify(args: argparse.Namespace) -> None:
    import asyncio

    from trademesh.core.ledger.offline import run_verify
    from trademesh.core.platform.config.env import database_url

    ok = asyncio.run(run_verify(database_url(args.database_url), print))
    if not ok:
        raise SystemExit(1)


def _add_subcommands(commands: Any) -> None:
    verify = commands.add_parser(
        "verify", help="recompute every balance from the transfers and compare (exit 1 on a mismatch)"
    )
    verify.add_argument("--database-url", help="where the books are kept (default: $DATABASE_URL)")
    verify.set_defaults(run=_verify)


def _trace(args: argparse.Namespace) -> None:
    import asyncio

    from trademesh.core.ledger.offline import render_trace, run_trace
    from trademesh.core.platform.config.env import database_url

    for line in render_trace(asyncio.run(run_trace(database_url(args.database_url), args.id))):
        print(line)


def add_trace_parser(commands: Any) -> None:
    """`trademesh trace <id>` (a top-level command: the chain crosses every service)."""
    parser = commands.add_parser(
        "trace",
        help="the chain of any id: signal -> decision -> intent -> risk check -> order -> fill -> transfer",
    )
    parser.add_argument("id", help="a transfer, fill, order, client order, intent, decision or signal id")
    parser.add_argument(
        "--database-url", help="the books' and the recorder's database (default: $DATABASE_URL)"
    )
    parser.set_defaults(run=_trace)


COMMAND: ServiceCommand[LedgerServiceConfig] = ServiceCommand(
    config=_config,
    create=_create,
    add_arguments=_add_arguments,
    mesh_args=_mesh_args,
    add_subcommands=_add_subcommands,
    settings=(LedgerServiceConfig,),
)
