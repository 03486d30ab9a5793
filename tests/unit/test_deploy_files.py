"""docker-compose.yml, ops/Dockerfile and `./dev compose`, validated offline (no Docker engine here)."""

from __future__ import annotations

import argparse
import fnmatch
import functools
import json
import os
import pickle
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from trademesh.core.cli import build_parser
from trademesh.core.domain.accounts import account_venue
from trademesh.core.platform.config.env import (
    ADVISOR_SIGNING_KEY,
    DETECTOR_SIGNING_KEY,
    REDIS_URL,
    VENUE_TRADE_TOKEN,
    venue_variable,
)
from trademesh.core.platform.service.command import load_command
from trademesh.core.platform.service.registry import (
    INFRASTRUCTURE,
    METRICS_PORT_OFFSET,
    SERVICES,
    Kind,
    ServiceEntry,
)
from trademesh.venues.registry import VENUES

ROOT = Path(__file__).resolve().parents[2]


@functools.cache
def _compose_pickled() -> bytes:
    """docker-compose.yml parsed once (libyaml's parser where built in), pickled."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return pickle.dumps(yaml.load((ROOT / "docker-compose.yml").read_text(), Loader=loader))


def _compose() -> dict[str, Any]:
    """docker-compose.yml, a copy the caller may change (unpickled: a deep copy, made faster
    than the file is parsed)."""
    loaded: dict[str, Any] = pickle.loads(_compose_pickled())
    return loaded


@functools.cache
def _cli() -> argparse.ArgumentParser:
    """The CLI's parser, built once (parsing leaves it as it was; building it costs ~50 ms)."""
    return build_parser()


def _ours() -> dict[str, Any]:
    """The services that run our image (Redis and PostgreSQL run their own)."""
    return {n: s for n, s in _compose()["services"].items() if s.get("image") == "trademesh:latest"}


# Where compose publishes ports: this host alone unless TRADEMESH_BIND says otherwise.
BIND = "${TRADEMESH_BIND:-127.0.0.1}"
LOOPBACK = "127.0.0.1"
# Published on this host alone whatever TRADEMESH_BIND says (no login of their own, or admin/admin).
LOOPBACK_ONLY = {"grafana", "loki"}


def _published(mapping: str) -> tuple[str, str, str]:
    """(interface, host port, container port) of a short-syntax port mapping: interface "" is
    every interface, host port "" Docker's choice."""
    interface = next((i for i in (BIND, LOOPBACK) if mapping.startswith(i + ":")), "")
    rest = mapping.removeprefix(interface + ":") if interface else mapping
    host, _, inside = rest.rpartition(":")
    return interface, host, inside


# The venue docker-compose's mesh services follow (as `trademesh up` does).
MESH_VENUE = "venue-sim"
# The example venue account (docs/accounts.md): its compose service, (exchange, account).
ACCOUNTS = {"venue-binance-desk-b": ("binance", "desk-b")}


# Services in the registry that compose does not run yet (ServiceEntry.deployed): each its own
# change adds to the mesh's files; this set names them so none goes missing unnoticed.
NOT_DEPLOYED: set[str] = set()
# Services compose runs only under a profile of their own (they need something from outside: a bot).
OPTIONAL = {"telegram": "telegram"}


def _deployed() -> list[ServiceEntry]:
    return [entry for entry in SERVICES.values() if entry.deployed]


def test_only_the_named_services_are_not_deployed_yet() -> None:
    assert {name for name, entry in SERVICES.items() if not entry.deployed} == NOT_DEPLOYED


def _compose_names(entry: ServiceEntry) -> list[str]:
    """The compose services that run a registry entry: one per venue and per example account
    for the venue kind."""
    if entry.kind is Kind.VENUE:
        return [f"venue-{venue}" for venue in VENUES] + list(ACCOUNTS)
    return [entry.name]


def test_compose_runs_exactly_the_registry_services_each_with_its_own_command() -> None:
    services = _ours()
    expected = {name: entry for entry in _deployed() for name in _compose_names(entry)}
    assert set(services) == set(expected)
    for name, service in services.items():
        args = _cli().parse_args(service["command"])
        assert args.command == expected[name].name, name


def test_each_compose_service_listens_publishes_and_is_checked_on_its_registry_ports() -> None:
    services = _ours()
    for entry in _deployed():
        if entry.kind is Kind.VENUE:
            continue  # per venue: the next test
        service = services[entry.name]
        args = _cli().parse_args(service["command"])
        assert (args.port, args.host) == (entry.port, "0.0.0.0"), entry.name
        grpc_port = entry.grpc_port or entry.port
        second = entry.grpc_port or entry.metrics_port
        assert {_published(m)[2] for m in service["ports"]} == {str(entry.port), str(second)}, entry.name
        assert service["healthcheck"]["test"] == ["CMD", "trademesh", "health", f"127.0.0.1:{grpc_port}"]


def test_compose_starts_what_each_service_depends_on_first() -> None:
    compose = _compose()["services"]
    for entry in _deployed():
        for name in _compose_names(entry):
            wanted = {MESH_VENUE if d == "venue" else d for d in entry.depends_on}
            assert wanted <= set(compose[name].get("depends_on", {})), name
            for dependency in wanted:
                assert compose[name]["depends_on"][dependency] == {"condition": "service_healthy"}


