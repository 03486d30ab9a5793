"""The registry's state on a test clock: expiry, replicas of one name, replacement on one address,
and routing rules."""

from __future__ import annotations

import math

import pytest

from trademesh.core.platform.errors import AlreadyExists, FailedPrecondition, NotFound
from trademesh.gateway.registry.state import TICK_S, RegistryState
from trademesh.registry.v1 import registry_pb2 as pb

MD = "trademesh.marketdata.v1.MarketData"
HEALTH = "grpc.health.v1.Health"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def monotonic(self) -> float:
        return self.now

    def wall_ns(self) -> int:
        return int(self.now * 1e9)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def state(clock: Clock) -> RegistryState:
    found = RegistryState(ttl_s=10.0, monotonic=clock.monotonic, wall_ns=clock.wall_ns)
    found.configure(
        "gateway", pb.KIND_GATEWAY, "127.0.0.1:8082", ["trademesh.registry.v1.Registry", HEALTH], own=True
    )
    return found


def test_an_entry_without_heartbeats_drops_out_after_the_ttl(state: RegistryState, clock: Clock) -> None:
    entry = state.register("sim", pb.KIND_VENUE, "127.0.0.1:5070", [MD])
    clock.now += 9.9
    assert state.names(MD) == ["sim"]
    clock.now += 0.2
    assert state.names(MD) == []
    with pytest.raises(NotFound):
        state.heartbeat(entry.instance_id)


def test_a_heartbeat_extends_the_entry_by_a_full_ttl(state: RegistryState, clock: Clock) -> None:
    entry = state.register("sim", pb.KIND_VENUE, "127.0.0.1:5070", [MD])
    clock.now += 8
    renewed = state.heartbeat(entry.instance_id)
    assert renewed.last_heartbeat_ns > entry.last_heartbeat_ns
    clock.now += 8
    assert state.resolve(MD, None) == "127.0.0.1:5070"


def test_registering_a_name_and_address_again_replaces_the_old_instance(state: RegistryState) -> None:
    old = state.register("sim", pb.KIND_VENUE, "127.0.0.1:5070", [MD])
    new = state.register("sim", pb.KIND_VENUE, "127.0.0.1:5070", [MD])
    assert [e.instance_id for e in state.instances(service=MD)] == [new.instance_id]
    with pytest.raises(NotFound):
        state.heartbeat(old.instance_id)
    assert state.heartbeat(new.instance_id).address == "127.0.0.1:5070"


def test_replicas_of_one_name_are_each_an_entry_and_keep_their_heartbeats(
    state: RegistryState, clock: Clock
) -> None:
    first = state.register("recorder", pb.KIND_CORE, "10.0.0.1:8003", [MD])
    clock.now += 1
    second = state.register("recorder", pb.KIND_CORE, "10.0.0.2:8003", [MD])
    listed = state.instances(service=MD)
    assert [(e.name, e.address) for e in listed] == [
        ("recorder", "10.0.0.1:8003"),
        ("recorder", "10.0.0.2:8003"),
    ]
    assert state.names(MD) == ["recorder"]
    for _ in range(5):  # neither displaces the other
        clock.now += 5
        state.heartbeat(first.instance_id)
        state.heartbeat(second.instance_id)
    assert len(state.instances(service=MD)) == 2


def test_a_call_to_a_name_with_replicas_goes_to_its_newest_live_instance(
    state: RegistryState, clock: Clock
) -> None:
    old = state.register("recorder", pb.KIND_CORE, "10.0.0.1:8003", [MD])
    clock.now += 1
    state.register("recorder", pb.KIND_CORE, "10.0.0.2:8003", [MD])
    assert state.resolve(MD, None) == "10.0.0.2:8003"
    assert state.resolve(MD, "recorder") == "10.0.0.2:8003"
    clock.now += 8  # the newer one stops heartbeating; the older one goes on
    state.heartbeat(old.instance_id)
    clock.now += 3
    assert state.resolve(MD, "recorder") == "10.0.0.1:8003"
    assert [e.address for e in state.instances(service=MD)] == ["10.0.0.1:8003"]


