"""The registry's instances as Prometheus http_sd target groups, and the metrics port a
registration carries and the registry checks."""

from __future__ import annotations

import pytest

from trademesh.core.platform.errors import InvalidArgument
from trademesh.core.platform.rpc.registration import Registration
from trademesh.gateway.registry.state import Entry, RegistryState
from trademesh.gateway.registry.targets import target_groups
from trademesh.gateway.registry.validate import check_register
from trademesh.registry.v1 import registry_pb2 as pb

HEALTH = "grpc.health.v1.Health"


@pytest.fixture
def state() -> RegistryState:
    found = RegistryState(ttl_s=10.0)
    # The gateway dials itself at the loopback; Prometheus reaches it by its advertised host.
    found.configure(
        "gateway", pb.KIND_GATEWAY, "127.0.0.1:8082", [HEALTH], own=True, metrics=("gateway", 8081)
    )
    return found


def test_each_instance_with_a_metrics_port_is_one_group_on_its_host_with_its_labels(
    state: RegistryState,
) -> None:
    sim = state.register("sim", pb.KIND_VENUE, "venue-sim:5070", [HEALTH], metrics_port=9070)
    ingest = state.register("ingest", pb.KIND_CORE, "[fd00::7]:5100", [HEALTH], metrics_port=9100)
    gateway = state.instances(pb.KIND_GATEWAY)[0]
    groups = target_groups(state.instances())
    assert groups == [
        {
            "targets": ["gateway:8081"],
            "labels": {"service": "gateway", "kind": "gateway", "instance_id": gateway.instance_id},
        },
        {
            "targets": ["[fd00::7]:9100"],
            "labels": {"service": "ingest", "kind": "core", "instance_id": ingest.instance_id},
        },
        {
            "targets": ["venue-sim:9070"],
            "labels": {"service": "sim", "kind": "venue", "instance_id": sim.instance_id, "venue": "sim"},
        },
    ]


def test_replicas_of_one_name_are_each_their_own_target(state: RegistryState) -> None:
    first = state.register("ingest", pb.KIND_CORE, "a1b2:5100", [HEALTH], metrics_port=9100)
    second = state.register("ingest", pb.KIND_CORE, "c3d4:5100", [HEALTH], metrics_port=9100)
    groups = [g for g in target_groups(state.instances()) if g["labels"]["service"] == "ingest"]
    assert [(g["targets"], g["labels"]["instance_id"]) for g in groups] == [
        (["a1b2:9100"], first.instance_id),
        (["c3d4:9100"], second.instance_id),
    ]


def test_instances_without_metrics_and_configured_upstreams_are_no_targets(state: RegistryState) -> None:
    state.register("bridge", pb.KIND_CORE, "bridge:5103", [HEALTH])  # metrics_port 0: none
    state.configure("legacy", pb.KIND_UNSPECIFIED, "legacy:6000", [HEALTH])
    assert [g["targets"] for g in target_groups(state.instances())] == [["gateway:8081"]]


def test_an_instance_that_expires_leaves_the_targets() -> None:
    now = [0.0]
    state = RegistryState(ttl_s=2.0, monotonic=lambda: now[0])
    state.register("sim", pb.KIND_VENUE, "venue-sim:5070", [HEALTH], metrics_port=9070)
    assert len(target_groups(state.instances())) == 1
    now[0] = 2.5
    assert target_groups(state.instances()) == []


def test_a_registration_sends_its_metrics_port_and_zero_without_one() -> None:
    with_metrics = Registration("sim", pb.KIND_VENUE, "venue-sim:5070", (HEALTH,), 9070)
    assert with_metrics.request().metrics_port == 9070
    assert Registration("sim", pb.KIND_VENUE, "venue-sim:5070", (HEALTH,)).request().metrics_port == 0


def test_a_metrics_port_beyond_65535_is_refused_by_name() -> None:
    request = pb.RegisterRequest(
        name="sim", kind=pb.KIND_VENUE, address="venue-sim:5070", services=[HEALTH], metrics_port=70000
    )
    with pytest.raises(InvalidArgument) as refused:
        check_register(request)
    assert [(v.field, v.description) for v in refused.value.violations] == [
        ("metrics_port", "70000 is not a port 1-65535 (0: no metrics)")
    ]
    check_register(
        pb.RegisterRequest(name="sim", kind=pb.KIND_VENUE, address="venue-sim:5070", metrics_port=0)
    )


def test_an_instance_shared_by_another_gateway_replica_keeps_its_metrics_port(state: RegistryState) -> None:
    entry = state.register("sim", pb.KIND_VENUE, "venue-sim:5070", [HEALTH], metrics_port=9070)
    shared = Entry.shared(pb.Instance.FromString(entry.to_proto().SerializeToString()), expires_at=1.0)
    assert shared.metrics_port == 9070
    assert target_groups([shared])[0]["targets"] == ["venue-sim:9070"]
