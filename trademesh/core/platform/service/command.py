"""What a service module gives the `trademesh` CLI and `trademesh up`: one ServiceCommand.

Each module named in trademesh.core.platform.service.registry.SERVICES exposes
`COMMAND = ServiceCommand(...)`:
- `add_arguments(parser)`: its own flags (the common ones, --host --port --metrics-port, are
  added here from its registry entry);
- `config(args)`: the flags as its frozen, typed config (a bad value raises InvalidArgument
  naming the flag); the Namespace goes no further;
- `settings`: that config's class (and those nested in it), when its flags are declared on it
  (trademesh.core.platform.config.flags: one declaration per setting, its default and help;
  tests/unit/test_flag_defaults.py checks them);
- `create(config)`: the ServiceApp trademesh.core.platform.service.lifecycle runs;
- `mesh_args(mesh)`: its arguments when `trademesh up` starts it (besides the ports);
- `instance_port(args)`: the default port when its registry entry has none (a venue's own);
- `add_subcommands(commands)`: tools of its own under its subcommand (`trademesh advisor train`);
  without one, the subcommand runs the service;
- `privileged`: methods that take only a stronger credential than the mesh token (a venue's
  order RPCs take only the trading credential; trademesh.core.platform.rpc.auth), read from its
  variable at start;
- `holds`: the secrets `trademesh up` gives it besides the mesh token (the variables; its
  privileged methods' is implied): the inspector holds the trading credential, to send it;
- `left_out()`: why `trademesh up` does not start it (a service that runs only when configured:
  the Telegram bot without a bot token), None when it does.
Module imports stay light (argparse only): the CLI builds every subcommand's parser at start,
and a service's dependencies load only when it runs.
"""

from __future__ import annotations

import argparse
import importlib
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from trademesh.core.platform.config.flags import setting
from trademesh.core.platform.errors import InvalidArgument, shown
from trademesh.core.platform.service.registry import METRICS_PORT_OFFSET, Kind, ServiceEntry

if TYPE_CHECKING:
    from trademesh.core.platform.rpc.auth import Privileged
    from trademesh.core.platform.rpc.server import ServerOptions
    from trademesh.core.platform.service.lifecycle import ServiceApp

__all__ = [
    "LEADER_TTL_MS",
    "MeshView",
    "ServiceCommand",
    "add_redis_argument",
    "add_server_arguments",
    "instance_name",
    "leader_ttl_setting",
    "load_command",
    "metrics_port_number",
    "port_number",
    "positive_float",
    "positive_int",
    "seconds_at_most",
    "server_options",
    "whole_number",
]

C = TypeVar("C")


@dataclass(frozen=True)
class MeshView:
    """What `trademesh up` tells a service about the mesh it starts it in."""

    # The venue `up` runs (the sim: a whole exchange on the machine, no account needed).
    venue: str = "sim"
    # (name, host:port) of every venue serving in the mesh.
    venues: tuple[tuple[str, str], ...] = ()
    # The sim venue's config file, if the user gave one.
    sim_config: Path | None = None
    # `venue` paper-trades (`trademesh up --paper NAME`: a live venue's market, no account).
    paper: bool = False
    # The gateway's HTTP URL (its MCP tools at /mcp), once it serves: the services that are its
    # clients (the Supervisor) are given it.
    gateway_url: str = ""
    # The Screener's directory of screens, if the user gave one (`trademesh up --screens DIR`).
    screens_dir: Path | None = None


def _no_arguments(parser: argparse.ArgumentParser) -> None:
    del parser


def _no_mesh_args(mesh: MeshView) -> list[str]:
    del mesh
    return []


def _always_started() -> str | None:
    return None


