"""Every service of the registry (trademesh/core/platform/service/registry.py) is named where a reader meets
the mesh.

- docs/architecture.md's house picture (the code block under "## The house") draws each service
  with its default port, as `name (port)` (the gateway `gateway (HTTP port`; a venue's port is
  per venue, so `venue` alone);
- the README names each one, in backticks, in its section on what `./dev up` starts;
- docs/features.md, which the README links, has a row for each in its table of services
  (`| name | \\`trademesh name\\``).

A service added to the registry fails here until the three say it exists."""

from __future__ import annotations

import re
from pathlib import Path

from trademesh.core.platform.service.registry import SERVICES, ServiceEntry

ROOT = Path(__file__).resolve().parents[2]
ARCHITECTURE = ROOT / "docs" / "architecture.md"
README = ROOT / "README.md"
FEATURES = ROOT / "docs" / "features.md"
README_SECTION = "## What you see after `./dev up`"


def _section(text: str, heading: str) -> str:
    """From `heading` to the next heading of its level (or the end)."""
    start = text.index(heading)
    following = re.search(r"^## ", text[start + len(heading) :], flags=re.MULTILINE)
    return text[start : start + len(heading) + following.start()] if following else text[start:]


def _house() -> str:
    section = _section(ARCHITECTURE.read_text(), "## The house")
    block = re.search(r"```\n(.*?)```", section, flags=re.DOTALL)
    assert block is not None, "docs/architecture.md: no picture under ## The house"
    return block[1]


def _drawn(entry: ServiceEntry, picture: str) -> bool:
    if entry.port is None:
        return re.search(rf"\b{re.escape(entry.name)}\b", picture) is not None
    return re.search(rf"\b{re.escape(entry.name)} \((?:HTTP )?{entry.port}\b", picture) is not None


def test_the_registry_has_the_services_these_checks_are_about() -> None:
    assert {"gateway", "venue", "inspector", "supervisor", "telegram"} <= set(SERVICES)


def test_the_house_picture_draws_every_service_with_its_port() -> None:
    picture = _house()
    missing = [f"{e.name} ({e.port})" for e in SERVICES.values() if not _drawn(e, picture)]
    assert missing == [], f"docs/architecture.md, The house: draw {missing}"


def test_the_readme_names_every_service_that_dev_up_starts() -> None:
    section = _section(README.read_text(), README_SECTION)
    missing = [name for name in SERVICES if f"`{name}`" not in section]
    assert missing == [], f"README.md, {README_SECTION[3:]}: name {missing}"


def test_the_features_page_has_a_row_for_every_service_and_the_readme_links_it() -> None:
    assert "](docs/features.md)" in README.read_text()
    table = FEATURES.read_text()
    missing = [name for name in SERVICES if f"| {name} | `trademesh {name}" not in table]
    assert missing == [], f"docs/features.md, The services: add a row for {missing}"


def test_a_service_missing_from_a_picture_is_caught() -> None:
    """The check itself: a picture without the supervisor's box does not pass for it."""
    supervisor = SERVICES["supervisor"]
    assert supervisor.port is not None
    assert _drawn(supervisor, f"supervisor ({supervisor.port})")
    assert not _drawn(supervisor, "the supervisors' proposals")
    assert not _drawn(supervisor, f"supervisor ({supervisor.port + 1})")
