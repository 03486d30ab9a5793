"""The registry's state: live instances (several may share a name), expiring when their
heartbeats stop.

It lives in the gateway's memory; with a bus, replicas of the gateway share their registered
entries through it (trademesh.gateway.registry.shared), so each lists, routes and renews them all. A
restarted gateway starts empty and refills from the bus, or as each instance's next heartbeat is
answered NOT_FOUND and the instance registers again.

An instance drops out when the gateway has not heard it within the ttl, by the gateway's own
clock. One that never unregistered is not forgotten then: it is kept as lost (`lost()`), out of
the listing and the routing but still a Prometheus target (down: TargetDown fires) and counted in
trademesh_registry_lost_instances, until an instance of its name registers after it fell silent
(it came back, or a replacement came), an operator unregisters it (drains it from the registry),
or `lost_s` passed (24 h by default). A graceful stop unregisters: gone at once, never lost.

The ttl runs on the gateway's own running time, not the wall's: an instance drops out once the
gateway has itself been running for the ttl since it last saw a heartbeat of it. A stall of the
gateway (its loop blocked or busy, its process stopped or starved of CPU) is not its instances'
silence: their heartbeats wait in its own queue meanwhile. The rule: the gateway ticks (`tick`,
every TICK_S), and each tick adds to its running time the time since the one before, but at most
TICK_S; whatever a tick comes later than that, the gateway was not running on time, and it does
not count (between ticks likewise: at most TICK_S past the last). So a stall of any length costs
an instance at most TICK_S of its ttl, and none is dropped before the gateway's loop has turned
ttl / TICK_S times without hearing it, by when its queued heartbeat has long been answered.
(Before, each tick counted up to 1.5 s of a stall: a 2.2 s stall of the gateway's at load 30,
under the tests' 4 s ttl, dropped every instance at once and calls through it found none.)

The bound kept: an instance that stopped renewing is dropped (lost: out of the listing and the
routing) within ttl + TICK_S of its last heartbeat on a gateway that keeps time, later by exactly
the time the gateway's ticks came late meanwhile; however late they come, by the
(ceil(ttl / TICK_S) + 2)th tick after that heartbeat.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from prometheus_client import Gauge

from trademesh.core.platform.access.contracts import TARGET_HEADER
from trademesh.core.platform.errors import AlreadyExists, FailedPrecondition, NotFound
from trademesh.gateway.config import LOST_S
from trademesh.registry.v1 import registry_pb2 as pb

__all__ = ["LOST", "LOST_S", "TICK_S", "Entry", "RegistryState"]

log = logging.getLogger(__name__)

# How often the gateway ticks (tick): the most running time a tick counts (module docstring).
TICK_S = 0.5
# A tick later than this is logged: the gateway did not run for that long.
_STALL_LOGGED_S = 1.0

LOST = Gauge(
    "trademesh_registry_lost_instances",
    "Instances of a name whose heartbeats stopped without an unregistration (crashed, killed, cut "
    "off), kept until one of the name registers again, an operator unregisters them, or a day passed.",
    ["name"],
)


@dataclass(frozen=True)
class Entry:
    name: str
    kind: pb.Kind.ValueType
    address: str
    services: tuple[str, ...]
    instance_id: str
    registered_at_ns: int
    last_heartbeat_ns: int
    # The gateway's running time (RegistryState.running_s) after which the entry is gone; None
    # for configured entries.
    expires_at: float | None
    # Its Prometheus exporter's port (0: none), on metrics_host, else on the host of `address`.
    metrics_port: int = 0
    # Set where Prometheus reaches it elsewhere than `address` (the gateway's own entry, whose
    # address is the loopback it dials itself at).
    metrics_host: str | None = None
    # The trademesh release it runs ("" when it did not say).
    version: str = ""
    # A paper venue (registry.v1.Instance.paper).
    paper: bool = False
    # Its heartbeats stopped without an unregistration (RegistryState.lost); `expires_at` is
    # then the monotonic time it is forgotten at (its silence established, lost_s is the wall's).
    lost: bool = False

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
            metrics_port=self.metrics_port,
            version=self.version,
            paper=self.paper,
        )

    @classmethod
    def shared(cls, instance: pb.Instance, expires_at: float) -> Entry:
        """An entry another replica of the gateway registered, as the bus holds it."""
        return cls(
            instance.name,
            instance.kind,
            instance.address,
            tuple(instance.services),
            instance.instance_id,
            instance.registered_at_ns,
            instance.last_heartbeat_ns,
            expires_at,
            instance.metrics_port,
            version=instance.version,
            paper=instance.paper,
        )


class RegistryState:
    """Implements trademesh.core.platform.access.contracts.Resolver over the live entries.

    Entries are keyed by instance_id: several live instances may share a name (the replicas of
    one service), each its own entry with its own heartbeats. A registration under the same name
    and address as a live entry replaces it (a restart on its port)."""

    def __init__(
        self,
        ttl_s: float,
        monotonic: Callable[[], float] = time.monotonic,
        wall_ns: Callable[[], int] = time.time_ns,
        lost_s: float = LOST_S,
    ) -> None:
        self.ttl_s = ttl_s
        self.lost_s = lost_s
        self._monotonic = monotonic
        self._wall_ns = wall_ns
        # The last tick's monotonic time; None until the first (no ticks: no stalls seen).
        self._ticked: float | None = None
        # The monotonic time the gateway's ticks came late by, all told: not its running time.
        self._stalled_s = 0.0
        self._by_id: dict[str, Entry] = {}
        # Instances gone silent without unregistering, by instance id (module docstring), and
        # the names this state counts in LOST.
        self._lost: dict[str, Entry] = {}
        self._lost_names: set[str] = set()
        # The gateway's own entry: untargeted calls to a service it serves go to it.
        self._own: str | None = None
        # The other replicas of the gateway (trademesh.gateway.registry.shared): listed, never routed to.
        self._peers: dict[str, Entry] = {}

    def is_own(self, entry: Entry) -> bool:
        """Whether `entry` is the gateway's own (configured with own=True)."""
        return entry.configured and entry.name == self._own

    def own_entry(self) -> Entry | None:
        """The gateway's own entry (configured with own=True), if any."""
        return next((entry for entry in self._by_id.values() if self.is_own(entry)), None)

    def merge_peers(self, peers: Sequence[pb.Instance]) -> None:
        """The other replicas of the gateway as the bus holds them (each writes its own entry at
        every merge): the ones heard from within the ttl are listed beside the registered
        instances (ListServices, the Prometheus targets, the services board), never resolved to:
        a call to the gateway's own services is answered where it arrives."""
        own = self.own_entry()
        wall_ns, now = self._wall_ns(), self.running_s()
        fresh = {}
        for instance in peers:
            left_s = (instance.last_heartbeat_ns - wall_ns) / 1e9 + self.ttl_s
            if left_s > 0 and instance.name and (own is None or instance.instance_id != own.instance_id):
                fresh[instance.instance_id] = Entry.shared(instance, now + left_s)
        self._peers = fresh

    def occupants(self, name: str, address: str) -> list[str]:
        """The instance ids a registration of `name` at `address` replaces."""
        return [entry.instance_id for entry in self._named(name) if entry.address == address]

    def register(
        self,
        name: str,
        kind: pb.Kind.ValueType,
        address: str,
        services: Sequence[str],
        metrics_port: int = 0,
        version: str = "",
        *,
        paper: bool = False,
    ) -> Entry:
        """Adds the instance beside the others of its name; one of the same name and address is
        replaced (a restart on its port)."""
        same = self._named(name)
        if any(entry.configured for entry in same):
            raise AlreadyExists(f"name {name!r} is configured at the gateway itself: register under another")
        for old in same:
            if old.address == address:
                del self._by_id[old.instance_id]
        now = self._wall_ns()
        self._found_again(name, address, now)
        expires_at = self.running_s() + self.ttl_s
        entry = Entry(
            name, kind, address, tuple(services), uuid.uuid4().hex, now, now, expires_at, metrics_port,
            version=version, paper=paper,
        )  # fmt: skip
        self._by_id[entry.instance_id] = entry
        live = len(self._named(name))
        log.info(
            "registered %s (%s) at %s: %s (%d live instance%s of %s)",
            name, pb.Kind.Name(kind), address, ", ".join(services), live, "" if live == 1 else "s", name,
        )  # fmt: skip
        return entry

    def configure(
        self,
        name: str,
        kind: pb.Kind.ValueType,
        address: str,
        services: Sequence[str],
        own: bool = False,
        metrics: tuple[str, int] | None = None,
        version: str = "",
    ) -> Entry:
        """A fixed entry (the gateway itself, --upstream routes): no heartbeats, never expires; it
        replaces every entry of its name. `metrics`: (host, port) of its Prometheus exporter."""
        for old in self._named(name):
            del self._by_id[old.instance_id]
        now = self._wall_ns()
        host, port = metrics if metrics is not None else (None, 0)
        entry = Entry(
            name, kind, address, tuple(services), uuid.uuid4().hex, now, now, None, port, host, version
        )
        self._by_id[entry.instance_id] = entry
        if own:
            self._own = name
        return entry

    def heartbeat(self, instance_id: str) -> Entry:
        entry = self._find(instance_id)
        renewed = replace(entry, last_heartbeat_ns=self._wall_ns(), expires_at=self.running_s() + self.ttl_s)
        self._by_id[instance_id] = renewed
        return renewed

    def unregister(self, instance_id: str) -> Entry:
        """Gone at once: a live instance stopping, or a lost one an operator drains (forgets)."""
        lost = self._lost.pop(instance_id, None)
        if lost is not None:
            self._count_lost()
            log.info("forgot lost instance %s at %s (%s)", lost.name, lost.address, instance_id)
            return lost
        entry = self._find(instance_id)
        del self._by_id[instance_id]
        log.info("unregistered %s at %s", entry.name, entry.address)
        return entry

    def lost(self) -> list[Entry]:
        """The lost instances (module docstring), sorted by name then registration."""
        self._expire()
        return sorted(self._lost.values(), key=lambda e: (e.name, e.registered_at_ns))

    def _found_again(self, name: str, address: str, registered_ns: int) -> None:
        """An instance of `name` registered at `registered_ns`: the lost one at its address is
        back; else it replaces the longest lost of its name that fell silent before it came."""
        before = [e for e in self._lost.values() if e.name == name and e.last_heartbeat_ns < registered_ns]
        if not before:
            return
        same = [e for e in before if e.address == address]
        back = same[0] if same else min(before, key=lambda e: e.last_heartbeat_ns)
        del self._lost[back.instance_id]
        self._count_lost()
        log.info("lost instance %s at %s replaced by a registration at %s", name, back.address, address)

    def merge(self, shared: Sequence[pb.Instance]) -> list[Entry]:
        """Takes in the entries the bus holds (every replica's registrations): a new one, or a
        later heartbeat of one known, is taken; one the bus marks gone (a nameless instance:
        unregistered or replaced at another replica) is dropped. Returns the live entries the
        bus lacks (it restarted empty, or a write to it failed): to be written again."""
        wall_ns, now = self._wall_ns(), self.running_s()
        held = {instance.instance_id for instance in shared}
        for instance in shared:
            known = self._by_id.get(instance.instance_id) or self._lost.get(instance.instance_id)
            if not instance.name:
                if known is not None and not known.configured:
                    self._left(known)
                continue
            left_s = (instance.last_heartbeat_ns - wall_ns) / 1e9 + self.ttl_s
            if left_s <= 0 or (known is not None and known.last_heartbeat_ns >= instance.last_heartbeat_ns):
                continue
            if known is None:
                log.info("learnt %s at %s from another gateway", instance.name, instance.address)
                self._found_again(instance.name, instance.address, instance.registered_at_ns)
            elif self._lost.pop(instance.instance_id, None) is not None:  # heard at another gateway
                self._count_lost()
            self._by_id[instance.instance_id] = Entry.shared(instance, now + left_s)
        self._expire()
        self._one_per_place()
        return [e for e in self._by_id.values() if not e.configured and e.instance_id not in held]

    def _left(self, known: Entry) -> None:
        """An unregistration (a stop, or a lost instance drained) answered at another gateway."""
        self._by_id.pop(known.instance_id, None)
        if self._lost.pop(known.instance_id, None) is not None:
            self._count_lost()
        log.info("%s at %s left (at another gateway)", known.name, known.address)

    def _one_per_place(self) -> None:
        """Of the entries of one name at one address (an instance registered again at another
        replica before this one learnt its first entry), the newest registration stays."""
        newest: dict[tuple[str, str], Entry] = {}
        for entry in sorted(self._by_id.values(), key=lambda e: e.registered_at_ns):
            if entry.configured:
                continue
            older = newest.get((entry.name, entry.address))
            if older is not None:
                del self._by_id[older.instance_id]
            newest[(entry.name, entry.address)] = entry

    def instances(self, kind: pb.Kind.ValueType = pb.KIND_UNSPECIFIED, service: str = "") -> list[Entry]:
        """The live entries and the other gateway replicas, sorted by name then registration
        (oldest first), optionally of one kind and serving one service."""
        peers = [peer for peer in self._peers.values() if self._alive(peer)]
        return self._live(kind, service, peers)

    def _live(self, kind: pb.Kind.ValueType, service: str, peers: Sequence[Entry] = ()) -> list[Entry]:
        self._expire()
        return [
            entry
            for entry in sorted([*self._by_id.values(), *peers], key=lambda e: (e.name, e.registered_at_ns))
            if (kind == pb.KIND_UNSPECIFIED or entry.kind == kind)
            and (not service or service in entry.services)
        ]

    def names(self, service: str) -> list[str]:
        """The names of the live instances serving `service`, each once."""
        return list(dict.fromkeys(entry.name for entry in self.instances(service=service)))

    def resolve(self, service: str, target: str | None) -> str:
        """The address of the instance a call goes to: of the name targeted (or the only name
        serving `service`), its newest live instance."""
        serving = self._live(pb.KIND_UNSPECIFIED, service)  # no other gateway replica
        if target is not None:
            return _targeted(serving, service, target)
        if not serving:
            raise NotFound(f"no live instance serves {service} (is it running, registered with the gateway?)")
        names = list(dict.fromkeys(entry.name for entry in serving))
        if self._own is not None and self._own in names:
            return _newest(serving, self._own)
        if len(names) > 1:
            raise FailedPrecondition(
                f"{len(names)} instances serve {service} ({', '.join(names)}): "
                f"name one with the header `{TARGET_HEADER}: <name>`"
            )
        return _newest(serving, names[0])

    def _named(self, name: str) -> list[Entry]:
        self._expire()
        return [entry for entry in self._by_id.values() if entry.name == name]

    def _find(self, instance_id: str) -> Entry:
        self._expire()
        entry = self._by_id.get(instance_id)
        if entry is None or entry.configured:
            raise NotFound(
                f"instance_id {instance_id!r} is not registered (expired or the gateway restarted)"
            )
        return entry

    def tick(self) -> float:
        """The gateway's tick, every TICK_S: its running time moves on by the time since the last
        tick, at most TICK_S (module docstring). Returns the time the tick came late by: not
        counted (0: on time)."""
        now = self._monotonic()
        stalled = 0.0 if self._ticked is None else max(0.0, now - self._ticked - TICK_S)
        self._stalled_s += stalled
        self._ticked = now
        if stalled > _STALL_LOGGED_S:
            log.warning("the gateway did not run for %.1f s: its instances are given that time", stalled)
        self._expire()  # a lost instance counted within a tick, listed or not
        return stalled

    def running_s(self) -> float:
        """The gateway's own running time, which the ttl runs on: monotonic time less what its
        ticks came late by, and until the next tick at most TICK_S past the last."""
        now = self._monotonic()
        if self._ticked is not None:
            now = min(now, self._ticked + TICK_S)
        return now - self._stalled_s

    def _alive(self, entry: Entry) -> bool:
        return entry.expires_at is None or entry.expires_at > self.running_s()

    def _expire(self) -> None:
        now, changed = self._monotonic(), False
        for instance_id, entry in list(self._by_id.items()):
            if not self._alive(entry):
                del self._by_id[instance_id]
                self._lost[instance_id] = replace(entry, lost=True, expires_at=now + self.lost_s)
                changed = True
                log.warning(
                    "instance %s at %s (%s) lost: no heartbeat for %.1f s and no unregistration; "
                    "kept as a target (down) until it registers again or is unregistered",
                    entry.name, entry.address, instance_id, self.ttl_s,
                )  # fmt: skip
        for instance_id, entry in list(self._lost.items()):
            if entry.expires_at is not None and entry.expires_at <= now:
                del self._lost[instance_id]
                changed = True
                log.info("lost %s at %s forgotten after %.0f s", entry.name, entry.address, self.lost_s)
        if changed:
            self._count_lost()

    def _count_lost(self) -> None:
        """trademesh_registry_lost_instances by name: a name with none left is removed."""
        counts: dict[str, int] = {}
        for entry in self._lost.values():
            counts[entry.name] = counts.get(entry.name, 0) + 1
        for name in self._lost_names - counts.keys():
            LOST.remove(name)
        for name, count in counts.items():
            LOST.labels(name).set(count)
        self._lost_names = set(counts)


def _newest(serving: list[Entry], name: str) -> str:
    """The address of the newest live instance named `name` (serving is sorted oldest first)."""
    return [entry for entry in serving if entry.name == name][-1].address


def _targeted(serving: list[Entry], service: str, target: str) -> str:
    if any(entry.name == target for entry in serving):
        return _newest(serving, target)
    names = ", ".join(dict.fromkeys(entry.name for entry in serving)) or "none"
    raise NotFound(f"no live instance named {target!r} serves {service} (instances serving it: {names})")
