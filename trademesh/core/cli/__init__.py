"""The `trademesh` command line: one entry point for every service and tool.

Every service's subcommand comes from its line in trademesh.core.platform.service.registry.SERVICES
and the ServiceCommand of its module (trademesh.core.platform.service.command); the tools (up,
services, venues, health, demo) are defined here, the others (keys, trace, backtest, ...) in their
packages, named in _TOOLS. A start builds in full only the parser of the command it runs (and
imports only its module): the others are their names and one-line helps (build_parser).
"""

from __future__ import annotations

import os

# Our processes start others only to exec them (the backtest hub's runs, `trademesh up`'s
# services): gRPC's fork handlers are not needed, and with other threads inside gRPC a fork
# could crash the child ("skipping fork() handlers"). Set before gRPC is imported.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "0")

import argparse
import dataclasses
import functools
import importlib
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from trademesh.core.cli.listing import add_listing_parsers
from trademesh.core.platform.aio.cancellation import mend_wait_for
from trademesh.core.platform.errors import InvalidArgument, TrademeshError
from trademesh.core.platform.logs.setup import setup_logging
from trademesh.core.platform.service.command import (
    ServiceCommand,
    add_server_arguments,
    load_command,
    port_number,
    positive_float,
    positive_int,
    server_options,
)
from trademesh.core.platform.service.registry import SERVICES, ServiceEntry

__all__ = ["build_parser", "main"]

# Before any task runs: a cancel is never lost in Python 3.11's wait_for (see there).
mend_wait_for()


def _service_parser(commands: Any, entry: ServiceEntry) -> None:
    command = load_command(entry)
    parser = commands.add_parser(entry.name, help=entry.summary, description=entry.summary)
    command.add_arguments(parser)
    add_server_arguments(parser, entry)
    parser.set_defaults(run=functools.partial(_run_service, entry, command))
    if command.add_subcommands is not None:
        command.add_subcommands(parser.add_subparsers(dest=f"{entry.name}_command", metavar="TOOL"))


def _run_service(entry: ServiceEntry, command: ServiceCommand[Any], args: argparse.Namespace) -> None:
    import uvloop

    from trademesh.core.platform.logs.stream.scrubber import hold_urls
    from trademesh.core.platform.service.lifecycle import label_of, run_service

    app = command.create(command.config(args))
    label = label_of(entry, app)
    # A URL given by flag (--gateway-url, --redis-url) is no variable the log stream's scrubber
    # reads: its password is handed over before the handler is made.
    hold_urls(vars(args).values())
    setup_logging(label, **({entry.name: app.name} if app.name != entry.name else {}))
    uvloop.run(run_service(entry, app, server_options(entry, command, args, label)))


def _demo_command(args: argparse.Namespace) -> None:
    import uvloop

    from trademesh.core.cli.demo import run_demo

    setup_logging("demo")
    uvloop.run(run_demo(args.port, args.rounds))


def _up_command(args: argparse.Namespace) -> None:
    from trademesh.core.cli.mesh.up import UpOptions, run_up
    from trademesh.venues.sim.config import DEMO_MARKET

    setup_logging("mesh")
    if args.paper is not None and args.sim_config is not None:
        raise InvalidArgument.field("sim-config", f"{args.sim_config}: --paper {args.paper} runs no sim")
    sim_config = args.sim_config or DEMO_MARKET
    if args.screens is not None and not args.screens.is_dir():
        raise InvalidArgument.field("screens", f"{args.screens} is not a directory")
    accounts = args.venue_account
    for twice in {a for a in accounts if accounts.count(a) > 1}:
        raise InvalidArgument.field(
            "venue-account", f"{'='.join(twice)} given twice: one process per account"
        )
    options = UpOptions(args.data_dir, args.free_ports, sim_config, args.status_every, paper=args.paper)
    external = tuple(args.venue_external)
    run_up(
        dataclasses.replace(
            options,
            venue_accounts=tuple(accounts),
            external_venues=external,
            verbose=args.verbose,
            screens_dir=args.screens,
            without=tuple(dict.fromkeys(args.without)),
        )
    )


