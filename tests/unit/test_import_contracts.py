"""`.importlinter`'s lists of services are the house as it stands: every folder of trademesh/core/,
every service of the registry and every engine core is named by each contract that should hold it
(docs/architecture.md, "Layers"). A new service or folder fails here until the contracts name it."""

from __future__ import annotations

import configparser
from pathlib import Path

from trademesh.core.platform.service.registry import SERVICES

ROOT = Path(__file__).resolve().parents[2]
CORE = ROOT / "trademesh" / "core"
# The folders that are not services: the composition root, and the two shared layers below.
NOT_SERVICES = frozenset({"cli", "platform", "domain"})
# Run or read several cores on purpose, so outside the rule that live services meet through contracts.
SEVERAL_CORES = frozenset({"backtest", "history", "tools", "venue_check"})


def _contracts() -> dict[str, dict[str, list[str]]]:
    parser = configparser.ConfigParser()
    parser.read(ROOT / ".importlinter", encoding="utf-8")
    found: dict[str, dict[str, list[str]]] = {}
    for section in parser.sections():
        if section.startswith("importlinter:contract:"):
            fields = parser[section]
            found[section.rpartition(":")[2]] = {
                key: [w for line in fields[key].splitlines() for w in line.replace(":", " ").split() if w]
                for key in fields
            }
    return found


def _core_services() -> set[str]:
    return {
        f"trademesh.core.{p.parent.name}"
        for p in CORE.glob("*/__init__.py")
        if p.parent.name not in NOT_SERVICES
    }


def _registry_packages() -> set[str]:
    """The package of each registered service: trademesh.core.<service>, or trademesh.gateway/venues."""
    parts = [entry.module.split(".") for entry in SERVICES.values()]
    return {".".join(p[:3] if p[1] == "core" else p[:2]) for p in parts}


def test_every_service_folder_and_registered_service_is_in_the_services_layer() -> None:
    layers = _contracts()["layers"]["layers"]
    assert layers[0] == "trademesh.core.cli" and layers[-2:] == [
        "trademesh.core.domain",
        "trademesh.core.platform",
    ]
    services = set(layers[1:-2])
    wanted = _core_services() | _registry_packages() | {"trademesh.gateway", "trademesh.venues"}
    assert services == wanted, f"missing {sorted(wanted - services)}, stale {sorted(services - wanted)}"


def test_every_core_service_is_kept_from_the_gateway_and_the_venues() -> None:
    contracts = _contracts()
    assert set(contracts["services"]["source_modules"]) == _core_services()
    forbidden_to_venues = set(contracts["venues"]["forbidden_modules"])
    assert _core_services() | {"trademesh.core.cli", "trademesh.gateway"} == forbidden_to_venues


def test_every_live_service_meets_the_others_only_through_contracts() -> None:
    independent = set(_contracts()["meet-through-contracts"]["modules"])
    live = {name for name in _core_services() if name.rpartition(".")[2] not in SEVERAL_CORES}
    assert independent == live, f"missing {sorted(live - independent)}, stale {sorted(independent - live)}"
    registered = {p for p in _registry_packages() if p.startswith("trademesh.core.")}
    assert registered - {"trademesh.core.backtest"} <= independent


def test_every_engine_core_is_kept_from_the_shells() -> None:
    engines = {f"trademesh.core.{p.parent.parent.name}.engine" for p in CORE.glob("*/engine/__init__.py")}
    assert engines and set(_contracts()["engines"]["source_modules"]) == engines