def test_every_dependency_in_the_registry_is_a_service_or_infrastructure() -> None:
    for entry in SERVICES.values():
        assert set(entry.depends_on) <= set(SERVICES) | INFRASTRUCTURE, entry.name


def test_the_bus_services_reach_redis_and_postgres_by_service_name() -> None:
    compose = _compose()["services"]
    database_url = _env_example("ops/trademesh-db.env")["DATABASE_URL"]
    assert "@postgres:5432/" in database_url
    redis_url = _env_example("ops/trademesh-redis.env")[REDIS_URL]
    assert re.fullmatch(r"redis://:[^@]+@redis:6379/0", redis_url)
    for name in ("ingest", "recorder", "bars", "bridge"):
        assert _env_files(compose[name])[:3] == [
            "ops/trademesh.env",
            "ops/trademesh-redis.env",
            "ops/trademesh-db.env",
        ]
        assert "redis" in compose[name]["depends_on"]
    assert "postgres" in compose["recorder"]["depends_on"]
    assert compose["postgres"]["image"].startswith("timescale/timescaledb:")
    assert _env_files(compose["postgres"]) == ["ops/trademesh-db.env"]
    password = _env_example("ops/trademesh-db.env")["POSTGRES_PASSWORD"]
    assert f":{password}@" in database_url


def test_the_services_that_follow_venues_find_them_through_the_gateway() -> None:
    """No service is given a venue: each follows every venue the gateway's registry lists, so
    every live venue that runs feeds the bus, the bars and the trading services."""
    compose = _compose()["services"]
    for name in ("ingest", "bars", "detector", "advisor", "inspector", "ledger"):
        args = _cli().parse_args(compose[name]["command"])
        assert (args.venue, args.mesh_config) == ([], None), name
    for name in ("ingest", "bars", "detector"):
        assert compose[name]["depends_on"]["gateway"] == {"condition": "service_healthy"}, name


def test_each_registered_venue_runs_in_its_own_container_on_its_default_port() -> None:
    services = _compose()["services"]
    for venue in VENUES.values():
        service = services[f"venue-{venue.name}"]
        args = _cli().parse_args(service["command"])
        assert (args.name, args.port, args.host) == (venue.name, venue.default_port, "0.0.0.0")
        published = {_published(mapping)[1:] for mapping in service["ports"]}
        ports = (str(venue.default_port), str(venue.default_port + METRICS_PORT_OFFSET))
        assert published == {(port, port) for port in ports}
        assert service["healthcheck"]["test"] == [
            "CMD",
            "trademesh",
            "health",
            f"127.0.0.1:{venue.default_port}",
        ]


# The env files compose reads secrets from: never committed, each with a committed example.
SECRET_FILES = {
    "ops/trademesh.env": {"TRADEMESH_TOKEN"},
    "ops/trademesh-redis.env": {"REDIS_PASSWORD", "REDIS_URL"},
    "ops/trademesh-db.env": {"POSTGRES_PASSWORD", "DATABASE_URL"},
    "ops/trademesh-trade.env": {"TRADEMESH_TRADE_TOKEN"},
    "ops/trademesh-advisor-signing.env": {ADVISOR_SIGNING_KEY},
    "ops/trademesh-detector-signing.env": {DETECTOR_SIGNING_KEY},
    "ops/trademesh-gateway.env": {"TRADEMESH_SESSION_SECRET"},
    "ops/trademesh-supervisor.env": {"TRADEMESH_SUPERVISOR_API_KEY"},
    "ops/trademesh-telegram.env": {
        "TRADEMESH_TELEGRAM_BOT_TOKEN",
        "TRADEMESH_TELEGRAM_API_KEY",
        "TRADEMESH_TELEGRAM_COMMAND_CHAT_IDS",
    },
}
SECRET_LOOKING = re.compile(r"TOKEN|SECRET|PASSWORD|PASSPHRASE|API_KEY|SIGNING_KEY|DATABASE_URL|REDIS_URL")


def _env_files(service: dict[str, Any]) -> list[str]:
    """The paths of a service's env_file entries (short or long syntax); [] when none."""
    entries = service.get("env_file", [])
    return [
        e if isinstance(e, str) else e["path"] for e in ([entries] if isinstance(entries, str) else entries)
    ]


def _env_example(path: str) -> dict[str, str]:
    lines = (ROOT / f"{path}.example").read_text().splitlines()
    pairs = [line.split("=", 1) for line in lines if line.strip() and not line.startswith("#")]
    return {key: value for key, value in pairs}


def test_secrets_come_from_env_files_that_are_never_committed() -> None:
    ignored = (ROOT / ".gitignore").read_text().splitlines()
    for path, variables in SECRET_FILES.items():
        assert any(fnmatch.fnmatch(path, pattern) for pattern in ignored), path
        assert set(_env_example(path)) == variables, path
    for name, service in _compose()["services"].items():
        for variable, value in (service.get("environment") or {}).items():
            if SECRET_LOOKING.search(variable):
                # Only the optional integrations' keys, from the environment, unset by default.
                assert re.fullmatch(r"\$\{[A-Z_]+:-\}", value), (name, variable)
        for path in _env_files(service):
            assert path in SECRET_FILES or re.fullmatch(r"ops/trademesh-venue-[a-z-]+\.env", path), path


