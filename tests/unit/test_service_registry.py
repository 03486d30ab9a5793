"""The one service registry (trademesh.core.platform.service.registry) and what is derived from it: the CLI
and `up`'s order."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from pathlib import Path

import pytest

from tests.forked_services import run_command
from trademesh.core.cli import build_parser
from trademesh.core.platform.errors import FailedPrecondition, NotFound
from trademesh.core.platform.service.command import MeshView, load_command
from trademesh.core.platform.service.registry import SERVICES, Kind, ServiceEntry, start_order
from trademesh.venues.registry import VENUES


def _subcommands() -> set[str]:
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    return set(action.choices or {})


def test_every_registered_service_is_a_cli_subcommand_with_its_default_port() -> None:
    assert set(SERVICES) <= _subcommands()
    for entry in SERVICES.values():
        extra = ["sim"] if entry.kind is Kind.VENUE else []
        args = build_parser().parse_args([entry.name, *extra])
        assert args.port == entry.port, entry.name


# The secrets a service refuses to start without (each its own key or token): set for the test.
NEEDED = {
    "TRADEMESH_TELEGRAM_BOT_TOKEN": "123:test", "TRADEMESH_TELEGRAM_API_KEY": "tmk_test",
    "TRADEMESH_TELEGRAM_CHAT_ID": "42", "TRADEMESH_SUPERVISOR_API_KEY": "tmk_test",
}  # fmt: skip


def test_each_service_module_exposes_a_command_that_builds_its_typed_config(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in NEEDED.items():
        monkeypatch.setenv(name, value)
    for entry in SERVICES.values():
        command = load_command(entry)
        extra = ["sim"] if entry.kind is Kind.VENUE else []
        flags = ["--venue", "sim=127.0.0.1:5070"] if "venue" in entry.depends_on else []
        config = command.config(build_parser().parse_args([entry.name, *extra, *flags]))
        assert dataclasses.is_dataclass(config), entry.name
        field = dataclasses.fields(config)[0].name
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(config, field, None)


def test_start_order_puts_the_gateway_first_and_every_dependency_before_its_dependents() -> None:
    order = [entry.name for entry in start_order()]
    assert order[0] == "gateway" and sorted(order) == sorted(SERVICES)
    for entry in SERVICES.values():
        for dependency in entry.depends_on:
            if dependency in SERVICES:
                assert order.index(dependency) < order.index(entry.name), (entry.name, dependency)


def test_a_dependency_cycle_is_refused_naming_the_services(monkeypatch: pytest.MonkeyPatch) -> None:
    a = ServiceEntry("a", "m", Kind.CORE, 1, "", depends_on=("b",))
    b = ServiceEntry("b", "m", Kind.CORE, 2, "", depends_on=("a",))
    monkeypatch.setattr("trademesh.core.platform.service.registry.SERVICES", {"a": a, "b": b})
    with pytest.raises(FailedPrecondition, match="cycle: a, b"):
        start_order()


def test_an_unknown_service_name_is_refused_naming_the_known_ones() -> None:
    with pytest.raises(NotFound, match="unknown service 'nope'; known services: gateway"):
        start_order(["nope"])


def test_up_points_the_services_that_follow_venues_at_the_running_ones() -> None:
    view = MeshView(venues=(("sim", "127.0.0.1:5070"),))
    for entry in SERVICES.values():
        args = load_command(entry).mesh_args(view)
        if entry.kind is Kind.VENUE:
            assert args == ["sim"]
        elif "venue" in entry.depends_on:
            assert args[:2] == ["--venue", "sim=127.0.0.1:5070"], entry.name
        build_parser().parse_args([entry.name, *args])  # every one is a valid command line


def test_up_runs_the_demo_market_and_the_bars_backfill_the_advisors_first_bars_from_its_history() -> None:
    from trademesh.core.advisor.config import MESH_TIMEFRAME
    from trademesh.core.cli.mesh.up import UpOptions
    from trademesh.venues.sim.config import DEMO_MARKET, load_config

    view = MeshView(venues=(("sim", "127.0.0.1:5070"),), sim_config=UpOptions(Path("data")).sim_config)
    assert load_command(SERVICES["venue"]).mesh_args(view) == ["sim", "--config", str(DEMO_MARKET)]
    demo = load_config(DEMO_MARKET)
    assert (demo.maker_fee_rate, demo.taker_fee_rate) == (Decimal("0.0002"), Decimal("0.0005"))
    bars = load_command(SERVICES["bars"])
    config = bars.config(build_parser().parse_args(["bars", *bars.mesh_args(view)]))
    # The bar service repairs the hour before each symbol's first trade from the sim's candles:
    # the demo market's history (its 1m bars: the advisor's context on a fresh mesh).
    assert config.rules.backfill_ns == 3600 * 10**9 >= demo.history_s * 10**9 > 0
    assert MESH_TIMEFRAME == "1m"


def test_trademesh_services_lists_every_service_and_venue() -> None:
    done = run_command(["services"], timeout_s=60)
    assert done.returncode == 0, done.stderr
    names = [line.split()[0] for line in done.stdout.splitlines()]
    assert [n for n in names if n in SERVICES] == list(SERVICES)
    assert set(VENUES) <= set(names)
    assert "port 5101" in done.stdout and "gRPC 8082" in done.stdout
