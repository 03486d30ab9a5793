"""A venue registers under a name the bus takes (issue 57 item 15): one it refuses would be listed
by the registry and then followed by nobody, ingest skipping it. INVALID_ARGUMENT on `name`. A
strategy file's venues follow the same rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from trademesh.core.detector.engine.catalog import Catalog
from trademesh.core.detector.strategy_file import parse_strategy
from trademesh.core.platform.errors import InvalidArgument
from trademesh.gateway.registry.validate import check_register
from trademesh.registry.v1 import registry_pb2 as pb


def _register(name: str, kind: int) -> None:
    check_register(pb.RegisterRequest(name=name, kind=kind, address="127.0.0.1:5050"))  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["sim.desk_a", "sim.a.b", "v" * 41, "sim."])
def test_a_venue_name_the_bus_refuses_is_refused_at_registration(name: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        _register(name, pb.KIND_VENUE)
    (violation,) = caught.value.violations
    assert violation.field == "name" and "is not a venue name" in violation.description


def test_the_same_names_are_a_core_services_and_good_venue_names_pass() -> None:
    _register("sim.a.b", pb.KIND_CORE)  # an instance name's rule, not a venue's
    for name in ("sim", "binance.desk-a", "okx-swap", "venue_2"):
        _register(name, pb.KIND_VENUE)


def test_a_strategy_files_venue_follows_the_bus_rule_too() -> None:
    """A strategy file (a `--strategy`, CreatePatch's strategy_toml) names its venues."""
    text = Path("trademesh/core/detector/strategies/trend.toml").read_text()
    assert 'venues = ["sim"]' in text
    with pytest.raises(InvalidArgument) as refused:
        parse_strategy(
            text.replace('venues = ["sim"]', 'venues = ["Sim Venue!"]'), "trend.toml", Catalog.builtin()
        )
    [violation] = refused.value.violations
    assert violation.field.startswith("venues")
    assert "'Sim Venue!' is not a venue name" in violation.description
