"""`trademesh inspector`: its flags, its config, its app (core.foundations.command)."""

from __future__ import annotations

import argparse
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING

from core.foundations.command import (
    MeshView,
    ServiceCommand,
    add_leader_argument,
    add_redis_argument,
    instance_name,
    positive_float,
    whole_number,
)
from core.foundations.env import ADVISOR_SIGNING_KEY, DETECTOR_SIGNING_KEY, TRADE_TOKEN
from core.foundations.mesh_config import add_mesh_arguments, venue_args

if TYPE_CHECKING:
    from core.foundations.service import ServiceApp
    from core.inspector.config import InspectorServiceConfig

__all__ = ["COMMAND"]


def _equity(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"{text!r} is not a decimal") from None
    if not value.is_finite() or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a decimal above 0")
    return value


def _ttl(text: str) -> int:
    value = whole_number(0)(text)
    if value and not 1_000 <= value <= 3_600_000:
        raise argparse.ArgumentTypeError(f"{text!r} is not 0 (off) or within 1000-3600000 ms")
    return value


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    add_redis_argument(parser)
    add_mesh_arguments(parser)
    parser.add_argument(
        "--instance",
        type=instance_name,
        default="inspector",
        help="this inspector's name (default inspector)",
    )
    add_leader_argument(parser, "inspector")
    parser.add_argument(
        "--policies", type=Path, help="the policy set (TOML, reread on change; default: the shipped one)"
    )
    parser.add_argument(
        "--starting-equity", type=_equity, default=Decimal(100_000),
        help="the account's equity in the quote asset when the journal starts (default 100000)",
    )  # fmt: skip
    parser.add_argument(
        "--deadman-ttl-ms", type=_ttl, default=10_000,
        help="each venue cancels every order this long after the inspector's last heartbeat (0: off)",
    )  # fmt: skip
    parser.add_argument(
        "--reconcile-every-s", type=positive_float, default=10.0, help="compare with the venues (default 10)"
    )
    parser.add_argument(
        "--margin-every-s", type=positive_float, default=1.0,
        help="read each leveraged venue's margins and liquidation prices (default 1)",
    )  # fmt: skip
    parser.add_argument(
        "--venue-timeout-s", type=positive_float, default=2.0, help="deadline of an order call (default 2)"
    )
    parser.add_argument(
        "--snapshot-every", type=whole_number(10), default=5_000,
        help="snapshot the core into its journal every this many entries: a restart replays at most "
        "about this many (default 5000)",
    )  # fmt: skip
    parser.add_argument(
        "--executions", choices=("bus", "venue"), default="bus",
        help="read executions from the bus (exec.{<venue>}, by ingest; default) or straight from the venues",
    )  # fmt: skip
    parser.add_argument(
        "--emulate-stops", action="store_true",
        help="hold stop-losses here and send a market order when the last trade crosses them, even "
        "at venues with native stop orders",
    )  # fmt: skip


def _config(args: argparse.Namespace) -> InspectorServiceConfig:
    from core.foundations.config_file import read_text
    from core.foundations.env import GATEWAY, read_secret, redis_url
    from core.foundations.errors import InvalidArgument
    from core.foundations.mesh_config import mesh_config_from_args
    from core.inspector.config import InspectorServiceConfig
    from core.inspector.engine.policy_file import load_policies

    if args.policies is not None and not args.policies.is_file():
        raise InvalidArgument.field("policies", f"{args.policies} is not a file")
    if args.policies is not None:  # read and checked at start: one line, before the bus is reached
        load_policies(read_text(args.policies, "policies"), str(args.policies))
    return InspectorServiceConfig(
        redis_url=redis_url(args.redis_url),
        mesh=mesh_config_from_args(args),
        gateway=read_secret(GATEWAY),
        policies=args.policies,
        starting_equity=args.starting_equity,
        instance=args.instance,
        deadman_ttl_ms=args.deadman_ttl_ms,
        reconcile_every_s=args.reconcile_every_s,
        margin_every_s=args.margin_every_s,
        venue_timeout_s=args.venue_timeout_s,
        emulate_stops=args.emulate_stops,
        executions=args.executions,
        snapshot_every=args.snapshot_every,
        leader_ttl_ms=args.leader_ttl_ms,
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
)
