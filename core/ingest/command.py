"""`trademesh ingest`: its flags, its config, its app (core.foundations.command)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from core.foundations.command import (
    MeshView,
    ServiceCommand,
    add_redis_argument,
    positive_int,
    seconds_at_most,
)
from core.foundations.mesh_config import add_mesh_arguments, venue_args

if TYPE_CHECKING:
    from core.foundations.service import ServiceApp
    from core.ingest.app import IngestConfig

__all__ = ["COMMAND"]


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    add_redis_argument(parser)
    add_mesh_arguments(parser)
    parser.add_argument("--source", help="name written into every bus entry (default: ingest/<hostname>)")
    parser.add_argument(
        "--max-queued",
        type=positive_int,
        default=20_000,
        help="bus entries held while Redis is slow or away before venues are paused (default 20000)",
    )
    parser.add_argument(
        "--lease-ttl-ms",
        type=positive_int,
        default=5000,
        help="a venue's lease: another replica takes over a venue within this after its holder "
        "died (default 5000)",
    )
    parser.add_argument(
        "--no-executions",
        action="store_true",
        help="do not follow the venues' executions into exec.{<venue>} (followed by default)",
    )
    parser.add_argument(
        "--funding-every-s",
        type=_funding_every,
        default=60.0,
        help="read each venue's funding payments (with their rates) into funding.{<venue>} this "
        "often (default 60; 0: not read)",
    )
    parser.add_argument(
        "--no-account",
        action="store_true",
        help="do not follow the venues' accounts (StreamAccount: balances and positions) into "
        "account.{<venue>} (followed by default)",
    )
    parser.add_argument(
        "--instruments-every-s",
        type=_funding_every,
        default=60.0,
        help="read each venue's instrument list (ListInstruments) this often and publish its "
        "listings, delistings and changed trading rules on md.{<venue>}.instruments (default 60; "
        "0: not read)",
    )


def _funding_every(text: str) -> float:
    """argparse type: 0 (funding not read), or seconds up to a day."""
    return 0.0 if text.strip() in ("0", "0.0") else seconds_at_most(86_400)(text)


def _config(args: argparse.Namespace) -> IngestConfig:
    from core.foundations.env import GATEWAY, read_secret, redis_url
    from core.foundations.mesh_config import mesh_config_from_args
    from core.ingest.app import IngestConfig

    source = {} if args.source is None else {"source": args.source}
    return IngestConfig(
        mesh_config_from_args(args),
        redis_url(args.redis_url),
        max_queued=args.max_queued,
        executions=not args.no_executions,
        funding_every_s=args.funding_every_s,
        instruments_every_s=args.instruments_every_s,
        account=not args.no_account,
        gateway=read_secret(GATEWAY),
        lease_ttl_ms=args.lease_ttl_ms,
        **source,
    )


def _create(config: IngestConfig) -> ServiceApp:
    from core.ingest.app import Ingest

    return Ingest(config)


def _mesh_args(mesh: MeshView) -> list[str]:
    return venue_args(mesh.venues)


COMMAND: ServiceCommand[IngestConfig] = ServiceCommand(
    config=_config, create=_create, add_arguments=_add_arguments, mesh_args=_mesh_args
)
