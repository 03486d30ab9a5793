"""Where the mesh's services are, for a process outside the gateway that calls the tools (the
advisor): the gateway's app registry (ListServices, refreshed in the background), plus
instances given on the command line (`--venue sim=HOST:PORT`), which win over the registry's.

It answers as the gateway's own registry does
(trademesh.core.platform.access.contracts.Resolver): `names(service)` lists the names of the
live instances serving a service, `resolve(service, target)` gives an address, or NotFound /
FailedPrecondition (several names serve it and none is named). A name may have several live
instances in the registry (replicas): a call goes to the newest registered, as the gateway
routes it (docs/services.md).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import grpc

from trademesh.core.platform.aio.retry import sleep_unless
from trademesh.core.platform.errors import FailedPrecondition, NotFound
from trademesh.core.platform.rpc.client import auth_metadata
from trademesh.registry.v1 import registry_pb2 as reg
from trademesh.registry.v1 import registry_pb2_grpc as reg_grpc

__all__ = ["VENUE_SERVICES", "Instance", "MeshResolver"]

log = logging.getLogger(__name__)

# What every venue process serves (an instance given by --venue serves these).
VENUE_SERVICES = (
    "trademesh.marketdata.v1.MarketData",
    "trademesh.tradeflow.v1.TradeFlow",
    "trademesh.admin.v1.Admin",
)
_CALL_TIMEOUT_S = 3.0


@dataclass(frozen=True)
class Instance:
    name: str
    address: str
    services: tuple[str, ...]
    registered_at_ns: int = 0


class MeshResolver:
    def __init__(self, gateway: str | None, given: Sequence[Instance] = ()) -> None:
        self.gateway = gateway  # the registry's gRPC address; None: only the instances given
        self._given = {i.name: i for i in given}
        self._registered: list[Instance] = []
        self._channel: grpc.aio.Channel | None = None

    def names(self, service: str) -> list[str]:
        return sorted({i.name for i in self._instances() if service in i.services})

    def resolve(self, service: str, target: str | None) -> str:
        serving = [i for i in self._instances() if service in i.services]
        names = sorted({i.name for i in serving})
        if target is not None:
            if target in names:
                return _newest(serving, target)
            shown = ", ".join(names) or "none"
            raise NotFound(f"no live instance named {target!r} serves {service} (serving it: {shown})")
        if not serving:
            raise NotFound(f"no live instance serves {service} (is it running, registered with the gateway?)")
        if len(names) > 1:
            raise FailedPrecondition(f"{len(names)} instances serve {service} ({', '.join(names)}): name one")
        return _newest(serving, names[0])

    def instances(self) -> list[Instance]:
        """Every live instance known now (given, then the registry's)."""
        return self._instances()

    def _instances(self) -> list[Instance]:
        """The instances given, and the registry's of the names not given (every replica)."""
        return [*self._given.values(), *(i for i in self._registered if i.name not in self._given)]

    async def refresh(self) -> None:
        """The registry's live instances now; raises grpc's error when it does not answer."""
        if self.gateway is None:
            return
        if self._channel is None:
            self._channel = grpc.aio.insecure_channel(self.gateway)
        stub = reg_grpc.RegistryStub(self._channel)
        answer = await stub.ListServices(
            reg.ListServicesRequest(), metadata=auth_metadata(), timeout=_CALL_TIMEOUT_S
        )
        self._registered = [
            Instance(i.name, i.address, tuple(i.services), i.registered_at_ns) for i in answer.instances
        ]

    async def follow(self, stop: asyncio.Event, every_s: float = 2.0) -> None:
        """Refresh every `every_s` until `stop`; a registry away keeps the last view (logged once)."""
        failing = False
        while not stop.is_set():
            try:
                await self.refresh()
                failing = False
            except grpc.aio.AioRpcError as exc:
                if not failing:
                    log.warning("the gateway's registry at %s: %s", self.gateway, exc.code().name)
                failing = True
            await sleep_unless(stop, every_s)

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
            self._channel = None


def _newest(serving: list[Instance], name: str) -> str:
    """The address of the newest registered instance named `name`."""
    return max((i for i in serving if i.name == name), key=lambda i: i.registered_at_ns).address
