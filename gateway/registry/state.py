"""The registry's state: live instances by name, expiring when their heartbeats stop.

It lives in the gateway's memory only. A restarted gateway starts empty and refills as each
instance's next heartbeat is answered NOT_FOUND and the instance registers again.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from core.foundations.access.contracts import TARGET_HEADER
from core.foundations.errors import AlreadyExists, FailedPrecondition, NotFound
from trademesh.registry.v1 import registry_pb2 as pb

__all__ = ["Entry", "RegistryState"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Entry:
    name: str
    kind: pb.Kind.ValueType
    address: str
    services: tuple[str, ...]
    instance_id: str
    registered_at_ns: int
    last_heartbeat_ns: int
    # Monotonic time after which the entry is gone; None for configured entries.
    expires_at: float | None

    @property
    def configured(self) -> bool:
        return self.expires_at is None

    def to_proto(self) -> pb.Instance:
        return pb.Instance(
            name=self.name,
            kind=self.kind,
            address=self.address,
            services=list(self.services),
            instance_id=self.instance_id,
            registered_at_ns=self.registered_at_ns,
            last_heartbeat_ns=self.last_heartbeat_ns,
            configured=self.configured,
        )


class RegistryState:
    """Implements core.foundations.access.contracts.Resolver over the live entries."""

    def __init__(
        self,
        ttl_s: float,
        monotonic: Callable[[], float] = time.monotonic,
        wall_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.ttl_s = ttl_s
        self._monotonic = monotonic
        self._wall_ns = wall_ns
        self._by_name: dict[str, Entry] = {}
        # The gateway's own entry: untargeted calls to a service it serves go to it.
        self._own: str | None = None

    def register(self, name: str, kind: pb.Kind.ValueType, address: str, services: Sequence[str]) -> Entry:
        """Adds the instance; one of the same name is replaced (the newest registration wins)."""
        old = self._by_name.get(name)
        if old is not None and old.configured:
            raise AlreadyExists(f"name {name!r} is configured at the gateway itself: register under another")
        if old is not None and old.address != address and self._alive(old):
            log.warning("instance %s moved from %s to %s", name, old.address, address)
        now = self._wall_ns()
        entry = Entry(
            name, kind, address, tuple(services), uuid.uuid4().hex, now, now, self._monotonic() + self.ttl_s
        )
        self._by_name[name] = entry
        log.info("registered %s (%s) at %s: %s", name, pb.Kind.Name(kind), address, ", ".join(services))
        return entry

    def configure(
        self, name: str, kind: pb.Kind.ValueType, address: str, services: Sequence[str], own: bool = False
    ) -> Entry:
        """A fixed entry (the gateway itself, --upstream routes): no heartbeats, never expires."""
        now = self._wall_ns()
        entry = Entry(name, kind, address, tuple(services), uuid.uuid4().hex, now, now, None)
        self._by_name[name] = entry
        if own:
            self._own = name
        return entry

    def heartbeat(self, instance_id: str) -> Entry:
        entry = self._find(instance_id)
        renewed = replace(entry, last_heartbeat_ns=self._wall_ns(), expires_at=self._monotonic() + self.ttl_s)
        self._by_name[entry.name] = renewed
        return renewed

    def unregister(self, instance_id: str) -> Entry:
        entry = self._find(instance_id)
        del self._by_name[entry.name]
        log.info("unregistered %s at %s", entry.name, entry.address)
        return entry

    def instances(self, kind: pb.Kind.ValueType = pb.KIND_UNSPECIFIED, service: str = "") -> list[Entry]:
        """The live entries, sorted by name, optionally of one kind and serving one service."""
        self._expire()
        return [
            entry
            for name, entry in sorted(self._by_name.items())
            if (kind == pb.KIND_UNSPECIFIED or entry.kind == kind)
            and (not service or service in entry.services)
        ]

    def names(self, service: str) -> list[str]:
        return [entry.name for entry in self.instances(service=service)]

    def resolve(self, service: str, target: str | None) -> str:
        serving = self.instances(service=service)
        if target is not None:
            return _targeted(serving, service, target)
        if not serving:
            raise NotFound(f"no live instance serves {service} (is it running, registered with the gateway?)")
        own = [entry for entry in serving if entry.name == self._own]
        if own:
            return own[0].address
        if len(serving) > 1:
            names = ", ".join(entry.name for entry in serving)
            raise FailedPrecondition(
                f"{len(serving)} instances serve {service} ({names}): "
                f"name one with the header `{TARGET_HEADER}: <name>`"
            )
        return serving[0].address

    def _find(self, instance_id: str) -> Entry:
        self._expire()
        for entry in self._by_name.values():
            if entry.instance_id == instance_id and not entry.configured:
                return entry
        raise NotFound(f"instance_id {instance_id!r} is not registered (expired or the gateway restarted)")

    def _alive(self, entry: Entry) -> bool:
        return entry.expires_at is None or entry.expires_at > self._monotonic()

    def _expire(self) -> None:
        for name, entry in list(self._by_name.items()):
            if not self._alive(entry):
                del self._by_name[name]
                log.warning(
                    "instance %s at %s dropped out: no heartbeat for %.1f s", name, entry.address, self.ttl_s
                )


def _targeted(serving: list[Entry], service: str, target: str) -> str:
    for entry in serving:
        if entry.name == target:
            return entry.address
    names = ", ".join(entry.name for entry in serving) or "none"
    raise NotFound(f"no live instance named {target!r} serves {service} (instances serving it: {names})")
