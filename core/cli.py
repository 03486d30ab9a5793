"""The `trademesh` command line: one entry point for every service and tool."""

from __future__ import annotations

import argparse
import functools
import importlib
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import uvloop

from core.env import TOKEN, read_secret
from core.errors import InvalidArgument, TrademeshError
from core.logs import setup_logging
from core.rpc.server import ServerOptions

__all__ = ["METRICS_PORT_OFFSET", "build_parser", "main"]

# A venue's Prometheus exporter listens on its gRPC port plus this, unless told otherwise.
METRICS_PORT_OFFSET = 4000


def _venue_command(args: argparse.Namespace) -> None:
    from venues.registry import VENUES, create_venue
    from venues.runtime.app import serve_venue
    from venues.runtime.runtime import RuntimeOptions

    setup_logging(f"venue/{args.name}")
    port = VENUES[args.name].default_port if args.port is None else args.port
    metrics_port = args.metrics_port
    if metrics_port is None:
        metrics_port = 0 if port == 0 else port + METRICS_PORT_OFFSET
    options = ServerOptions(
        host=args.host,
        port=port,
        metrics_port=None if metrics_port < 0 else metrics_port,
        token=read_secret(TOKEN),
        service_label=f"venue {args.name}",
    )
    replay = None
    if args.replay:
        from venues.replay.server import ReplayOptions, parse_fault

        faults = tuple(parse_fault(text) for text in args.replay_fault)
        replay = ReplayOptions(tuple(args.replay), paced=args.replay_paced, faults=faults)
    venue = create_venue(args.name, args.config, replay)
    if args.resume_window_s < 0:
        raise InvalidArgument.field("resume-window-s", f"{args.resume_window_s} is negative")
    runtime_options = RuntimeOptions(resume_window_s=args.resume_window_s)
    uvloop.run(serve_venue(venue, options, runtime_options))


def _venues_command(args: argparse.Namespace) -> None:
    from venues.registry import VENUES

    for entry in VENUES.values():
        print(f"{entry.name:<12} port {entry.default_port}  {entry.summary}")


def _demo_command(args: argparse.Namespace) -> None:
    from core.demo import run_demo

    setup_logging("demo")
    uvloop.run(run_demo(args.port, args.rounds))


def _up_command(args: argparse.Namespace) -> None:
    from core.mesh.up import UpOptions, run_up

    setup_logging("mesh")
    if args.status_every <= 0:
        raise InvalidArgument.field(
            "status-every", f"{args.status_every} is not a positive number of seconds"
        )
    run_up(UpOptions(args.data_dir, args.free_ports, args.sim_config, args.status_every))


def _health_command(args: argparse.Namespace) -> None:
    from core.health import check_health

    status = uvloop.run(check_health(args.address, args.service, args.timeout))
    print(status)
    if status != "SERVING":
        raise SystemExit(1)


def _venue_name(value: str) -> str:
    from venues.registry import VENUES

    if value not in VENUES:
        raise argparse.ArgumentTypeError(
            f"unknown venue {value!r}; known venues: {', '.join(sorted(VENUES))}"
        )
    return value


# The mesh services: (command, module with add_arguments(parser) and run(args), default port, help).
MESH_SERVICES = (
    ("ingest", "core.ingest.command", 5100, "follow the venues' market data and publish it to the bus"),
    ("recorder", "core.recorder.command", 5101, "write the bus's market data and bars to PostgreSQL"),
    ("bars", "core.bars.command", 5102, "build OHLCV bars from trades, repair gaps from venue history"),
    ("bridge", "core.bridge.command", 5103, "serve the bus live over gRPC (LiveData)"),
)


def _mesh_service_parser(commands: Any, name: str, module_name: str, port: int, summary: str) -> None:
    module = importlib.import_module(module_name)
    parser = commands.add_parser(name, help=summary)
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument(
        "--port", type=int, default=port, help=f"gRPC port (health, ...); 0 picks one (default {port})"
    )
    parser.add_argument(
        "--metrics-port",
        type=int,
        help=f"Prometheus port; -1 for none (default: gRPC port + {METRICS_PORT_OFFSET})",
    )
    parser.add_argument("--redis-url", help="the bus (default: $REDIS_URL, else redis://127.0.0.1:6379/0)")
    parser.add_argument("--mesh-config", type=Path, help="mesh config file (TOML; see core/mesh/config.py)")
    parser.add_argument(
        "--venue",
        action="append",
        default=[],
        metavar="NAME=HOST:PORT",
        help="a venue to follow (all symbols, default channels); repeatable; adds to --mesh-config",
    )
    module.add_arguments(parser)
    parser.set_defaults(run=functools.partial(_mesh_service_command, name, module))