def test_unregistering_one_replica_leaves_the_others(state: RegistryState) -> None:
    first = state.register("recorder", pb.KIND_CORE, "10.0.0.1:8003", [MD])
    state.register("recorder", pb.KIND_CORE, "10.0.0.2:8003", [MD])
    state.unregister(first.instance_id)
    assert [e.address for e in state.instances(service=MD)] == ["10.0.0.2:8003"]


def test_two_names_with_replicas_still_need_a_target(state: RegistryState) -> None:
    state.register("sim", pb.KIND_VENUE, "127.0.0.1:5070", [MD])
    state.register("sim", pb.KIND_VENUE, "127.0.0.1:5071", [MD])
    state.register("binance", pb.KIND_VENUE, "127.0.0.1:5060", [MD])
    with pytest.raises(FailedPrecondition, match=r"2 instances serve .* \(binance, sim\)"):
        state.resolve(MD, None)


def test_configured_entries_never_expire_and_keep_their_name(state: RegistryState, clock: Clock) -> None:
    clock.now += 1e6
    assert state.names(HEALTH) == ["gateway"]
    with pytest.raises(AlreadyExists):
        state.register("gateway", pb.KIND_CORE, "127.0.0.1:1", [])


def test_untargeted_calls_to_a_service_the_gateway_serves_go_to_the_gateway(state: RegistryState) -> None:
    state.register("sim", pb.KIND_VENUE, "127.0.0.1:5070", [MD, HEALTH])
    assert state.resolve(HEALTH, None) == "127.0.0.1:8082"
    assert state.resolve(HEALTH, "sim") == "127.0.0.1:5070"


def test_several_instances_without_a_target_name_the_header(state: RegistryState) -> None:
    state.register("sim", pb.KIND_VENUE, "127.0.0.1:5070", [MD])
    state.register("binance", pb.KIND_VENUE, "127.0.0.1:5060", [MD])
    with pytest.raises(
        FailedPrecondition, match=r"2 instances serve .* \(binance, sim\): .*x-trademesh-target"
    ):
        state.resolve(MD, None)
    assert state.resolve(MD, "binance") == "127.0.0.1:5060"
    with pytest.raises(NotFound, match="instances serving it: binance, sim"):
        state.resolve(MD, "kraken")


def test_instances_filter_by_kind_and_service(state: RegistryState) -> None:
    state.register("sim", pb.KIND_VENUE, "127.0.0.1:5070", [MD])
    state.register("bridge", pb.KIND_CORE, "127.0.0.1:5103", ["trademesh.livedata.v1.LiveData"])
    assert [e.name for e in state.instances()] == ["bridge", "gateway", "sim"]
    assert [e.name for e in state.instances(kind=pb.KIND_VENUE)] == ["sim"]
    assert [e.name for e in state.instances(service="trademesh.livedata.v1.LiveData")] == ["bridge"]


def ticking(state: RegistryState, clock: Clock, seconds: float) -> None:
    """`seconds` of a gateway that runs: a tick every TICK_S."""
    for _ in range(round(seconds / TICK_S)):
        clock.now += TICK_S
        state.tick()


def test_with_ticks_an_entry_without_heartbeats_still_drops_out_after_the_ttl(
    state: RegistryState, clock: Clock
) -> None:
    state.tick()
    state.register("sim", pb.KIND_VENUE, "127.0.0.1:5070", [MD])
    ticking(state, clock, 9.5)
    assert state.names(MD) == ["sim"]
    ticking(state, clock, 1.0)
    assert state.names(MD) == []


def test_a_pause_of_the_gateway_itself_is_not_its_instances_silence(
    state: RegistryState, clock: Clock
) -> None:
    state.tick()
    entry = state.register("sim", pb.KIND_VENUE, "127.0.0.1:5070", [MD])
    ticking(state, clock, 4.0)
    # The gateway stops for 20 s (twice the ttl): the instance's heartbeats wait in its queue.
    clock.now += 20.0
    # Served before the late tick runs: no more than a tick's time counted past the last tick.
    assert state.names(MD) == ["sim"]
    assert state.tick() == pytest.approx(20.0 - TICK_S)  # late by that: not counted
    assert state.names(MD) == ["sim"]
    state.heartbeat(entry.instance_id)  # the first that waited, answered
    ticking(state, clock, 9.5)
    assert state.names(MD) == ["sim"]
    ticking(state, clock, 1.0)  # silent for a ttl of the gateway's own running time: gone
    assert state.names(MD) == []


