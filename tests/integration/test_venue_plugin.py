"""A venue added by a package, outside this repository (docs/venue-adding.md, "Adding a venue as a
package"): the test writes a tiny package (pyproject.toml with a `trademesh.venues` entry point, a
module whose create_venue runs the sim's engine under the name acme with one symbol), builds and
installs it into a scratch virtual environment made from this one (offline: no index, no build
isolation, no dependencies), and there `trademesh venues` lists it, `trademesh venue acme` serves
it over gRPC and registers it with a gateway, whose registry `trademesh services` lists and whose
services board checks it. A second package whose module cannot import is one line naming it.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import sysconfig
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.integration.gateway_support import Gateway, Processes
from tests.integration.postgres_server import database_url, new_database
from tests.integration.support import CALL_TIMEOUT_S, TEST_TOKEN, VENUE_ENV, until
from trademesh.core.platform.config.env import GATEWAY, TOKEN
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.marketdata.v1 import marketdata_pb2_grpc as md_grpc
from trademesh.registry.v1 import registry_pb2 as reg
from trademesh.services.v1 import services_pb2 as sv
from trademesh.services.v1 import services_pb2_grpc as sv_grpc

pytestmark = pytest.mark.integration
__all__ = ["database_url"]  # a fixture

AUTH = (("authorization", f"Bearer {TEST_TOKEN}"),)
WAIT_S = 30.0
SYMBOL = "ACME/USDT"

PYPROJECT = """\
[build-system]
requires = ["setuptools"]
build-backend = "setuptools.build_meta"

[project]
name = "{package}"
version = "0.1.0"
description = "{summary}"
requires-python = ">=3.11"

[project.entry-points."trademesh.venues"]
{venue} = "{module}"
"""

ACME = f'''\
"""Acme: the sim's matching engine and synthetic market under another name, with one symbol."""

from decimal import Decimal

from trademesh.venues.sim.config import SimConfig, SymbolConfig
from trademesh.venues.sim.venue import SimVenue

SUMMARY = "Acme: the sim's engine under another name, one symbol"


def create_venue(config_path, replay=None, account=None):
    symbol = SymbolConfig(
        symbol="{SYMBOL}", tick_size=Decimal("0.01"), lot_size=Decimal("0.001"), start_price=Decimal("12.5")
    )
    return SimVenue(SimConfig(symbols=(symbol,)), "acme")