def _health_command(args: argparse.Namespace) -> None:
    import uvloop

    from trademesh.core.platform.rpc.health_probe import check_health

    status = uvloop.run(check_health(args.address, args.service, args.timeout))
    print(status)
    if status != "SERVING":
        raise SystemExit(1)


def _tool_parsers(commands: Any) -> None:
    add_listing_parsers(commands)  # trademesh services, trademesh venues

    health = commands.add_parser("health", help="exit 0 when a service's gRPC health says SERVING")
    health.add_argument("address", help="host:port of the service")
    health.add_argument("--service", default="", help="service name to ask about (default: the whole server)")
    health.add_argument("--timeout", type=positive_float, default=3.0, help="seconds to wait for an answer")
    health.set_defaults(run=_health_command)

    demo = commands.add_parser("demo", help="start the sim venue and watch it trade in the terminal")
    demo.add_argument(
        "--port", type=port_number, default=0, help="gRPC port of the sim venue (default: a free one)"
    )
    demo.add_argument(
        "--rounds", type=positive_int, help="stop after this many order rounds (default: run until Ctrl-C)"
    )
    demo.set_defaults(run=_demo_command)


def _paper_venue(value: str) -> str:
    from trademesh.venues.registry import VENUES

    live = sorted(name for name in VENUES if name != "sim")
    if value not in live:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a live venue to paper-trade; live venues: {', '.join(live)}"
        )
    return value


def _venue_account(value: str) -> tuple[str, str]:
    """ "binance=desk-a" -> ("binance", "desk-a"): one account of a venue `up` runs beside the mesh."""
    from trademesh.core.domain.accounts import account_name
    from trademesh.venues.registry import VENUES

    exchange, equals, account = value.partition("=")
    if not equals or exchange not in VENUES:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not VENUE=ACCOUNT (binance=desk-a); venues: {', '.join(sorted(VENUES))}"
        )
    try:
        return exchange, account_name(account)
    except InvalidArgument as error:
        raise argparse.ArgumentTypeError(f"{value!r}: {error.violations[0].description}") from None


def _names(value: str) -> list[str]:
    """argparse type: a comma-separated list of names (empty ones dropped)."""
    return [name.strip() for name in value.split(",") if name.strip()]


def _venue_external(value: str) -> Any:
    """argparse type: NAME=HOST:PORT of a venue run elsewhere (trademesh.core.cli.mesh.external)."""
    from trademesh.core.cli.mesh.external import parse_external

    return parse_external(value)


def _up_parser(commands: Any) -> None:
    deployed = ", ".join(name for name, entry in SERVICES.items() if entry.deployed)
    up = commands.add_parser("up", help=f"run the whole local mesh ({deployed})")
    up.add_argument(
        "--data-dir",
        type=Path,
        default=Path(".trademesh"),
        help="embedded Redis/PostgreSQL data and the mesh token (default ./.trademesh)",
    )
    up.add_argument("--free-ports", action="store_true", help="every service on a free port, not its own")
    up.add_argument(
        "--sim-config",
        type=Path,
        help="config of the sim venue (TOML; see trademesh/venues/sim/config.py; default: the demo market, "
        "trademesh/venues/sim/demo.toml)",
    )
    up.add_argument(
        "--paper",
        type=_paper_venue,
        metavar="VENUE",
        help="paper-trade a live venue instead of running the sim: its real market data, orders "
        "matched against its book, no account needed (docs/paper.md)",
    )
    up.add_argument(
        "--venue-account",
        type=_venue_account,
        action="append",
        default=[],
        metavar="VENUE=ACCOUNT",
        help="also run one account of a venue as the venue VENUE.ACCOUNT, with its own credentials "
        "(repeatable; binance=desk-a reads TRADEMESH_BINANCE__DESK_A_API_KEY ...; docs/accounts.md)",
    )
    up.add_argument(
        "--venue-external",
        type=_venue_external,
        action="append",
        default=[],
        metavar="NAME=HOST:PORT",
        help="also follow a venue run elsewhere (in another language, on another machine), not "
        "started by up: checked before the services that follow venues start; started with the "
        "mesh's tokens (repeatable; docs/venues.md, A venue in another language)",
    )
    up.add_argument(
        "--screens",
        type=Path,
        metavar="DIR",
        help="the Screener's directory of screens (*.toml, docs/screener.md; default: the shipped "
        "trademesh/core/screener/screens/)",
    )
    up.add_argument(
        "--without",
        type=_names,
        action="extend",
        default=[],
        metavar="SERVICE[,SERVICE...]",
        help="leave services out of the mesh (repeatable), e.g. --without backtester,screener when "
        "you do not backtest or screen: less CPU and memory, a quicker start; not the gateway or the "
        "venue, nor a service one still started depends on",
    )
    up.add_argument(
        "--status-every",
        type=positive_float,
        default=10.0,
        help="seconds between progress lines (default 10)",
    )
    up.add_argument(
        "--verbose",
        action="store_true",
        help="every service's log lines on the terminal too (default: one line per service, the "
        "Studio URL, progress, warnings and errors; the whole log in <data-dir>/logs/up.log)",
    )
    up.set_defaults(run=_up_command)


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line naming the bad value (exit code 2), not the usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