def test_every_service_of_ours_gets_the_mesh_token() -> None:
    for name, service in _ours().items():
        assert "ops/trademesh.env" in _env_files(service), name


def test_only_venues_and_the_inspector_get_the_trading_credential() -> None:
    services = _ours()
    holders = {name for name, service in services.items() if "ops/trademesh-trade.env" in _env_files(service)}
    assert holders == {f"venue-{venue}" for venue in VENUES} | set(ACCOUNTS) | {"inspector"}
    for name, service in services.items():
        entry = SERVICES[_cli().parse_args(service["command"]).command]
        assert ("TRADEMESH_TRADE_TOKEN" in load_command(entry).secrets()) == (name in holders), name
    holding = [path for path, variables in SECRET_FILES.items() if "TRADEMESH_TRADE_TOKEN" in variables]
    assert holding == ["ops/trademesh-trade.env"]


def test_each_live_venue_reads_its_own_optional_credentials_file() -> None:
    services = _compose()["services"]
    for venue in VENUES:
        if venue == "sim":
            continue
        optional = {"path": f"ops/trademesh-venue-{venue}.env", "required": False}
        assert optional in services[f"venue-{venue}"]["env_file"], venue
    example = _env_example("ops/trademesh-venue.env")
    assert all(key.startswith("TRADEMESH_OKX_SWAP_") for key in example)


def test_each_example_account_runs_apart_with_its_own_credentials_under_its_own_profile() -> None:
    """docs/accounts.md: `venue EXCHANGE --account ACCOUNT` in its own container (the exchange's
    port inside, another published), registering under its compose name; its own optional
    credentials file, whose example names the documented variables; never paper; started only
    with `--profile accounts` (a live account without credentials refuses to start)."""
    services = _compose()["services"]
    published = [m for s in services.values() for m in s.get("ports", [])]
    for name, (exchange, account) in ACCOUNTS.items():
        service = services[name]
        args = _cli().parse_args(service["command"])
        port = VENUES[exchange].default_port
        assert (args.command, args.name, args.account) == ("venue", exchange, account), name
        assert (args.port, args.host, service["hostname"]) == (port, "0.0.0.0", name)
        ports = [_published(mapping)[1:] for mapping in service["ports"]]
        assert [inside for _, inside in ports] == [str(port), str(port + METRICS_PORT_OFFSET)], name
        hosts = [_published(mapping)[1] for mapping in published]
        assert all(hosts.count(host) == 1 for host, _ in ports), name  # host ports its own
        assert all(host != inside for host, inside in ports), name
        assert service["healthcheck"]["test"][-1] == f"127.0.0.1:{port}", name
        assert service["profiles"] == ["accounts"], name
        assert "TRADEMESH_PAPER" not in service["environment"] and "--paper" not in service["command"]
        own = {"path": f"ops/trademesh-venue-{exchange}-{account}.env", "required": False}
        assert own in service["env_file"], name
    venue = account_venue(*next(iter(ACCOUNTS.values())))
    example = _env_example("ops/trademesh-venue-account.env")
    assert set(example) == {venue_variable(venue, f) for f in ("API_KEY", "API_SECRET", "SANDBOX")}
    assert venue_variable(venue, VENUE_TRADE_TOKEN) == "TRADEMESH_BINANCE__DESK_B_TRADE_TOKEN"


def test_the_telegram_bot_runs_only_under_its_profile_with_its_own_secrets() -> None:
    """`docker compose --profile telegram up`: the bot, its token, key and chats from its own env
    file (the only service reading it); without the profile compose runs no bot."""
    services = _ours()
    for name, profile in OPTIONAL.items():
        assert services[name]["profiles"] == [profile], name
    readers = {n for n, s in services.items() if "ops/trademesh-telegram.env" in _env_files(s)}
    assert readers == {"telegram"}
    args = _cli().parse_args(services["telegram"]["command"])
    assert args.gateway_url == "http://gateway:8081"


def test_the_live_venues_paper_trade_when_told_and_the_sim_never() -> None:
    """TRADEMESH_PAPER=1 docker compose --profile live up: every live venue paper-trades (the
    variable trademesh/venues/command.py reads); unset, none does."""
    services = _compose()["services"]
    parser = _cli()
    for venue in VENUES:
        environment = services[f"venue-{venue}"]["environment"]
        if venue == "sim":
            assert "TRADEMESH_PAPER" not in environment
            continue
        assert environment["TRADEMESH_PAPER"] == "${TRADEMESH_PAPER:-0}", venue
        assert environment["TRADEMESH_GATEWAY"] == "gateway:8082", venue  # the shared ones kept
        command = services[f"venue-{venue}"]["command"]
        assert parser.parse_args(command).name == venue and "--paper" not in command


