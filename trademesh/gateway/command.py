"""`trademesh gateway`: gRPC-web, login, /metrics, /mcp and Studio on HTTP; the registry on gRPC.

Imports here stay light (argparse only): the `trademesh` CLI builds every subcommand's parser
at start, and the gateway's dependencies load only when it runs. --host, --port (HTTP) and
--grpc-port come from its line in trademesh.core.platform.service.registry.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from trademesh.core.platform.config.flags import add_flags, flag_values
from trademesh.core.platform.service.command import ServiceCommand
from trademesh.gateway.board.command import add_board_arguments, board_options
from trademesh.gateway.config import BoardOptions, GatewayConfig, MuxLimits

if TYPE_CHECKING:
    from trademesh.core.platform.service.lifecycle import ServiceApp

__all__ = ["COMMAND", "parse_upstream", "proxy_network"]


def parse_upstream(text: str) -> tuple[str, tuple[str, ...], str]:
    """NAME=SERVICE[,SERVICE...]@HOST:PORT -> (name, services, address), for argparse."""
    from trademesh.gateway.registry.validate import check_register
    from trademesh.registry.v1 import registry_pb2 as pb

    name, sep, rest = text.partition("=")
    services_text, at, address = rest.rpartition("@")
    if not sep or not at:
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME=SERVICE[,SERVICE...]@HOST:PORT")
    services = tuple(s.strip() for s in services_text.split(",") if s.strip())
    from trademesh.core.platform.errors import InvalidArgument

    request = pb.RegisterRequest(name=name, kind=pb.KIND_CORE, address=address, services=services)
    try:
        check_register(request)
    except InvalidArgument as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: {exc}") from None
    if not services:
        raise argparse.ArgumentTypeError(f"{text!r} names no service")
    return name, services, address


def proxy_network(text: str) -> str:
    """An address or network (10.0.0.5, 10.0.0.0/24, ::1), for argparse; the normalized text."""
    import ipaddress

    try:
        return str(ipaddress.ip_network(text.strip(), strict=False))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an IP address or network") from None


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--upstream",
        type=parse_upstream,
        action="append",
        default=[],
        metavar="NAME=SERVICE[,SERVICE]@HOST:PORT",
        help="a fixed route besides the registry (e.g. sim=trademesh.admin.v1.Admin@127.0.0.1:5070); "
        "repeatable",
    )
    parser.add_argument("--database-url", help="API keys' database (default: $DATABASE_URL)")
    parser.add_argument(
        "--redis-url",
        help="the bus: its `logs` stream Logs/Tail and logs_tail read, and the registry shared "
        "with --shared-registry (default: $REDIS_URL; neither: no log tailing, no sharing)",
    )
    add_flags(parser, GatewayConfig)
    parser.add_argument(
        "--allow-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="browser origin allowed to call cross-origin (e.g. http://localhost:5173); repeatable; "
        "default: any origin (bearer tokens only, never cookies)",
    )
    parser.add_argument(
        "--trusted-proxy",
        type=proxy_network,
        action="append",
        default=[],
        metavar="ADDRESS[/PREFIX]",
        help="a reverse proxy whose X-Forwarded-For names the client (e.g. 10.0.0.5 or 10.0.0.0/24); "
        "repeatable; default: none, the client is the TCP peer",
    )
    _add_mux_arguments(parser)
    add_board_arguments(parser)


def _add_mux_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("live-data multiplexer (trademesh.mux.v1.Mux, docs/gateway.md)")
    add_flags(group, MuxLimits)


def _config(args: argparse.Namespace) -> GatewayConfig:
    from trademesh.core.platform.config.env import database_url
    from trademesh.core.platform.errors import InvalidArgument

    if not args.registry_ttl_s > args.heartbeat_interval_s:
        raise InvalidArgument.field(
            "registry-ttl-s",
            f"{args.registry_ttl_s} must be longer than --heartbeat-interval-s {args.heartbeat_interval_s}",
        )
    bus = _redis_url(args.redis_url)
    if args.shared_registry and bus is None:
        raise InvalidArgument.field("shared-registry", "needs the bus: --redis-url or $REDIS_URL")
    return GatewayConfig(
        host=args.host,
        port=args.port,
        database_url=database_url(args.database_url),
        upstreams=tuple(args.upstream),
        allow_origins=frozenset(args.allow_origin),
        trusted_proxies=tuple(args.trusted_proxy),
        redis_url=bus,
        mux=MuxLimits(**flag_values(args, MuxLimits)),
        board=board_options(args),
        **flag_values(args, GatewayConfig),
    )


def _redis_url(flag: str | None) -> str | None:
    """--redis-url, else $REDIS_URL, else None (the gateway needs no bus but for LogHub)."""
    from trademesh.core.platform.config.env import REDIS_SCHEMES, REDIS_URL, read_secret
    from trademesh.core.platform.logs.redact import check_url

    if flag is not None:
        return check_url(flag, REDIS_SCHEMES, "redis-url")
    env = read_secret(REDIS_URL)
    return None if env is None else check_url(env, REDIS_SCHEMES, REDIS_URL)


def _create(config: GatewayConfig) -> ServiceApp:
    from trademesh.gateway.serve import GatewayService

    return GatewayService(config)


COMMAND: ServiceCommand[GatewayConfig] = ServiceCommand(
    config=_config,
    create=_create,
    add_arguments=_add_arguments,
    settings=(GatewayConfig, MuxLimits, BoardOptions),
)
