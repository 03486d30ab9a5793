"""Lost instances in the registry's state on a test clock (issue 56 item 8): an instance whose
heartbeats stop without an unregistration stays a Prometheus target labelled lost (scraped down:
TargetDown) and is counted, until it registers again, a replacement of its name registers, an
operator unregisters it, or the lost time passes; a graceful unregistration is never lost; gateway
replicas sharing the registry agree."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from trademesh.core.platform.errors import NotFound
from trademesh.gateway.registry.state import RegistryState
from trademesh.gateway.registry.targets import target_groups
from trademesh.registry.v1 import registry_pb2 as pb

MD = "trademesh.marketdata.v1.MarketData"
TTL_S = 10.0
LOST_S = 3600.0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    def wall_ns(self) -> int:
        return int(self.now * 1e9)


@pytest.fixture
def clock() -> Clock:
    return Clock()


def new_state(clock: Clock) -> RegistryState:
    return RegistryState(TTL_S, monotonic=clock.monotonic, wall_ns=clock.wall_ns, lost_s=LOST_S)


@pytest.fixture
def state(clock: Clock) -> RegistryState:
    return new_state(clock)


def lost_count(name: str) -> float | None:
    return REGISTRY.get_sample_value("trademesh_registry_lost_instances", {"name": name})


def sim(state: RegistryState, address: str = "10.0.0.7:5070", name: str = "sim-lost") -> str:
    return state.register(name, pb.KIND_VENUE, address, [MD], metrics_port=9070).instance_id


def test_an_instance_silent_past_the_ttl_is_lost_a_target_labelled_lost_and_counted(
    state: RegistryState, clock: Clock
) -> None:
    instance_id = sim(state)
    clock.now += TTL_S + 0.1
    state.tick()
    assert state.instances() == []  # not listed, not routed to
    with pytest.raises(NotFound):
        state.resolve(MD, "sim-lost")
    assert [(e.instance_id, e.lost) for e in state.lost()] == [(instance_id, True)]
    groups = target_groups([*state.instances(), *state.lost()])
    assert groups == [
        {
            "targets": ["10.0.0.7:9070"],
            "labels": {
                "service": "sim-lost",
                "kind": "venue",
                "instance_id": instance_id,
                "venue": "sim-lost",
                "lost": "true",
            },
        }
    ]
    assert lost_count("sim-lost") == 1


def test_a_live_instance_is_no_lost_target(state: RegistryState) -> None:
    sim(state, name="sim-live")
    assert "lost" not in target_groups(state.instances())[0]["labels"]
    assert state.lost() == []
    assert lost_count("sim-live") is None


def test_a_graceful_unregistration_is_never_lost(state: RegistryState, clock: Clock) -> None:
    state.unregister(sim(state, name="sim-stopped"))
    clock.now += TTL_S + 1
    state.tick()
    assert state.lost() == []
    assert lost_count("sim-stopped") is None


def test_unregistering_a_lost_instance_drains_it(state: RegistryState, clock: Clock) -> None:
    instance_id = sim(state, name="sim-drained")
    clock.now += TTL_S + 1
    state.tick()
    assert lost_count("sim-drained") == 1
    assert state.unregister(instance_id).name == "sim-drained"
    assert state.lost() == []
    assert lost_count("sim-drained") is None
    with pytest.raises(NotFound):
        state.unregister(instance_id)


def test_the_instance_back_at_its_address_ends_its_loss(state: RegistryState, clock: Clock) -> None:
    sim(state, name="sim-back")
    clock.now += TTL_S + 1
    state.tick()
    again = sim(state, name="sim-back")
    assert state.lost() == []
    assert [e.instance_id for e in state.instances()] == [again]
    assert lost_count("sim-back") is None


def test_a_replacement_of_its_name_elsewhere_ends_one_loss_a_replica_from_before_none(
    state: RegistryState, clock: Clock
) -> None:
    sim(state, "10.0.0.1:8003", name="recorder-x")
    sim(state, "10.0.0.2:8003", name="recorder-x")
    clock.now += 5
    survivor = sim(state, "10.0.0.3:8003", name="recorder-x")
    clock.now += TTL_S - 4  # the first two silent past the ttl, the third heard from 6 s ago
    state.heartbeat(survivor)
    state.tick()
    assert len(state.lost()) == 2 and lost_count("recorder-x") == 2
    clock.now += 1
    sim(state, "10.0.0.4:8003", name="recorder-x")  # a replacement (a new pod's address)
    assert [e.address for e in state.lost()] == ["10.0.0.2:8003"]
    assert lost_count("recorder-x") == 1


def test_a_lost_instance_is_forgotten_after_the_lost_time(state: RegistryState, clock: Clock) -> None:
    sim(state, name="sim-old")
    clock.now += TTL_S + 1
    state.tick()
    clock.now += LOST_S - 1
    state.tick()
    assert len(state.lost()) == 1
    clock.now += 2
    state.tick()
    assert state.lost() == []
    assert lost_count("sim-old") is None


def test_gateway_replicas_both_keep_it_lost_and_a_drain_at_one_reaches_the_other(clock: Clock) -> None:
    first, second = new_state(clock), new_state(clock)
    instance_id = sim(first, name="sim-shared")
    registered = first.instances()[0].to_proto()
    second.merge([registered])  # learnt through the bus
    clock.now += TTL_S + 1
    for state in (first, second):
        state.tick()
        assert [e.instance_id for e in state.lost()] == [instance_id]
    first.unregister(instance_id)  # the servicer writes a tombstone (SharedRegistry.removed)
    tombstone = pb.Instance(instance_id=instance_id, last_heartbeat_ns=clock.wall_ns())
    assert second.merge([tombstone]) == []
    assert second.lost() == []
    assert lost_count("sim-shared") is None


def test_a_lost_instance_heard_at_another_replica_is_live_again(clock: Clock) -> None:
    state = new_state(clock)
    instance_id = sim(state, name="sim-heard")
    entry = state.instances()[0].to_proto()
    clock.now += TTL_S + 1
    state.tick()
    assert len(state.lost()) == 1
    entry.last_heartbeat_ns = clock.wall_ns()  # its heartbeat answered by the other replica
    state.merge([entry])
    assert state.lost() == []
    assert [e.instance_id for e in state.instances()] == [instance_id]
    assert lost_count("sim-heard") is None
