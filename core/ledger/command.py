"""`trademesh ledger`: its flags, its config, its app (a ServiceCommand); `trademesh ledger verify`."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from core.foundations.command import (
    MeshView,
    ServiceCommand,
    add_leader_argument,
    add_redis_argument,
    instance_name,
    positive_float,
)
from core.foundations.mesh_config import add_mesh_arguments, venue_args

if TYPE_CHECKING:
    from core.foundations.service import ServiceApp
    from core.ledger.config import LedgerServiceConfig

__all__ = ["COMMAND", "add_trace_parser"]


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    add_redis_argument(parser)
    add_mesh_arguments(parser)
    parser.add_argument("--database-url", help="where the books are kept (default: $DATABASE_URL)")
    parser.add_argument(
        "--instance", type=instance_name, default="ledger", help="this ledger's name (default ledger)"
    )
    add_leader_argument(parser, "ledger")
    parser.add_argument(
        "--funding-every-s", type=positive_float, default=60.0,
        help="how often the perpetual venues are asked for funding payments (default 60)",
    )  # fmt: skip
    parser.add_argument(
        "--verify-every-s", type=_verify_every, default=300.0,
        help="how often the leader verifies its books (balances against their transfers; the "
        "trademesh_ledger_verify_* gauges); 0: only when Ledger/Verify is called (default 300)",
    )  # fmt: skip
    parser.add_argument(
        "--no-opening-balances", action="store_true",
        help="at the books' first start, do not post the venues' balances as opening deposits",
    )  # fmt: skip


def _verify_every(text: str) -> float:
    """0 (off), or seconds between verifies: at least 1."""
    try:
        seconds = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not (seconds == 0 or 1 <= seconds <= 86_400):
        raise argparse.ArgumentTypeError(f"{text!r} is not 0 (off) or 1 to 86400 seconds")
    return seconds


def _config(args: argparse.Namespace) -> LedgerServiceConfig:
    from core.foundations.env import GATEWAY, database_url, read_secret, redis_url
    from core.foundations.mesh_config import mesh_config_from_args
    from core.ledger.config import LedgerServiceConfig

    return LedgerServiceConfig(
        redis_url=redis_url(args.redis_url),
        database_url=database_url(args.database_url),
        mesh=mesh_config_from_args(args),
        gateway=read_secret(GATEWAY),
        instance=args.instance,
        funding_every_s=args.funding_every_s,
        verify_every_s=args.verify_every_s,
        opening_balances=not args.no_opening_balances,
        leader_ttl_ms=args.leader_ttl_ms,
    )


def _create(config: LedgerServiceConfig) -> ServiceApp:
    from core.ledger.app import Ledger

    return Ledger(config)


def _mesh_args(mesh: MeshView) -> list[str]:
    return venue_args(mesh.venues)


def _verify(args: argparse.Namespace) -> None:
    import asyncio

    from core.foundations.env import database_url
    from core.ledger.offline import run_verify

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

    from core.foundations.env import database_url
    from core.ledger.offline import render_trace, run_trace

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
)
