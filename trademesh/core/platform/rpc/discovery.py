"""The venues of the mesh, found in the gateway's registry and followed.

A service that follows venues (ingest, bars' repair, the detector) learns them here: the venues
it was given (--venue, --mesh-config) and, when it knows the gateway (TRADEMESH_GATEWAY), every
venue registered with it (Registry.ListServices, kind VENUE, every `every_s`). A venue that
registers is followed at the next refresh; one that unregisters, or whose heartbeats stopped
long enough for the registry to drop it, is dropped at the next refresh after that.

- A given venue wins over a registered one of its name (the override of a mesh without a
  gateway, or of a venue's advertised address).
- A registry that does not answer keeps the last view: the gateway away is not the venues away.
- A registered name that cannot name a bus stream (trademesh.core.platform.bus.names.venue_name) is
  skipped, logged once: its streams could not be written.
- A registered venue follows every instrument it lists, on the default channels.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence

import grpc

from trademesh.core.platform.aio.retry import sleep_unless
from trademesh.core.platform.bus.names import venue_name
from trademesh.core.platform.config.mesh import VenueLink
from trademesh.core.platform.errors import InvalidArgument
from trademesh.core.platform.rpc.client import auth_metadata
from trademesh.registry.v1 import registry_pb2 as reg
from trademesh.registry.v1 import registry_pb2_grpc as reg_grpc

__all__ = ["MARKET_DATA", "VenueWatch", "Venues"]

log = logging.getLogger(__name__)

# What a registered venue must serve to be followed.
MARKET_DATA = "trademesh.marketdata.v1.MarketData"
_CALL_TIMEOUT_S = 3.0

# The venues followed now, by name.
Venues = Mapping[str, VenueLink]
OnChange = Callable[[Venues], Awaitable[None]]


class VenueWatch:
    """The venues given and those registered with the gateway, refreshed by `follow`."""

    def __init__(self, given: Sequence[VenueLink], gateway: str | None, every_s: float = 1.0) -> None:
        self.gateway = gateway  # the registry's gRPC address; None: only the venues given
        self.every_s = every_s
        self._given = {link.name: link for link in given}
        self._registered: dict[str, VenueLink] = {}
        self._skipped: set[str] = set()
        self._channel: grpc.aio.Channel | None = None

    @property
    def venues(self) -> dict[str, VenueLink]:
        """Every venue followed now: the registered ones, then the given ones over them."""
        return {**self._registered, **self._given}

    def venue(self, name: str) -> VenueLink | None:
        return self.venues.get(name)

    async def refresh(self) -> bool:
        """Reads the registry; whether the venues changed. grpc's error when it does not answer."""
        if self.gateway is None:
            return False
        if self._channel is None:
            self._channel = grpc.aio.insecure_channel(self.gateway)
        answer = await reg_grpc.RegistryStub(self._channel).ListServices(
            reg.ListServicesRequest(kind=reg.KIND_VENUE), metadata=auth_metadata(), timeout=_CALL_TIMEOUT_S
        )
        registered = dict(self._links(answer.instances))
        changed = registered != self._registered
        self._registered = registered
        return changed

    def _links(self, instances: Sequence[reg.Instance]) -> list[tuple[str, VenueLink]]:
        links = []
        # Several live entries of one name (a venue restarted on another port, the old entry not
        # expired yet): the newest registration wins, as the gateway routes.
        for instance in sorted(instances, key=lambda i: i.registered_at_ns):
            if MARKET_DATA not in instance.services:
                continue
            try:
                links.append((instance.name, VenueLink(venue_name(instance.name), instance.address)))
            except InvalidArgument as exc:
                if instance.name not in self._skipped:
                    self._skipped.add(instance.name)
                    log.warning("registered venue %r not followed: %s", instance.name, exc)
        return links

    async def follow(self, stop: asyncio.Event, on_change: OnChange) -> None:
        """`on_change(venues)` now and after every refresh that changed them, until `stop`."""
        await on_change(self.venues)
        failing = False
        while not stop.is_set():
            try:
                changed = await self.refresh()
                failing = False
            except grpc.aio.AioRpcError as exc:
                if not failing:
                    log.warning(
                        "the gateway's registry at %s: %s (venues kept)", self.gateway, exc.code().name
                    )
                failing, changed = True, False
            if changed:
                await on_change(self.venues)
            if self.gateway is None:
                await stop.wait()
            await sleep_unless(stop, self.every_s)

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
            self._channel = None