@dataclass(frozen=True)
class ServiceCommand(Generic[C]):
    config: Callable[[argparse.Namespace], C]
    create: Callable[[C], ServiceApp]
    add_arguments: Callable[[argparse.ArgumentParser], None] = _no_arguments
    mesh_args: Callable[[MeshView], list[str]] = _no_mesh_args
    instance_port: Callable[[argparse.Namespace], int] | None = field(default=None)
    # Given the subparsers of its subcommand; each parser it adds sets its own `run` default.
    add_subcommands: Callable[[Any], None] | None = field(default=None)
    privileged: Privileged | None = field(default=None)
    holds: tuple[str, ...] = ()
    # The privileged methods of one instance, when its flags change them (a venue account's own
    # trading credential: docs/accounts.md); None: `privileged` for every instance.
    privileged_of: Callable[[argparse.Namespace], Privileged | None] | None = field(default=None)
    # Why `trademesh up` leaves it out (read from up's environment), None to start it.
    left_out: Callable[[], str | None] = field(default=_always_started)
    # The config classes whose settings are its flags (trademesh.core.platform.config.flags): its
    # config's first, then those of configs nested in it (the advisor's GatherConfig).
    settings: tuple[type[Any], ...] = ()

    def secrets(self) -> frozenset[str]:
        """The variables of the restricted secrets it is given: those it holds, and the one its
        privileged methods take."""
        declared = () if self.privileged is None else (self.privileged.variable,)
        return frozenset((*self.holds, *declared))

    def port(self, entry: ServiceEntry, args: argparse.Namespace) -> int:
        """--port, else the entry's default, else the instance's own (a venue's)."""
        if args.port is not None:
            port: int = args.port
            return port
        if entry.port is not None:
            return entry.port
        if self.instance_port is None:
            raise InvalidArgument.field("port", f"{entry.name} has no default port: give --port")
        return self.instance_port(args)


def add_server_arguments(parser: argparse.ArgumentParser, entry: ServiceEntry) -> None:
    """--host, --port, and --metrics-port (or --grpc-port when --port is HTTP: the gateway)."""
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    default = f"default {entry.port}" if entry.port is not None else "default: its own"
    what = "HTTP" if entry.grpc_port is not None else "gRPC"
    parser.add_argument(
        "--port", type=port_number, default=entry.port, help=f"{what} port; 0 picks a free one ({default})"
    )
    if entry.grpc_port is not None:
        parser.add_argument(
            "--grpc-port",
            type=port_number,
            default=entry.grpc_port,
            help=f"native gRPC port; 0 picks a free one (default {entry.grpc_port})",
        )
    else:
        parser.add_argument(
            "--metrics-port",
            type=metrics_port_number,
            help=f"Prometheus port; -1 for none (default: gRPC port + {METRICS_PORT_OFFSET})",
        )


def server_options(
    entry: ServiceEntry, command: ServiceCommand[Any], args: argparse.Namespace, label: str
) -> ServerOptions:
    """The gRPC server's options from the common flags, the TRADEMESH_TOKEN secret and, for a
    service with privileged methods, the secret they take (a venue's TRADEMESH_TRADE_TOKEN)."""
    from trademesh.core.platform.config.env import TOKEN, drain_delay_s, token_secret
    from trademesh.core.platform.rpc.registration import check_gateway_token
    from trademesh.core.platform.rpc.server import ServerOptions

    token = token_secret(TOKEN)
    _check_bearers(command)
    if entry.kind is not Kind.GATEWAY:  # the gateway is the registry: it registers nowhere
        check_gateway_token(token)
    port = command.port(entry, args)
    privileged = command.privileged if command.privileged_of is None else command.privileged_of(args)
    return ServerOptions(
        host=args.host,
        port=args.grpc_port if entry.grpc_port is not None else port,
        metrics_port=_metrics_port(entry, args, port),
        token=token,
        privileged=privileged,
        privileged_token=None if privileged is None else token_secret(privileged.variable),
        drain_delay_s=drain_delay_s(),
        service_label=label,
    )