'''

BROKEN = "import acme_dependency_never_installed\n"


@dataclass(frozen=True)
class Scratch:
    python: Path
    home: Path  # the working directory of its commands: neither the checkout nor the packages' sources

    def command(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.python), "-m", "trademesh.core.cli", *args],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=self.home,
            env={**os.environ, **(env or {})},
            check=False,
        )


def _write_package(root: Path, package: str, venue: str, module: str, code: str) -> Path:
    source = root / package
    (source / module).mkdir(parents=True)
    summary = f"{package}, a venue outside trademesh"
    (source / "pyproject.toml").write_text(
        PYPROJECT.format(package=package, summary=summary, venue=venue, module=module)
    )
    (source / module / "__init__.py").write_text(code)
    return source


def _run(args: list[str]) -> None:
    done = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, f"{' '.join(args)}: {done.stderr}"


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Scratch:
    """A virtual environment that sees this one's packages (trademesh included, as installed here)
    through a .pth file, with the two test packages built and installed into it alone."""
    root = tmp_path_factory.mktemp("venue-plugin")
    home = root / "env"
    _run([sys.executable, "-m", "venv", "--without-pip", str(home)])
    python = home / "bin" / "python"
    query = [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"]
    site = Path(subprocess.run(query, capture_output=True, text=True, timeout=30, check=True).stdout.strip())
    parent = sysconfig.get_path("purelib")
    (site / "_trademesh_parent.pth").write_text(f"import site; site.addsitedir({parent!r})\n")
    sources = [
        _write_package(root, "acme-venue", "acme", "acme_venue", ACME),
        _write_package(root, "broken-venue", "broken", "broken_venue", BROKEN),
    ]
    uv = Path(sys.executable).with_name("uv")
    assert uv.exists(), f"{uv}: ./dev installs uv in the virtual environment"
    install = [str(uv), "pip", "install", "--python", str(python), "--quiet", "--offline", "--no-cache"]
    _run([*install, "--no-deps", "--no-build-isolation", *map(str, sources)])
    return Scratch(python, home)


@pytest.fixture
async def processes(tmp_path: Path, database_url: str) -> AsyncIterator[Processes]:
    async with new_database(database_url, "plugin") as database:
        started = Processes(tmp_path, database)
        try:
            yield started
        finally:
            await started.stop_all()


def test_trademesh_venues_lists_the_installed_package_s_venue_and_says_which_package_is_broken(
    scratch: Scratch,
) -> None:
    done = scratch.command("venues")
    assert done.returncode == 0, done.stderr
    rows = {line.split()[0]: line for line in done.stdout.splitlines()}
    assert "sim" in rows and "binance" in rows
    assert rows["acme"].endswith(
        "Acme: the sim's engine under another name, one symbol  (package acme-venue 0.1.0)"
    )
    assert "broken" not in rows
    assert done.stderr.splitlines() == [
        "trademesh: venue 'broken' of package broken-venue 0.1.0: its module broken_venue failed to import: "
        "ModuleNotFoundError: No module named 'acme_dependency_never_installed'"
    ]


def test_the_packages_are_installed_in_the_scratch_environment_alone(scratch: Scratch) -> None:
    here = subprocess.run(
        [sys.executable, "-m", "trademesh.core.cli", "venue", "acme", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=scratch.home,
        check=False,
    )
    assert here.returncode == 2 and "unknown venue 'acme'" in here.stderr


def test_starting_the_broken_package_s_venue_is_one_line_naming_the_package(scratch: Scratch) -> None:
    done = scratch.command("venue", "broken", "--port", "0", "--metrics-port", "-1", env=VENUE_ENV)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "trademesh: venue 'broken' of package broken-venue 0.1.0: its module broken_venue failed to import: "
        "ModuleNotFoundError: No module named 'acme_dependency_never_installed'"
    ]


@pytest.fixture
def acme(
    scratch: Scratch, processes: Processes, tmp_path: Path
) -> Iterator[tuple[subprocess.Popen[str], Gateway]]:
    """The package's venue on a free port, registered with a gateway started from this environment."""
    gateway = processes.gateway()
    with (tmp_path / "acme.log").open("w") as log:
        venue = subprocess.Popen(
            [
                str(scratch.python),
                "-m",
                "trademesh.core.cli",
                "venue",
                "acme",
                "--port",
                "0",
                "--metrics-port",
                "-1",
            ],
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            cwd=scratch.home,
            env={**os.environ, **VENUE_ENV, GATEWAY: gateway.grpc_address},
        )
        try:
            yield venue, gateway
        finally:
            venue.terminate()
            venue.communicate(timeout=30)


def _serving(process: subprocess.Popen[str]) -> dict[str, object]:
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("{") and json.loads(line).get("event") == "serving":
            found: dict[str, object] = json.loads(line)
            return found
    raise AssertionError(f"exited with {process.wait()} before serving (its log: acme.log)")


async def _board_says(gateway: Gateway, name: str) -> sv.ServiceStatus | None:
    async with grpc.aio.insecure_channel(gateway.grpc_address) as channel:
        answer = await sv_grpc.ServicesStub(channel).List(
            sv.ListRequest(), metadata=AUTH, timeout=CALL_TIMEOUT_S
        )
    found = [s for s in answer.snapshot.services if s.name == name and s.health == sv.HEALTH_SERVING]
    return found[0] if found else None


async def test_the_package_s_venue_serves_registers_and_is_listed_by_services_and_the_board(
    scratch: Scratch, acme: tuple[subprocess.Popen[str], Gateway]
) -> None:
    venue, gateway = acme
    serving = await asyncio.wait_for(asyncio.to_thread(_serving, venue), WAIT_S)
    address = f"127.0.0.1:{serving['port']}"
    async with grpc.aio.insecure_channel(address) as channel:
        health = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=CALL_TIMEOUT_S
        )
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        listed = await md_grpc.MarketDataStub(channel).ListInstruments(
            md.ListInstrumentsRequest(), metadata=AUTH, timeout=CALL_TIMEOUT_S
        )
    assert [(i.venue, i.symbol) for i in listed.instruments] == [("acme", SYMBOL)]

    status = await until(
        lambda: _board_says(gateway, "acme"), WAIT_S, 0.2, "acme SERVING on the services board"
    )
    assert status.kind == reg.KIND_VENUE and status.address == address

    done = await asyncio.to_thread(
        scratch.command, "services", "--gateway", gateway.grpc_address, env={TOKEN: TEST_TOKEN}
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert any(
        line.split()[:2] == ["acme", "port"] and "(package acme-venue 0.1.0)" in line for line in lines
    )
    registered = lines[lines.index(f"registered with the gateway at {gateway.grpc_address}:") + 1 :]
    assert [line.split()[:3] for line in registered if line.split()[0] == "acme"] == [
        ["acme", "venue", address]
    ]