def _mesh_service_command(name: str, module: Any, args: argparse.Namespace) -> None:
    setup_logging(name)
    metrics_port = args.metrics_port
    if metrics_port is None:
        metrics_port = 0 if args.port == 0 else args.port + METRICS_PORT_OFFSET
    args.server_options = ServerOptions(
        host=args.host,
        port=args.port,
        metrics_port=None if metrics_port < 0 else metrics_port,
        token=read_secret(TOKEN),
        service_label=name,
    )
    module.run(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="trademesh", description="trademesh: a trading operating system")
    commands = parser.add_subparsers(dest="command", required=True)

    venue = commands.add_parser("venue", help="run one venue service (MarketData, TradeFlow, Admin)")
    venue.add_argument("name", type=_venue_name, help="venue name (see `trademesh venues`)")
    venue.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    venue.add_argument("--port", type=int, help="gRPC port; 0 picks a free one (default: the venue's own)")
    venue.add_argument(
        "--metrics-port",
        type=int,
        help=f"Prometheus port; -1 for none (default: gRPC port + {METRICS_PORT_OFFSET})",
    )
    venue.add_argument("--config", type=Path, help="venue config file (TOML)")
    venue.add_argument(
        "--resume-window-s",
        type=float,
        default=120.0,
        help="seconds of market data kept for subscribers that resume a lost stream (default 120; 0: none)",
    )
    venue.add_argument(
        "--replay",
        type=Path,
        nargs="+",
        metavar="CAPTURE",
        help="serve recorded exchange sessions instead of the live venue (capture files; see docs/venues.md)",
    )
    venue.add_argument(
        "--replay-paced", action="store_true", help="replay at the recorded pace (default: full speed)"
    )
    venue.add_argument(
        "--replay-fault",
        action="append",
        default=[],
        metavar="KIND@N",
        help="fault at market frame N: disconnect, gap, malformed; ratelimit@N, slow@N: next N REST calls",
    )
    venue.set_defaults(run=_venue_command)

    listing = commands.add_parser("venues", help="list the venues trademesh can run")
    listing.set_defaults(run=_venues_command)

    health = commands.add_parser("health", help="exit 0 when a service's gRPC health says SERVING")
    health.add_argument("address", help="host:port of the service")
    health.add_argument("--service", default="", help="service name to ask about (default: the whole server)")
    health.add_argument("--timeout", type=float, default=3.0, help="seconds to wait for an answer")
    health.set_defaults(run=_health_command)

    demo = commands.add_parser("demo", help="start the sim venue and watch it trade in the terminal")
    demo.add_argument("--port", type=int, default=0, help="gRPC port of the sim venue (default: a free one)")
    demo.add_argument(
        "--rounds", type=int, help="stop after this many order rounds (default: run until Ctrl-C)"
    )
    demo.set_defaults(run=_demo_command)

    up = commands.add_parser(
        "up", help="run the whole local mesh (sim venue, ingest, recorder, bars, bridge)"
    )
    up.add_argument(
        "--data-dir",
        type=Path,
        default=Path(".trademesh"),
        help="embedded Redis/PostgreSQL data and the mesh token (default ./.trademesh)",
    )
    up.add_argument("--free-ports", action="store_true", help="every service on a free port, not its own")
    up.add_argument(
        "--sim-config", type=Path, help="config of the sim venue (TOML; see venues/sim/config.py)"
    )
    up.add_argument(
        "--status-every", type=float, default=10.0, help="seconds between progress lines (default 10)"
    )
    up.set_defaults(run=_up_command)
    for name, module_name, port, summary in MESH_SERVICES:
        _mesh_service_parser(commands, name, module_name, port, summary)
    importlib.import_module("gateway.auth.command").add_keys_parser(commands)  # trademesh keys ...
    importlib.import_module("gateway.command").add_parser(commands)  # trademesh gateway
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.run(args)
    except TrademeshError as exc:
        print(f"trademesh: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
