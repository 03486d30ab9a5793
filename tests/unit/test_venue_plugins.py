"""Venues from installed packages (trademesh/venues/plugins.py, trademesh/venues/registry.py): the entry-point
group read from real distribution metadata (dist-info folders on a path), the built-in venues
declared in it as the registry's table lists them, refusals that name their package, the ports
given out, and the CLI listing and starting venues with broken plug-ins beside good ones (a real
`python -m trademesh.core.cli` that finds the packages on its PYTHONPATH;
tests/integration/test_venue_plugin.py builds and installs one)."""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.forked_services import run_command
from trademesh.core.platform.errors import FailedPrecondition
from trademesh.core.platform.service.registry import SERVICES
from trademesh.venues.plugins import GROUP, PLUGIN_PORTS, Found, given_ports, scan
from trademesh.venues.registry import VENUES

ROOT = Path(__file__).resolve().parents[2]
BUILT_IN = {name: entry.module for name, entry in VENUES.items()}


def write_package(site: Path, package: str, venues: dict[str, str], modules: dict[str, str]) -> None:
    """An installed distribution as pip leaves one: its dist-info (METADATA, entry_points.txt)
    and its modules, in `site`."""
    info = site / f"{package.replace('-', '_')}-0.1.0.dist-info"
    info.mkdir(parents=True)
    metadata = f"Metadata-Version: 2.1\nName: {package}\nVersion: 0.1.0\nSummary: {package}, a test venue\n"
    (info / "METADATA").write_text(metadata)
    declared = "".join(f"{name} = {value}\n" for name, value in venues.items())
    (info / "entry_points.txt").write_text(f"[{GROUP}]\n{declared}")
    for module, code in modules.items():
        (site / f"{module}.py").write_text(code)


def found_in(site: Path) -> Found:
    distributions = importlib.metadata.distributions(path=[str(site)])
    return scan((e for d in distributions for e in d.entry_points if e.group == GROUP), VENUES)


def test_pyproject_declares_the_built_in_venues_as_the_registry_lists_them() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["entry-points"][GROUP] == BUILT_IN


def test_the_installed_group_declares_exactly_the_built_in_venues() -> None:
    found = scan(importlib.metadata.entry_points(group=GROUP), VENUES)
    assert dict(found.own) == BUILT_IN, "stale install: uv pip install --no-deps -e . (./dev does it)"
    assert found.refused == ()


def test_a_package_s_venue_is_found_with_its_module_package_and_summary(tmp_path: Path) -> None:
    write_package(tmp_path, "acme-venue", {"acme": "acme_venue"}, {})
    found = found_in(tmp_path)
    assert [(d.name, d.module, d.package) for d in found.plugins.values()] == [
        ("acme", "acme_venue", "acme-venue 0.1.0")
    ]
    assert found.plugins["acme"].summary == "acme-venue, a test venue"
    assert found.refused == ()


def test_a_plug_in_named_as_a_built_in_venue_is_refused_naming_its_package(tmp_path: Path) -> None:
    write_package(tmp_path, "shadow-venue", {"sim": "shadow_venue", "shade": "shadow_venue"}, {})
    found = found_in(tmp_path)
    assert list(found.plugins) == ["shade"]
    (refusal,) = found.refused
    assert str(refusal).startswith(
        "venue 'sim' of package shadow-venue 0.1.0: a built-in venue has this name"
    )


def test_a_name_two_packages_declare_is_refused_for_both(tmp_path: Path) -> None:
    write_package(tmp_path, "one-venue", {"twin": "one_venue"}, {})
    write_package(tmp_path, "two-venue", {"twin": "two_venue"}, {})
    found = found_in(tmp_path)
    assert found.plugins == {}
    assert sorted(r.package for r in found.refused) == ["one-venue 0.1.0", "two-venue 0.1.0"]
    assert all("packages one-venue 0.1.0, two-venue 0.1.0 all declare it" in str(r) for r in found.refused)


@pytest.mark.parametrize(
    ("name", "value", "why"),
    [
        ("Acme", "acme", "not a venue name"),
        ("acme_x", "acme", "not a venue name"),
        ("acme-", "acme", "not a venue name"),
        ("9acme", "acme", "not a venue name"),
        ("acme", "acme:create_venue", "is not a module"),
        ("acme", "acme [extra]", "is not a module"),
    ],
)
def test_an_entry_point_that_cannot_name_a_venue_is_refused(
    tmp_path: Path, name: str, value: str, why: str
) -> None:
    write_package(tmp_path, "odd-venue", {name: value}, {})
    found = found_in(tmp_path)
    assert found.plugins == {}
    assert [r.name for r in found.refused] == [name] and why in found.refused[0].reason


def test_given_ports_are_distinct_in_the_range_and_later_names_never_move_earlier_ones() -> None:
    names = sorted(f"venue{i:02d}" for i in range(40))
    ports = given_ports(reversed(names))
    assert len(set(ports.values())) == len(names)
    assert all(port in PLUGIN_PORTS for port in ports.values())
    assert given_ports(names[:10]) == {name: ports[name] for name in names[:10]}
    alone = given_ports(["acme"])["acme"]
    assert given_ports(["acme"], taken=[alone])["acme"] not in (alone, None)


def test_more_plug_ins_than_ports_is_an_error_naming_the_venue_left_over() -> None:
    with pytest.raises(FailedPrecondition, match="no port left in 5200-5299 for the venue 'v99'"):
        given_ports(f"v{i:02d}" for i in range(len(PLUGIN_PORTS) + 1))


