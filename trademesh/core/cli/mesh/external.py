"""`trademesh up --venue-external NAME=HOST:PORT`: a venue the mesh follows but does not run.

It runs elsewhere (a venue written in another language, one on another machine): `up` neither
starts, restarts nor stops it. Before the services that follow venues start, `up` checks that it
answers: its health SERVING (waited for a while, so the two may be started in either order), and
its Admin.GetStatus taking the mesh token and naming the venue NAME (the name its streams carry
on the bus). Then it is one of the mesh's venues (MeshView.venues): each service that follows
venues is given it as it is given the built-in ones (`--venue NAME=HOST:PORT`). It registers with
the gateway itself, as every venue does (docs/venues.md, "A venue in another language").
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from trademesh.admin.v1 import admin_pb2 as admin
from trademesh.admin.v1 import admin_pb2_grpc as admin_grpc
from trademesh.core.platform.config.mesh import parse_venue_link
from trademesh.core.platform.errors import FailedPrecondition, InvalidArgument, Unavailable, shown
from trademesh.core.platform.rpc.status import call_failure, calling

__all__ = ["WAIT_S", "ExternalVenue", "check_external", "check_names", "parse_external"]

# How long `up` waits for an external venue's health to say SERVING: it may be starting too.
WAIT_S = 30.0
_CALL_TIMEOUT_S = 3.0
_RETRY_S = 0.5
_SERVING = health_pb2.HealthCheckResponse.SERVING
# Answers that say the venue holds another mesh token than this mesh's.
_REFUSED = (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED)


@dataclass(frozen=True)
class ExternalVenue:
    name: str
    address: str

    def __str__(self) -> str:
        return f"--venue-external {self.name}={self.address}"


def parse_external(text: str) -> ExternalVenue:
    """argparse type: NAME=HOST:PORT, by the rules of a service's --venue (the bus's names)."""
    try:
        link = parse_venue_link(text)
    except InvalidArgument as exc:
        raise argparse.ArgumentTypeError(str(exc.violations[0].description)) from None
    return ExternalVenue(link.name, link.address)


def check_names(external: Iterable[ExternalVenue], mesh_venues: Iterable[str]) -> None:
    """InvalidArgument when an external venue's name is given twice or is a venue `up` runs."""
    taken, given = set(mesh_venues), set[str]()
    for venue in external:
        if venue.name in taken:
            raise InvalidArgument.field("venue-external", f"{venue}: up runs a venue named {venue.name}")
        if venue.name in given:
            raise InvalidArgument.field("venue-external", f"{venue}: {venue.name} given twice")
        given.add(venue.name)


async def check_external(venue: ExternalVenue, token: str, wait_s: float = WAIT_S) -> admin.GetStatusResponse:
    """Its GetStatus once its health says SERVING; Unavailable or FailedPrecondition, one line
    naming it, when it does not answer, refuses the mesh token or is another venue."""
    async with grpc.aio.insecure_channel(venue.address) as channel:
        await _serving(channel, venue, wait_s)
        status = await _status(channel, venue, token)
    if status.venue != venue.name:
        raise FailedPrecondition(
            f"{venue}: the venue there says it is {shown(status.venue)}, not {venue.name}"
        )
    return status


async def _serving(channel: grpc.aio.Channel, venue: ExternalVenue, wait_s: float) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    deadline = time.monotonic() + wait_s
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            reply = await health.Check(health_pb2.HealthCheckRequest(), timeout=_CALL_TIMEOUT_S)
        except grpc.aio.AioRpcError as exc:
            last = call_failure(exc)
        else:
            if reply.status == _SERVING:
                return
            last = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
        await asyncio.sleep(_RETRY_S)
    raise Unavailable(f"{venue}: its health did not say SERVING within {wait_s:.0f} s ({last})")


async def _status(channel: grpc.aio.Channel, venue: ExternalVenue, token: str) -> admin.GetStatusResponse:
    stub = admin_grpc.AdminStub(channel)
    metadata = (("authorization", f"Bearer {token}"),)
    refused = dict.fromkeys(_REFUSED, lambda exc: _token_refused(venue, exc))
    with calling(f"{venue}: GetStatus failed", refusals=refused):
        status: admin.GetStatusResponse = await stub.GetStatus(
            admin.GetStatusRequest(), metadata=metadata, timeout=_CALL_TIMEOUT_S
        )
    return status


def _token_refused(venue: ExternalVenue, exc: grpc.aio.AioRpcError) -> FailedPrecondition:
    return FailedPrecondition(
        f"{venue}: it refuses the mesh token ({exc.code().name}): start it with the mesh's "
        "TRADEMESH_TOKEN and TRADEMESH_TRADE_TOKEN"
    )