# The commands whose parsers live in a service's package: their module, the function adding the
# parser, and the one-line help `trademesh --help` lists. Only the command run imports its module
# (tests/unit/test_cli_lazy.py checks each help against the parser's own).
_TOOLS: dict[str, tuple[str, str, str]] = {
    "keys": (
        "trademesh.gateway.auth.command",
        "add_keys_parser",
        "create, list, scope and revoke the gateway's API keys",
    ),
    "trace": (
        "trademesh.core.ledger.command",
        "add_trace_parser",
        "the chain of any id: signal -> decision -> intent -> risk check -> order -> fill -> transfer",
    ),
    "backtest": (
        "trademesh.core.backtest.command",
        "add_backtest_parser",
        "run strategies over recorded history through the same engine cores as live",
    ),
    "data": (
        "trademesh.core.history.command",
        "add_data_parser",
        "history from the past (exchange archives, CSV) into the recorder's tables, and its coverage",
    ),
    "backtest-sweep": (
        "trademesh.core.backtest.sweep_command",
        "add_sweep_parser",
        "sweep a strategy's parameters (grid or random), in parallel, with walk-forward folds",
    ),
    "venue-check": (
        "trademesh.core.venue_check.command",
        "add_venue_check_parser",
        "check that a running venue (any language) keeps the venue contract (docs/venue-contract.md)",
    ),
    "venue-manifests": (
        "trademesh.venues.manifests",
        "add_manifests_parser",
        "print a venue's docker-compose service or Kubernetes manifest (docs/venues.md)",
    ),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole parser; given a command, that command's parser alone in full and every other
    command only by its name and one-line help (as `trademesh --help` lists them): a service's
    module, its config and its flags are imported and built only when it runs."""
    parser = _Parser(prog="trademesh", description="trademesh: a trading operating system")
    commands = parser.add_subparsers(dest="command", required=True)
    for entry in SERVICES.values():
        if command is None or command == entry.name:
            _service_parser(commands, entry)
        else:
            commands.add_parser(entry.name, help=entry.summary)
    _up_parser(commands)
    _tool_parsers(commands)
    for name, (module, function, summary) in _TOOLS.items():
        if command is None or command == name:
            getattr(importlib.import_module(module), function)(commands)
        else:
            commands.add_parser(name, help=summary)
    return parser


def _command_of(argv: Sequence[str]) -> str | None:
    """The command an argument list runs: its first positional argument (the top-level parser
    has no option but --help); None when there is none."""
    for i, arg in enumerate(argv):
        if arg == "--":
            return argv[i + 1] if i + 1 < len(argv) else None
        if not arg.startswith("-"):
            return arg
    return None


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    command = _command_of(argv)
    args = build_parser(command or "").parse_args(argv)  # "": no command built in full
    if args.command != command:  # an argument list read otherwise than _command_of read it
        args = build_parser().parse_args(argv)
    try:
        args.run(args)
    except TrademeshError as exc:
        print(f"trademesh: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0