def test_every_venue_writes_its_own_streams_to_the_bus_unless_told_otherwise() -> None:
    """The direct path (docs/bus.md): each venue container, the accounts' too, has the bus and
    TRADEMESH_BUS_DIRECT on by default (`TRADEMESH_BUS_DIRECT=0 docker compose up`: ingest)."""
    services = _compose()["services"]
    for name in [f"venue-{venue}" for venue in VENUES] + list(ACCOUNTS):
        environment = services[name]["environment"]
        assert environment["TRADEMESH_BUS_DIRECT"] == "${TRADEMESH_BUS_DIRECT:-1}", name
        assert "ops/trademesh-redis.env" in _env_files(services[name]), name  # REDIS_URL, with its password
        assert environment["TRADEMESH_GATEWAY"] == "gateway:8082", name  # the shared ones kept


def test_containers_log_json_lines_unless_told_otherwise() -> None:
    for name, service in _ours().items():
        assert service["environment"]["TRADEMESH_LOG_FORMAT"] == "${TRADEMESH_LOG_FORMAT:-json}", name


def test_the_image_copies_every_python_package_and_runs_the_cli() -> None:
    dockerfile = (ROOT / "ops" / "Dockerfile").read_text()
    copied = set(re.findall(r"^COPY (\S+) \1$", dockerfile, flags=re.MULTILINE))
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert "trademesh" in copied
    assert all((ROOT / path).is_dir() for path in copied)
    assert 'include = ["trademesh", "trademesh.*"]' in pyproject
    assert 'ENTRYPOINT ["trademesh"]' in dockerfile


# The services compose scales (deploy.replicas from the environment; one by default).
SCALED = ("ingest", "recorder", "bars", "bridge")


def test_every_service_registers_with_the_gateway_under_a_name_the_others_resolve() -> None:
    services = _ours()
    for name, service in services.items():
        assert service["environment"]["TRADEMESH_GATEWAY"] == "gateway:8082", name
        if name in SCALED:
            # Its replicas register each under its own hostname (the container's id, which
            # Docker's DNS resolves): no `hostname:` they would all share.
            assert "hostname" not in service, name
            variable = f"TRADEMESH_{name.upper()}_REPLICAS"
            assert service["deploy"]["replicas"] == f"${{{variable}:-1}}", name
            assert all(_published(mapping)[1] == "" for mapping in service["ports"]), name
        else:
            # A service bound to 0.0.0.0 registers under its hostname: it must be its compose name.
            assert service["hostname"] == name
            assert "replicas" not in service.get("deploy", {}), name
    gateway = _cli().parse_args(services["gateway"]["command"])
    assert (gateway.port, gateway.grpc_port, gateway.host) == (8081, 8082, "0.0.0.0")
    assert services["gateway"]["healthcheck"]["test"][-1] == "127.0.0.1:8082"
    assert "ops/trademesh-gateway.env" in _env_files(services["gateway"])


def test_every_service_has_a_health_check() -> None:
    services = _compose()["services"]
    for name, service in _ours().items():
        assert service["healthcheck"]["test"][:3] == ["CMD", "trademesh", "health"], name
    for name in ("redis", "postgres"):
        assert "healthcheck" in services[name], name


def test_the_image_builds_studio_and_the_gateway_serves_it_from_there() -> None:
    dockerfile = (ROOT / "ops" / "Dockerfile").read_text()
    command = _ours()["gateway"]["command"]
    studio_dir = command[command.index("--studio-dir") + 1]
    assert f"COPY --from=studio /src/dist {studio_dir.removeprefix('/app/')}" in dockerfile
    assert "RUN npm ci" in dockerfile and "RUN npm run build" in dockerfile
    scripts = json.loads((ROOT / "trademesh" / "gateway" / "studio" / "package.json").read_text())["scripts"]
    assert "build" in scripts


def test_envoy_routes_reach_compose_services_on_their_ports() -> None:
    envoy = yaml.safe_load((ROOT / "ops" / "envoy" / "envoy.yaml").read_text())
    services = _compose()["services"]
    for cluster in envoy["static_resources"]["clusters"]:
        endpoint = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]
        address = endpoint["address"]["socket_address"]
        args = _cli().parse_args(services[address["address"]]["command"])
        assert args.port == address["port_value"], cluster["name"]
    listener = envoy["static_resources"]["listeners"][0]
    manager = listener["filter_chains"][0]["filters"][0]["typed_config"]
    filters = [f["name"] for f in manager["http_filters"]]
    assert filters[0] == "envoy.filters.http.grpc_web" and filters[-1] == "envoy.filters.http.router"
    published = _published(services["envoy"]["ports"][0])[1]
    assert int(published) == listener["address"]["socket_address"]["port_value"]


def _prometheus_config() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "ops" / "prometheus" / "prometheus.yml").read_text())
    return loaded


def test_prometheus_and_alertmanager_run_pinned_under_the_watch_profile() -> None:
    services = _compose()["services"]
    images = {name: services[name]["image"] for name in ("prometheus", "alertmanager")}
    assert re.fullmatch(r"prom/prometheus:v2\.53\.\d+", images["prometheus"])
    assert re.fullmatch(r"prom/alertmanager:v0\.27\.\d+", images["alertmanager"])
    for name in images:
        assert services[name]["profiles"] == ["watch"], name
        assert services[name]["healthcheck"]["test"][0] == "CMD", name
    assert "./ops/prometheus:/etc/prometheus:ro" in services["prometheus"]["volumes"]