# The fuzz tests' registry (tests/integration/fuzz_mesh.py): a 4 s ttl, heartbeats every second.
FUZZ_TTL_S, FUZZ_HEARTBEAT_S = 4.0, 1.0


def test_a_stall_at_load_drops_none_of_the_instances_whose_heartbeats_wait_in_its_queue(
    clock: Clock,
) -> None:
    """The past run: the gateway's loop stalled 2.2 s at load 30, then turned slowly (its ticks
    1.4 s apart) while it caught up; the heartbeats queued meanwhile were answered at its third
    turn. Before, the stall and the slow turns counted as the instances' silence (up to 1.5 s a
    tick), and every instance was dropped at once: calls through the gateway found none."""
    state = RegistryState(ttl_s=FUZZ_TTL_S, monotonic=clock.monotonic, wall_ns=clock.wall_ns)
    state.tick()
    names = [f"venue-{n}" for n in range(6)]
    ids = [
        state.register(name, pb.KIND_VENUE, f"127.0.0.1:{5070 + n}", [MD]).instance_id
        for n, name in enumerate(names)
    ]
    for _ in range(5):  # a gateway that keeps time, answering every heartbeat
        ticking(state, clock, FUZZ_HEARTBEAT_S)
        for instance_id in ids:
            state.heartbeat(instance_id)
    ticking(state, clock, FUZZ_HEARTBEAT_S - TICK_S)  # the next heartbeats are due: the stall
    clock.now += 2.2
    assert state.tick() > 0
    for _ in range(2):  # the loop at load, catching up
        clock.now += 1.4
        state.tick()
        assert state.names(MD) == sorted(names)
    for instance_id in ids:  # the heartbeats that waited in its queue, answered
        state.heartbeat(instance_id)
    ticking(state, clock, FUZZ_TTL_S - TICK_S)
    assert state.names(MD) == sorted(names)
    assert state.lost() == []


def test_an_instance_that_stopped_is_dropped_within_the_ttl_and_a_tick(
    state: RegistryState, clock: Clock
) -> None:
    state.tick()
    entry = state.register("sim", pb.KIND_VENUE, "127.0.0.1:5070", [MD])
    ticking(state, clock, 2.0)
    state.heartbeat(entry.instance_id)  # its last
    ticking(state, clock, 10.0 - TICK_S)
    assert state.names(MD) == ["sim"]
    ticking(state, clock, TICK_S)
    assert state.names(MD) == []
    assert [lost.instance_id for lost in state.lost()] == [entry.instance_id]


def test_on_a_loop_that_stalls_at_every_tick_a_stopped_instance_is_still_dropped_within_its_ticks(
    state: RegistryState, clock: Clock
) -> None:
    """However late the ticks come, an instance silent for ceil(ttl / TICK_S) + 2 of them is gone
    (the bound in the module docstring): a gateway that runs at all drops the dead."""
    state.tick()
    entry = state.register("sim", pb.KIND_VENUE, "127.0.0.1:5070", [MD])
    clock.now += 0.3
    state.heartbeat(entry.instance_id)  # its last, between two ticks
    ticks = 0
    while state.names(MD) and ticks < 100:
        clock.now += TICK_S + 3.0  # every tick 3 s late: a gateway at a crawl
        state.tick()
        ticks += 1
    assert state.names(MD) == []
    assert ticks <= math.ceil(10.0 / TICK_S) + 2
    assert [lost.instance_id for lost in state.lost()] == [entry.instance_id]


def test_a_late_tick_counts_no_more_than_a_tick(state: RegistryState, clock: Clock) -> None:
    state.tick()
    state.register("sim", pb.KIND_VENUE, "127.0.0.1:5070", [MD])
    clock.now += 1.4  # a loop at load: late by 0.9 s
    assert state.tick() == pytest.approx(0.9)
    ticking(state, clock, 9.0)
    assert state.names(MD) == ["sim"]
    ticking(state, clock, 0.5)
    assert state.names(MD) == []
