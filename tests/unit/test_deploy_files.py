"""docker-compose.yml and ops/Dockerfile, validated offline (no Docker engine here)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from core.cli import METRICS_PORT_OFFSET, build_parser
from venues.registry import VENUES

ROOT = Path(__file__).resolve().parents[2]


def _compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return loaded


def _ours() -> dict[str, Any]:
    """The services that run our image (Redis and PostgreSQL run their own)."""
    return {n: s for n, s in _compose()["services"].items() if s.get("image") == "trademesh:latest"}


def test_every_compose_command_is_a_valid_trademesh_command() -> None:
    services = _ours()
    assert services, "docker-compose.yml defines no services"
    for name, service in services.items():
        args = build_parser().parse_args(service["command"])
        assert args.command in {"venue", "ingest", "recorder", "bars", "bridge"}, name


def test_the_bus_services_reach_redis_and_postgres_by_service_name() -> None:
    compose = _compose()["services"]
    for name in ("ingest", "recorder", "bars", "bridge"):
        environment = compose[name]["environment"]
        assert environment["REDIS_URL"] == "redis://redis:6379/0"
        assert "@postgres:5432/" in environment["DATABASE_URL"]
        assert "redis" in compose[name]["depends_on"]
    assert "postgres" in compose["recorder"]["depends_on"]
    assert compose["postgres"]["image"].startswith("timescale/timescaledb:")


def test_each_registered_venue_runs_in_its_own_container_on_its_default_port() -> None:
    services = _compose()["services"]
    for venue in VENUES.values():
        service = services[f"venue-{venue.name}"]
        args = build_parser().parse_args(service["command"])
        assert (args.name, args.port, args.host) == (venue.name, venue.default_port, "0.0.0.0")
        published = {mapping.split(":")[0] for mapping in service["ports"]}
        assert published == {str(venue.default_port), str(venue.default_port + METRICS_PORT_OFFSET)}
        assert service["healthcheck"]["test"] == [
            "CMD",
            "trademesh",
            "health",
            f"127.0.0.1:{venue.default_port}",
        ]


def test_the_token_comes_from_the_environment_and_is_required() -> None:
    for service in _ours().values():
        assert service["environment"]["TRADEMESH_TOKEN"].startswith("${TRADEMESH_TOKEN:?")


def test_the_image_copies_every_python_package_and_runs_the_cli() -> None:
    dockerfile = (ROOT / "ops" / "Dockerfile").read_text()
    copied = set(re.findall(r"^COPY (\S+) \1$", dockerfile, flags=re.MULTILINE))
    pyproject = (ROOT / "pyproject.toml").read_text()
    roots = {"core", "venues", "gen"}
    assert roots <= copied
    assert all((ROOT / path).is_dir() for path in copied)
    assert 'where = [".", "gen"]' in pyproject
    assert 'ENTRYPOINT ["trademesh"]' in dockerfile