def test_prometheus_discovers_the_mesh_at_the_gateway_with_a_key_never_committed() -> None:
    compose = _compose()
    gateway = _cli().parse_args(compose["services"]["gateway"]["command"])
    jobs = {job["job_name"]: job for job in _prometheus_config()["scrape_configs"]}
    (sd,) = jobs["trademesh"]["http_sd_configs"]
    assert sd["url"] == f"http://gateway:{gateway.port}/prometheus/targets"
    secret = compose["services"]["prometheus"]["secrets"][0]
    assert sd["authorization"]["credentials_file"] == f"/run/secrets/{secret}"
    key_file = compose["secrets"][secret]["file"]
    assert key_file in (ROOT / ".gitignore").read_text().splitlines()


def test_prometheus_loads_the_rules_and_alerts_through_compose_alertmanager() -> None:
    config = _prometheus_config()
    assert config["rule_files"] == ["rules/*.yml"]
    (alertmanagers,) = config["alerting"]["alertmanagers"]
    (targets,) = alertmanagers["static_configs"]
    alertmanager = _compose()["services"]["alertmanager"]
    assert targets["targets"] == ["alertmanager:9093"]
    assert [_published(m) for m in alertmanager["ports"]] == [(BIND, "9093", "9093")]
    assert any(v.startswith("./ops/prometheus/alertmanager.yml:") for v in alertmanager["volumes"])


def _yaml(path: str) -> Any:
    return yaml.safe_load((ROOT / path).read_text())


def _mounts(service: dict[str, Any]) -> dict[str, str]:
    """A service's bind mounts, source to target, read-only ones only."""
    mounts = {}
    for volume in service["volumes"]:
        source, target, *mode = volume.split(":")
        if mode == ["ro"]:
            mounts[source] = target
    return mounts


def test_grafana_runs_pinned_under_the_watch_profile_with_its_provisioning_read_only() -> None:
    services = _compose()["services"]
    grafana = services["grafana"]
    assert re.fullmatch(r"grafana/grafana:11\.\d+\.\d+", grafana["image"])
    assert grafana["profiles"] == ["watch"]
    assert grafana["depends_on"]["prometheus"] == {"condition": "service_healthy"}
    assert grafana["healthcheck"]["test"][0] == "CMD"
    mounts = _mounts(grafana)
    assert mounts["./ops/grafana/provisioning"] == "/etc/grafana/provisioning"
    (provider,) = _yaml("ops/grafana/provisioning/dashboards/trademesh.yml")["providers"]
    assert mounts["./ops/grafana/dashboards"] == provider["options"]["path"]
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home.startswith(provider["options"]["path"] + "/")
    assert (ROOT / "ops/grafana/dashboards" / home.rsplit("/", 1)[1]).is_file()
    assert all(not port.startswith("3000") for port in grafana["ports"]), "Grafana on this host only"


def test_grafana_reads_prometheus_and_loki_by_the_uids_the_dashboards_name() -> None:
    services = _compose()["services"]
    provisioned = _yaml("ops/grafana/provisioning/datasources/trademesh.yml")["datasources"]
    sources = {source["uid"]: source for source in provisioned}
    assert {uid: s["type"] for uid, s in sources.items()} == {"prometheus": "prometheus", "loki": "loki"}
    prometheus = sources["prometheus"]
    assert prometheus["url"] == "http://prometheus:9090"
    assert [_published(m) for m in services["prometheus"]["ports"]] == [(BIND, "9090", "9090")]
    assert prometheus["jsonData"]["timeInterval"] == _prometheus_config()["global"]["scrape_interval"]
    loki_port = _yaml("ops/loki/loki.yml")["server"]["http_listen_port"]
    assert sources["loki"]["url"] == f"http://loki:{loki_port}"
    used = {
        target["datasource"]["uid"]
        for path in (ROOT / "ops/grafana/dashboards").glob("*.json")
        for panel in json.loads(path.read_text())["panels"]
        for target in panel["targets"]
    }
    assert used == set(sources)


# The Alloy components the shipper's config defines: `kind.name "label" {`.
_ALLOY_BLOCK = re.compile(r'^([a-z_]+(?:\.[a-z_]+)+) "(\w+)" \{$', re.MULTILINE)
_ALLOY_REFERENCE = re.compile(
    r"\b((?:discovery|loki)\.[a-z_]+(?:\.[a-z_]+)?)\.(\w+)\.(receiver|targets|rules)\b"
)


def test_loki_and_alloy_run_pinned_under_the_logs_profile_reading_the_docker_socket() -> None:
    services = _compose()["services"]
    loki, alloy = services["loki"], services["alloy"]
    assert re.fullmatch(r"grafana/loki:3\.\d+\.\d+", loki["image"])
    assert re.fullmatch(r"grafana/alloy:v1\.\d+\.\d+", alloy["image"])
    assert loki["profiles"] == alloy["profiles"] == ["logs"]
    config = _mounts(loki)["./ops/loki/loki.yml"]
    assert loki["command"] == [f"-config.file={config}"]
    alloy_config = _mounts(alloy)["./ops/loki/config.alloy"]
    assert alloy["command"][0] == "run" and alloy["command"][-1] == alloy_config
    assert _mounts(alloy)["/var/run/docker.sock"] == "/var/run/docker.sock"
    assert alloy["depends_on"]["loki"] == {"condition": "service_started"}


