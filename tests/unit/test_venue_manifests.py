"""`trademesh venue-manifests` (trademesh/venues/manifests/): the live built-in venues' compose services and
Kubernetes files are exactly its output, so the templates are their one source; a package's venue
(its own image) gets a compose service that loads beside the others and a manifest valid for every
Kubernetes version we support, reached through the venues' NetworkPolicy with no line added."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.forked_services import run_command
from tests.unit.test_k8s_manifests import KUBERNETES_VERSIONS, network_problems, overlay, schema_problems
from trademesh.venues.manifests import HAND_WRITTEN, compose_service, kubernetes_manifest
from trademesh.venues.registry import VENUES, VenueEntry

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
K8S_VENUES = ROOT / "ops" / "k8s" / "base" / "venues"
GENERATED = [entry for name, entry in VENUES.items() if name not in HAND_WRITTEN]
# Written by hand: the sim, the example account at an exchange (docs/accounts.md), and node-ref, a
# venue in TypeScript with its own image (tests/unit/test_k8s_manifests.py checks it).
BY_HAND = {"venue-sim.yaml", "venue-binance-desk-b.yaml", "venue-node-ref.yaml"}
ACME = VenueEntry("acme", "acme_venue", 5214, "Acme, a venue outside trademesh", "acme-venue 0.1.0")
IMAGE = "registry.example.com/trademesh-acme:0.1.0"


def compose_block(name: str) -> str:
    """The text of one service in docker-compose.yml: its header line to the next service,
    comment or blank line."""
    lines = COMPOSE.read_text().splitlines(keepends=True)
    start = lines.index(f"  venue-{name}:\n")
    end = next(i for i in range(start + 1, len(lines)) if not lines[i].strip() or lines[i][2] != " ")
    return "".join(lines[start:end])


class _ComposeLoader(yaml.SafeLoader):
    """YAML as Compose reads it: `!reset` drops what a merge brought (docs.docker.com, "Merge")."""


_ComposeLoader.add_constructor("!reset", lambda loader, node: None)


def with_service(block: str) -> dict[str, Any]:
    """docker-compose.yml with `block` first under `services:` (where its anchors are defined)."""
    text = COMPOSE.read_text().replace("\nservices:\n", f"\nservices:\n{block}", 1)
    loaded: dict[str, Any] = yaml.load(text, Loader=_ComposeLoader)  # a SafeLoader
    return loaded


@pytest.mark.parametrize("entry", GENERATED, ids=lambda e: e.name)
def test_a_built_in_venue_s_compose_service_is_the_template_s(entry: VenueEntry) -> None:
    assert compose_service(entry) == compose_block(entry.name)


@pytest.mark.parametrize("entry", GENERATED, ids=lambda e: e.name)
def test_a_built_in_venue_s_kubernetes_file_is_the_template_s(entry: VenueEntry) -> None:
    assert kubernetes_manifest(entry) == (K8S_VENUES / f"venue-{entry.name}.yaml").read_text()


def test_every_venue_file_in_the_base_is_generated_or_named_as_written_by_hand() -> None:
    files = {path.name for path in K8S_VENUES.iterdir()}
    assert files == {f"venue-{entry.name}.yaml" for entry in GENERATED} | BY_HAND


def test_a_package_s_venue_runs_its_own_image_in_compose_beside_the_others() -> None:
    services = with_service(compose_service(ACME, IMAGE))["services"]
    acme = services["venue-acme"]
    assert (acme["image"], acme["build"]) == (IMAGE, None)
    assert services["venue-binance"]["build"] == {"context": ".", "dockerfile": "ops/Dockerfile"}
    assert acme["command"] == ["venue", "acme", "--host", "0.0.0.0", "--port", "5214"]
    assert acme["ports"] == [
        "${TRADEMESH_BIND:-127.0.0.1}:5214:5214",
        "${TRADEMESH_BIND:-127.0.0.1}:9214:9214",
    ]
    assert acme["healthcheck"]["test"] == ["CMD", "trademesh", "health", "127.0.0.1:5214"]
    assert acme["hostname"] == "venue-acme" and acme["profiles"] == ["live"]
    assert {"path": "ops/trademesh-venue-acme.env", "required": False} in acme["env_file"]
    assert acme["environment"]["TRADEMESH_BUS_DIRECT"] == "${TRADEMESH_BUS_DIRECT:-1}"


def test_a_compose_profile_of_its_own_is_the_service_s() -> None:
    assert with_service(compose_service(ACME, profile="acme"))["services"]["venue-acme"]["profiles"] == [
        "acme"
    ]


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_a_package_s_venue_manifest_is_valid_and_reached_through_the_venues_policy(version: str) -> None:
    objects = list(yaml.safe_load_all(kubernetes_manifest(ACME, IMAGE)))
    assert [o["kind"] for o in objects] == ["Deployment", "Service", "PodDisruptionBudget"]
    assert schema_problems(objects, version) == []
    container = objects[0]["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == IMAGE
    assert container["args"] == ["venue", "acme", "--host", "0.0.0.0", "--port", "5214"]
    assert {p["name"]: p["containerPort"] for p in container["ports"]} == {"grpc": 5214, "metrics": 9214}
    assert container["envFrom"][1]["secretRef"] == {"name": "trademesh-venue-acme", "optional": True}
    assert network_problems(overlay("local") + objects) == []


def test_the_command_prints_what_is_committed_and_refuses_the_hand_written_sim() -> None:
    done = run_command(["venue-manifests", "okx-swap", "--compose"], timeout_s=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout == compose_block("okx-swap")
    done = run_command(["venue-manifests", "deribit", "--kubernetes"], timeout_s=60)
    assert done.stdout == (K8S_VENUES / "venue-deribit.yaml").read_text()
    refused = run_command(["venue-manifests", "sim", "--kubernetes"], timeout_s=60)
    assert refused.returncode == 2 and "written by hand" in refused.stderr
    bad = run_command(["venue-manifests", "okx", "--compose", "--image", "not an image"], timeout_s=60)
    assert bad.returncode == 2 and "is not an image reference" in bad.stderr