def test_no_port_in_the_range_is_a_built_in_venue_s_or_a_service_s() -> None:
    held = {e.default_port for e in VENUES.values()} | {
        p for s in SERVICES.values() for p in (s.port, s.grpc_port, s.metrics_port) if p is not None
    }
    assert not held & set(PLUGIN_PORTS)


# Modules that are never asked for a venue here: listing one imports it and reads its facts.
CREATE = "def create_venue(config_path, replay=None, account=None):\n    raise AssertionError\n"
GOOD = "SUMMARY = 'the good test venue'\n" + CREATE
PORTED = "DEFAULT_PORT = 6100\n" + CREATE


def _cli(site: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(site)}
    return subprocess.run(
        [sys.executable, "-m", "trademesh.core.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )


@pytest.fixture
def mixed_site(tmp_path: Path) -> Path:
    """Good plug-ins beside broken ones, each its own package."""
    write_package(tmp_path, "good-venue", {"good": "good_venue"}, {"good_venue": GOOD})
    write_package(tmp_path, "ported-venue", {"ported": "ported_venue"}, {"ported_venue": PORTED})
    write_package(
        tmp_path, "broken-venue", {"broken": "broken_venue"}, {"broken_venue": "import nowhere_at_all\n"}
    )
    write_package(tmp_path, "hollow-venue", {"hollow": "hollow_venue"}, {"hollow_venue": "X = 1\n"})
    write_package(tmp_path, "clash-venue", {"sim": "clash_venue"}, {"clash_venue": GOOD})
    squat = "DEFAULT_PORT = 5060\n" + GOOD
    write_package(tmp_path, "squat-venue", {"squat": "squat_venue"}, {"squat_venue": squat})
    return tmp_path


def test_trademesh_venues_lists_the_good_plug_ins_and_one_line_per_broken_one(mixed_site: Path) -> None:
    done = _cli(mixed_site, "venues")
    assert done.returncode == 0, done.stderr
    rows = {line.split()[0]: line for line in done.stdout.splitlines()}
    assert list(rows) == [*VENUES, "good", "ported"]
    assert "port 6100" in rows["ported"] and "(package ported-venue 0.1.0)" in rows["ported"]
    good_port = int(rows["good"].split()[2])
    assert good_port in PLUGIN_PORTS and "the good test venue  (package good-venue 0.1.0)" in rows["good"]
    assert "built-in exchange" in rows["sim"] and "package" not in rows["sim"]
    problems = done.stderr.splitlines()
    assert "Traceback" not in done.stderr and len(problems) == 4, done.stderr
    by_package = {p.split(" of package ")[1].split(":")[0]: p for p in problems}
    assert set(by_package) == {
        "broken-venue 0.1.0",
        "hollow-venue 0.1.0",
        "clash-venue 0.1.0",
        "squat-venue 0.1.0",
    }
    assert "No module named 'nowhere_at_all'" in by_package["broken-venue 0.1.0"]
    assert "has no create_venue" in by_package["hollow-venue 0.1.0"]
    assert "a built-in venue has this name" in by_package["clash-venue 0.1.0"]
    assert "the venue binance's port" in by_package["squat-venue 0.1.0"]


def test_starting_a_broken_plug_in_is_one_line_naming_its_package(mixed_site: Path) -> None:
    done = _cli(mixed_site, "venue", "broken", "--port", "0", "--metrics-port", "-1")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "trademesh: venue 'broken' of package broken-venue 0.1.0: its module broken_venue failed to "
        "import: ModuleNotFoundError: No module named 'nowhere_at_all'"
    ]


def test_a_refused_plug_in_s_name_says_why_it_is_not_a_venue(mixed_site: Path) -> None:
    write_package(mixed_site, "upper-venue", {"Upper": "good_venue"}, {})
    done = _cli(mixed_site, "venue", "Upper", "--port", "0")
    assert done.returncode == 2
    assert "venue 'Upper' of package upper-venue 0.1.0: not a venue name" in done.stderr
    assert "Traceback" not in done.stderr


def test_services_with_a_gateway_that_does_not_answer_lists_what_is_installed_then_says_so() -> None:
    done = run_command(["services", "--gateway", "127.0.0.1:1", "--timeout", "1"], timeout_s=60)
    assert done.returncode == 2
    assert "binance" in done.stdout and "registered with the gateway" not in done.stdout
    assert done.stderr.startswith("trademesh: the gateway's registry at 127.0.0.1:1: UNAVAILABLE")
    assert len(done.stderr.splitlines()) == 1


_ASK_FOR_GOOD = """
import json, sys
from trademesh.core.cli import build_parser
from trademesh.venues.command import COMMAND
from trademesh.venues.registry import venue_entry
COMMAND.config(build_parser().parse_args(["venue", "good", "--port", "0"]))
venue_entry("good")
wanted = [m for m in sys.modules if m.endswith("_venue") or m.split(".")[0] in ("ccxt", "venues")]
print(json.dumps(sorted(wanted)))
"""


def test_asking_for_one_plug_in_imports_no_other_venue_s_module(mixed_site: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(mixed_site)}
    done = subprocess.run(
        [sys.executable, "-c", _ASK_FOR_GOOD],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    loaded = json.loads(done.stdout)
    assert "good_venue" in loaded
    assert not [m for m in loaded if m.endswith("_venue") and m != "good_venue"]
    assert not [
        m
        for m in loaded
        if m.startswith("ccxt") or m.split(".")[:2] in (["venues", "binance"], ["venues", "sim"])
    ]


def test_a_create_venue_that_fails_is_one_line_naming_the_package(mixed_site: Path) -> None:
    done = _cli(mixed_site, "venue", "good", "--port", "0", "--metrics-port", "-1")
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "trademesh: venue 'good' of package good-venue 0.1.0: create_venue failed: AssertionError"
    ]