def test_loki_keeps_its_data_on_the_volume_and_a_week_of_lines() -> None:
    config = _yaml("ops/loki/loki.yml")
    volume = next(v for v in _compose()["services"]["loki"]["volumes"] if v.startswith("loki-data:"))
    assert config["common"]["path_prefix"] == volume.split(":")[1]
    (schema,) = config["schema_config"]["configs"]
    assert (schema["store"], schema["schema"], schema["object_store"]) == ("tsdb", "v13", "filesystem")
    assert config["limits_config"]["retention_period"] == "168h"
    assert config["compactor"]["retention_enabled"] is True


def test_alloy_ships_the_projects_containers_to_loki_labelled_by_service_and_container() -> None:
    """Alloy's config is not YAML and Alloy is not installable here: its structure is checked as
    text (every component it forwards to is defined, the push URL is compose's Loki)."""
    text = (ROOT / "ops/loki/config.alloy").read_text()
    code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("//"))
    assert code.count("{") == code.count("}")
    defined = set(_ALLOY_BLOCK.findall(code))
    assert {kind for kind, _ in defined} == {
        "discovery.docker", "discovery.relabel", "loki.source.docker", "loki.process", "loki.write",
    }  # fmt: skip
    referenced = {(kind, label) for kind, label, _ in _ALLOY_REFERENCE.findall(code)}
    assert referenced and referenced <= defined
    assert 'host = "unix:///var/run/docker.sock"' in code
    assert f'"com.docker.compose.project={_compose()["name"]}"' in code
    port = _yaml("ops/loki/loki.yml")["server"]["http_listen_port"]
    assert f'url = "http://loki:{port}/loki/api/v1/push"' in code
    targets = set(re.findall(r'target_label\s*=\s*"(\w+)"', code))
    assert targets == {"service", "container"}
    # The compose service, less "venue-": Prometheus's `service` label for the same process.
    assert re.search(r'regex\s*=\s*"\(\?:venue-\)\?\(\.\+\)"', code)
    assert "stage.json" in code


# --- what compose exposes, and what it may use (issue 56) ----------------------------------------


def _exposure_problems(services: dict[str, Any]) -> list[str]:
    """Every published port on this host alone by default (TRADEMESH_BIND to publish further;
    Grafana and Loki never further): the venues take orders, the gateway and the inspector act."""
    problems = []
    for name, service in services.items():
        wanted = LOOPBACK if name in LOOPBACK_ONLY else BIND
        for mapping in service.get("ports", []):
            if _published(mapping)[0] != wanted:
                problems.append(f"{name}: {mapping} is not bound to {wanted}")
    return problems


# Each service's resident memory at rest, MiB: `trademesh up` (the sim's demo market), sampled
# every 15 s from 30 s to 150 s after its start, the highest (docs/kubernetes.md, "Resource
# limits"). Redis: the embedded one's; the live venues were not measured (no exchange here).
MEASURED_RSS_MIB = {
    "venue-sim": 70, "redis": 11, "ingest": 59, "recorder": 64, "bars": 62, "bridge": 60,
    "overwatch": 60, "supervisor": 121, "screener": 59, "detector": 67, "advisor": 220,
    "inspector": 71, "ledger": 65, "backtester": 63, "gateway": 114,
    "venue-node-ref": 136,  # `node dist/main.js`, its default history, from 30 s to 90 s
}  # fmt: skip
# A limit this many times the measured figure at least: room for a busy market and a burst.
HEADROOM = 3
# Sized by the model it serves, on a GPU (its own profile): the operator's to set.
UNLIMITED = {"vllm"}


def _mebibytes(size: str) -> float:
    number, unit = re.fullmatch(r"(\d+(?:\.\d+)?)([MG])", size).groups()  # type: ignore[union-attr]
    return float(number) * (1024 if unit == "G" else 1)


def _limit_problems(services: dict[str, Any]) -> list[str]:
    """Every container has a CPU and a memory limit, and the memory one is HEADROOM times what the
    service was measured at."""
    problems = []
    for name, service in services.items():
        if name in UNLIMITED:
            continue
        limits = service.get("deploy", {}).get("resources", {}).get("limits", {})
        if set(limits) != {"cpus", "memory"}:
            problems.append(f"{name}: limits {limits}, not cpus and memory")
            continue
        measured = MEASURED_RSS_MIB.get(name)
        if measured is not None and _mebibytes(limits["memory"]) < HEADROOM * measured:
            problems.append(f"{name}: {limits['memory']} under {HEADROOM} x its measured {measured} MiB")
    return problems


def _redis_problems(services: dict[str, Any]) -> list[str]:
    """Redis requires the password of ops/trademesh-redis.env (an empty one ends its start); its
    health check asks with it; every
    service of ours reads REDIS_URL (the same password) from that file, never from `environment`."""
    problems = []
    redis = services["redis"]
    if '--requirepass "$${REDIS_PASSWORD:?' not in " ".join(redis["command"]):
        problems.append(f"redis: {redis['command']} requires no password")
    if _env_files(redis) != ["ops/trademesh-redis.env"]:
        problems.append(f"redis: env files {_env_files(redis)}")
    check = " ".join(redis["healthcheck"]["test"])
    if "REDISCLI_AUTH=" not in check or "grep -qx PONG" not in check:
        problems.append(f"redis: health check {check!r} does not check PONG with the password")
    for name, service in services.items():
        if service.get("image") != "trademesh:latest":
            continue
        if "ops/trademesh-redis.env" not in _env_files(service):
            problems.append(f"{name}: no REDIS_URL (ops/trademesh-redis.env)")
        environment = service.get("environment") or {}
        if REDIS_URL in environment or any("redis://" in str(v) for v in environment.values()):
            problems.append(f"{name}: a Redis URL in `environment`, without the password")
    return problems


