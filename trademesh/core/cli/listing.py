"""`trademesh services` and `trademesh venues`: what this installation can run and, when the gateway
is known (--gateway, else $TRADEMESH_GATEWAY), what is registered with it now.

The venues are the built-in ones and those installed packages add (trademesh/venues/registry.py); a
plug-in that does not load is one line on stderr naming its package, and the others are listed.
The registered instances come from the gateway's app registry (Registry.ListServices): every
venue that runs, whatever added it or whatever language it is written in.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from trademesh.core.platform.service.command import positive_float
from trademesh.core.platform.service.registry import SERVICES

__all__ = ["add_listing_parsers", "registered_lines"]


def add_listing_parsers(commands: Any) -> None:
    services = commands.add_parser(
        "services",
        help="list the services and venues trademesh runs (trademesh/core/platform/service/registry.py, "
        "trademesh/venues/registry.py) and, with a gateway, the instances registered with it",
    )
    services.add_argument(
        "--gateway",
        metavar="HOST:PORT",
        help="also list what is registered with this gateway's registry (its gRPC address; "
        "default: $TRADEMESH_GATEWAY, if set)",
    )
    services.add_argument(
        "--timeout", type=positive_float, default=3.0, help="seconds to wait for the gateway (default 3)"
    )
    services.set_defaults(run=_services_command)
    venues = commands.add_parser(
        "venues", help="list the venues trademesh can run: built in, and added by installed packages"
    )
    venues.set_defaults(run=_venues_command)


def _services_command(args: argparse.Namespace) -> None:
    from trademesh.core.platform.config.env import GATEWAY, read_secret
    from trademesh.venues.registry import listing

    venues, problems = listing()
    for entry in SERVICES.values():
        ports = "per venue" if entry.port is None else f"port {entry.port}"
        if entry.grpc_port is not None:
            ports += f", gRPC {entry.grpc_port}"
        needs = f"  (needs {', '.join(entry.depends_on)})" if entry.depends_on else ""
        print(f"{entry.name:<10} {entry.kind.value:<8} {ports:<22} {entry.summary}{needs}")
        if entry.name == "venue":
            for venue in venues:
                print(f"  {venue.name:<12} port {venue.default_port}{_package(venue.package)}")
    _report(problems)
    gateway = args.gateway if args.gateway is not None else read_secret(GATEWAY)
    if gateway is not None:
        import asyncio

        lines = asyncio.run(registered_lines(gateway, args.timeout))
        print(f"registered with the gateway at {gateway}:")
        for line in lines:
            print(f"  {line}")


def _venues_command(args: argparse.Namespace) -> None:
    from trademesh.venues.registry import listing

    venues, problems = listing()
    for entry in venues:
        print(f"{entry.name:<12} port {entry.default_port}  {entry.summary}{_package(entry.package)}")
    _report(problems)


def _package(package: str) -> str:
    return f"  (package {package})" if package else ""


def _report(problems: list[str]) -> None:
    for problem in problems:
        print(f"trademesh: {problem}", file=sys.stderr)


async def registered_lines(gateway: str, timeout_s: float) -> list[str]:
    """One line per instance the gateway's registry lists: name, kind, address, version (and
    PAPER for a paper venue). Unavailable naming the gateway when it does not answer."""
    import grpc

    from trademesh.core.platform.rpc.client import auth_metadata
    from trademesh.core.platform.rpc.status import calling
    from trademesh.registry.v1 import registry_pb2 as reg
    from trademesh.registry.v1 import registry_pb2_grpc as reg_grpc

    async with grpc.aio.insecure_channel(gateway) as channel:
        with calling(f"the gateway's registry at {gateway}"):
            answer = await reg_grpc.RegistryStub(channel).ListServices(
                reg.ListServicesRequest(), metadata=auth_metadata(), timeout=timeout_s
            )
    lines = []
    for instance in answer.instances:
        kind = reg.Kind.Name(instance.kind).removeprefix("KIND_").lower()
        version = instance.version or "-"
        paper = "  PAPER" if instance.paper else ""
        lines.append(f"{instance.name:<20} {kind:<12} {instance.address:<22} {version}{paper}")
    return lines