def _check_bearers(command: ServiceCommand[Any]) -> None:
    """The secrets it sends as a bearer header, checked at start as the mesh token is (a newline
    in one failed each call it made instead): the trading credentials (the accounts' own too)
    and a service's own API key. A signing key is no header: any bytes do."""
    from trademesh.core.platform.config.env import (
        SUPERVISOR_API_KEY,
        TELEGRAM_API_KEY,
        TRADE_TOKEN,
        account_trade_tokens,
        token_secret,
    )

    held = command.secrets()
    sent = held & {TRADE_TOKEN, SUPERVISOR_API_KEY, TELEGRAM_API_KEY}
    if TRADE_TOKEN in held:
        sent |= set(account_trade_tokens())
    for variable in sorted(sent):
        token_secret(variable)


def _metrics_port(entry: ServiceEntry, args: argparse.Namespace, port: int) -> int | None:
    if entry.grpc_port is not None:
        return None  # served on its HTTP port
    metrics_port: int | None = args.metrics_port
    if metrics_port is None:
        metrics_port = 0 if port == 0 else port + METRICS_PORT_OFFSET
    return None if metrics_port < 0 else metrics_port


def add_redis_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--redis-url", help="the bus (default: $REDIS_URL, else redis://127.0.0.1:6379/0)")


# The leader lease's default ttl (trademesh.core.platform.replicas.leader.DEFAULT_TTL_MS: declared
# here, light).
LEADER_TTL_MS = 5_000


def _leader_help(service: str) -> str:
    return (
        f"the ttl of the leader lease leader.{service}.<instance> in Redis: of the processes of "
        "one instance only its holder acts, the others stand by (alive, not ready) and one leads "
        "within about 4/3 of this after the leader is gone; renewed every third"
    )


def leader_ttl_setting(service: str) -> Any:
    """A config's leader_ttl_ms, its flag --leader-ttl-ms (trademesh.core.platform.config.flags)."""
    return setting(LEADER_TTL_MS, type=_leader_ttl, help=_leader_help(service))


def _leader_ttl(text: str) -> int:
    value = whole_number(300)(text)
    if value > 600_000:
        raise argparse.ArgumentTypeError(f"must be at most 600000 ms, got {value}")
    return value


def whole_number(at_least: int) -> Callable[[str], int]:
    """argparse type: a whole number of at least `at_least`."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < at_least:
            raise argparse.ArgumentTypeError(f"must be at least {at_least}, got {value}")
        return value

    return parse


positive_int = whole_number(1)


def port_number(text: str) -> int:
    """argparse type: a TCP port, 0 (pick a free one) to 65535."""
    value = whole_number(0)(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port (0 to 65535; 0 picks a free one)")
    return value


def metrics_port_number(text: str) -> int:
    """argparse type: a metrics port, or -1 for none."""
    return -1 if text.strip() == "-1" else port_number(text)


_INSTANCE = re.compile(r"[a-z0-9][a-z0-9_.-]{0,62}")


def instance_name(text: str) -> str:
    """argparse type: a service instance's name (`--instance`), as the gateway's registry takes
    names and the stores key their rows: 1-63 of a-z 0-9 _ . - starting with a letter or digit."""
    if not _INSTANCE.fullmatch(text):
        raise argparse.ArgumentTypeError(
            f"{shown(text)} is not 1-63 of a-z 0-9 _ . - starting with a letter or digit"
        )
    return text


def positive_float(text: str) -> float:
    """argparse type: a finite number greater than 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    if value == math.inf:
        raise argparse.ArgumentTypeError(f"must be finite, got {text}")
    return value


def seconds_at_most(limit_s: float) -> Callable[[str], float]:
    """argparse type: a duration in seconds, above 0 and at most `limit_s` (a duration that
    goes on the wire as whole milliseconds, or into a deadline, must fit them)."""

    def parse(text: str) -> float:
        value = positive_float(text)
        if value > limit_s:
            raise argparse.ArgumentTypeError(f"must be at most {limit_s:,.0f} s, got {text}")
        return value

    return parse


def load_command(entry: ServiceEntry) -> ServiceCommand[Any]:
    """The ServiceCommand of a registry entry's module (its `COMMAND`)."""
    command = getattr(importlib.import_module(entry.module), "COMMAND", None)
    if not isinstance(command, ServiceCommand):
        raise TypeError(f"{entry.module} must define COMMAND = ServiceCommand(...)")
    return command