# The signing keys' files and who holds each: its writer and the inspector (docs/bus.md).
SIGNING_FILES = {
    "ops/trademesh-advisor-signing.env": (ADVISOR_SIGNING_KEY, {"advisor", "inspector"}),
    "ops/trademesh-detector-signing.env": (DETECTOR_SIGNING_KEY, {"detector", "inspector"}),
}


def _signing_problems(services: dict[str, Any]) -> list[str]:
    """Each signing key's file reaches its holders alone, as their ServiceCommands declare."""
    problems = []
    for path, (key, wanted) in SIGNING_FILES.items():
        holders = set()
        for name, service in services.items():
            if service.get("image") != "trademesh:latest":
                continue
            entry = SERVICES[_cli().parse_args(service["command"]).command]
            given = path in _env_files(service)
            if given != (key in load_command(entry).secrets()):
                problems.append(f"{name}: given {path} {given}, its ServiceCommand holds {key}: {not given}")
            if given:
                holders.add(name)
        if holders != wanted:
            problems.append(f"{path}: given to {sorted(holders)}, not {sorted(wanted)}")
    return problems


def test_every_published_port_is_bound_to_this_host_by_default() -> None:
    assert _exposure_problems(_compose()["services"]) == []


def test_every_container_has_limits_with_room_over_its_measured_memory() -> None:
    services = _compose()["services"]
    assert _limit_problems(services) == []
    assert set(MEASURED_RSS_MIB) <= set(services)


def test_redis_requires_the_password_every_service_connects_with() -> None:
    assert _redis_problems(_compose()["services"]) == []
    example = _env_example("ops/trademesh-redis.env")
    assert f":{example['REDIS_PASSWORD']}@redis:6379/" in example[REDIS_URL]


def test_each_signing_key_reaches_its_writer_and_the_inspector_alone() -> None:
    assert _signing_problems(_compose()["services"]) == []
    for path, (key, _) in SIGNING_FILES.items():
        assert set(_env_example(path)) == {key}, path


def _open_gateway(services: dict[str, Any]) -> None:
    services["gateway"]["ports"] = ["8081:8081", "8082:8082"]


def _open_venue(services: dict[str, Any]) -> None:
    services["venue-okx"]["ports"][0] = "0.0.0.0:5063:5063"


def _grafana_follows_bind(services: dict[str, Any]) -> None:
    services["grafana"]["ports"] = [f"{BIND}:3000:3000"]


def _no_limits(services: dict[str, Any]) -> None:
    del services["inspector"]["deploy"]


def _limits_of_replicas_lost(services: dict[str, Any]) -> None:
    del services["recorder"]["deploy"]["resources"]


def _limit_below_measured(services: dict[str, Any]) -> None:
    services["advisor"]["deploy"]["resources"]["limits"]["memory"] = "256M"


def _redis_without_password(services: dict[str, Any]) -> None:
    services["redis"]["command"] = ["redis-server", "--appendonly", "yes"]


def _redis_with_an_empty_password(services: dict[str, Any]) -> None:
    services["redis"]["command"] = ["sh", "-c", 'exec redis-server --requirepass "$$REDIS_PASSWORD"']


def _redis_url_in_environment(services: dict[str, Any]) -> None:
    services["bars"]["environment"] = {**services["bars"]["environment"], REDIS_URL: "redis://redis:6379/0"}


def _service_without_the_bus_password(services: dict[str, Any]) -> None:
    services["ledger"]["env_file"] = [f for f in _env_files(services["ledger"]) if "redis" not in f]


def _signing_key_leaks(services: dict[str, Any]) -> None:
    services["bridge"]["env_file"] = [*_env_files(services["bridge"]), "ops/trademesh-advisor-signing.env"]


def _inspector_without_a_key(services: dict[str, Any]) -> None:
    files = _env_files(services["inspector"])
    services["inspector"]["env_file"] = [f for f in files if f != "ops/trademesh-detector-signing.env"]


@pytest.mark.parametrize(
    ("breakage", "check"),
    [
        (_open_gateway, _exposure_problems),
        (_open_venue, _exposure_problems),
        (_grafana_follows_bind, _exposure_problems),
        (_no_limits, _limit_problems),
        (_limits_of_replicas_lost, _limit_problems),
        (_limit_below_measured, _limit_problems),
        (_redis_without_password, _redis_problems),
        (_redis_with_an_empty_password, _redis_problems),
        (_redis_url_in_environment, _redis_problems),
        (_service_without_the_bus_password, _redis_problems),
        (_signing_key_leaks, _signing_problems),
        (_inspector_without_a_key, _signing_problems),
    ],
)
def test_a_broken_compose_file_is_caught(
    breakage: Callable[[dict[str, Any]], None], check: Callable[[dict[str, Any]], list[str]]
) -> None:
    services = _compose()["services"]
    assert check(services) == []
    breakage(services)
    assert check(services) != []


# --- ./dev compose: Docker Compose 2.24 or newer ------------------------------------------------


def _dev_compose(tmp_path: Path, version: str | None) -> subprocess.CompletedProcess[str]:
    """`./dev compose ps` with a stand-in `docker` on PATH that reports `version` (None: no
    `docker compose` at all) and otherwise prints what it was asked."""
    fake = tmp_path / "docker"
    answer = "exit 1" if version is None else f'echo "{version}"; exit 0'
    fake.write_text(f'#!/bin/sh\nif [ "$1 $2" = "compose version" ]; then {answer}; fi\necho "docker $*"\n')
    fake.chmod(0o755)
    environment = {**os.environ, "PATH": f"{tmp_path}:/usr/bin:/bin"}
    command = [str(ROOT / "dev"), "compose", "ps", "--all"]
    return subprocess.run(command, capture_output=True, text=True, env=environment, timeout=30, check=False)


@pytest.mark.parametrize("version", ["2.24.0", "v2.29.7", "2.32.4-desktop.1"])
def test_dev_compose_runs_docker_compose_from_2_24(tmp_path: Path, version: str) -> None:
    done = _dev_compose(tmp_path, version)
    assert (done.returncode, done.stdout) == (0, "docker compose ps --all\n")


@pytest.mark.parametrize("version", ["2.20.3", "v2.23.9", "1.29.2", None])
def test_dev_compose_refuses_an_older_compose_and_says_which(tmp_path: Path, version: str | None) -> None:
    done = _dev_compose(tmp_path, version)
    assert done.returncode == 2 and done.stdout == ""
    assert "needs Docker Compose 2.24.0 or newer" in done.stderr
    if version is not None:
        assert version.removeprefix("v") in done.stderr


def test_the_compose_file_and_the_docs_say_compose_2_24() -> None:
    assert "Needs Docker Compose 2.24 or newer" in (ROOT / "docker-compose.yml").read_text()
    for doc in ("README.md", "docs/kubernetes.md"):
        assert "Compose 2.24" in (ROOT / doc).read_text(), doc


# --- a venue in another language (docs/venues.md): its own image, under its own profile ----------

NODE_REF = "venue-node-ref"
NODE_REF_DIR = ROOT / "trademesh" / "venues" / "node_ref"


def _node_ref_port() -> str:
    """Its default port, from its static facts (src/config.ts)."""
    found = re.search(
        r"^export const DEFAULT_PORT = (\d+);$", (NODE_REF_DIR / "src" / "config.ts").read_text(), re.M
    )
    assert found is not None
    return found[1]


def test_the_venue_in_typescript_runs_its_own_image_under_its_profile_with_the_venues_tokens() -> None:
    service = _compose()["services"][NODE_REF]
    port = _node_ref_port()
    assert ROOT / service["build"]["context"] == NODE_REF_DIR
    assert (service["profiles"], service["image"]) == (["node-ref"], "trademesh-node-ref:latest")
    assert service["command"] == ["--host", "0.0.0.0", "--port", port]
    assert {_published(mapping)[1:] for mapping in service["ports"]} == {(port, port)}
    check = service["healthcheck"]["test"]
    assert check[:3] == ["CMD", "node", "-e"] and f"'127.0.0.1:{port}'" in check[3], check
    assert "r.status==='SERVING'" in check[3], check
    # The mesh token and the trading credential, as every venue; no bus: ingest feeds its streams.
    assert _env_files(service) == ["ops/trademesh.env", "ops/trademesh-trade.env"]
    assert (service["environment"]["TRADEMESH_GATEWAY"], service["hostname"]) == ("gateway:8082", NODE_REF)
    assert service["read_only"] is True


def test_the_venue_in_typescript_is_built_in_two_stages_on_a_pinned_slim_node_and_runs_unprivileged() -> None:
    dockerfile = (NODE_REF_DIR / "Dockerfile").read_text()
    stages = re.findall(r"^FROM (\S+)", dockerfile, flags=re.MULTILINE)
    assert len(stages) == 2 and len(set(stages)) == 1, stages
    assert re.fullmatch(r"node:\d+\.\d+\.\d+-slim", stages[0]), stages
    engines = json.loads((NODE_REF_DIR / "package.json").read_text())["engines"]["node"]
    assert int(stages[0].split(":")[1].split(".")[0]) >= int(engines.removeprefix(">="))
    runtime = dockerfile.rpartition("\nFROM ")[2]  # the last stage: what runs
    assert "npm" not in runtime and "COPY --from=build /src/dist ./dist" in runtime
    assert re.search(r"^USER 10001:10001$", runtime, flags=re.MULTILINE)
    assert 'ENTRYPOINT ["node", "dist/main.js"]' in runtime
    assert f"EXPOSE {_node_ref_port()}" in runtime
    # Installed and built in the image, never sent from this machine's checkout.
    assert {"node_modules", "dist"} <= set((NODE_REF_DIR / ".dockerignore").read_text().split())
