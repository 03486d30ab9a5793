"""Debian's Prometheus (/usr/bin/prometheus) as a real process over a mesh: its config (every
service found through the gateway's HTTP service discovery with a read-only key), its start and
stop, and the HTTP API reads the tests make."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.integration.gateway_support import Gateway
from tests.integration.support import CALL_TIMEOUT_S
from trademesh.registry.v1 import registry_pb2 as reg

__all__ = [
    "KINDS",
    "PROMETHEUS",
    "PROMTOOL",
    "expected_labels",
    "free_port",
    "get_json",
    "prometheus",
    "stop_process",
    "up_targets",
]

PROMETHEUS = Path("/usr/bin/prometheus")
PROMTOOL = Path("/usr/bin/promtool")
# A scrape every 2 s, given up to 2 s to answer: a Python service on a loaded 2-core machine may
# take over 1 s for its /metrics now and then, which a 1 s timeout read as the target down.
SCRAPE_S = 2.0
EVALUATION_S = 1.0  # the rules' evaluation interval
KINDS = {reg.KIND_GATEWAY: "gateway", reg.KIND_VENUE: "venue", reg.KIND_CORE: "core"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _config(gateway: Gateway, key_file: Path, rule_files: Sequence[Path], alertmanager: str | None) -> str:
    config: dict[str, Any] = {
        "global": {
            "scrape_interval": f"{SCRAPE_S:g}s",
            "scrape_timeout": f"{SCRAPE_S:g}s",
            "evaluation_interval": f"{EVALUATION_S:g}s",
        },
        "scrape_configs": [
            {
                "job_name": "trademesh",
                "http_sd_configs": [
                    {
                        "url": f"{gateway.url}/prometheus/targets",
                        "refresh_interval": "1s",
                        "authorization": {"type": "Bearer", "credentials_file": str(key_file)},
                    }
                ],
            }
        ],
    }
    if rule_files:
        config["rule_files"] = [str(path) for path in rule_files]
    if alertmanager is not None:
        config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]}
    return json.dumps(config)  # JSON is YAML


def stop_process(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextlib.contextmanager
def prometheus(
    directory: Path,
    gateway: Gateway,
    key: str,
    rule_files: Sequence[Path] = (),
    alertmanager: str | None = None,
) -> Iterator[str]:
    """Prometheus scraping the gateway's targets every second (rules evaluated every second,
    alerts sent to `alertmanager`, host:port); its base URL."""
    for binary in (PROMETHEUS, PROMTOOL):
        if not binary.exists():
            pytest.fail(f"{binary} is missing: `./dev test` installs Debian's prometheus")
    key_file = directory / "gateway.key"
    key_file.write_text(key)
    config = directory / "prometheus.yml"
    config.write_text(_config(gateway, key_file, rule_files, alertmanager))
    address = f"127.0.0.1:{free_port()}"
    command = [
        str(PROMETHEUS),
        f"--config.file={config}",
        f"--storage.tsdb.path={directory / 'data'}",
        f"--web.listen-address={address}",
    ]
    with (directory / "prometheus.log").open("w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        try:
            yield f"http://{address}"
        finally:
            stop_process(process)


async def get_json(url: str, **params: str) -> Any:
    """The answer's JSON; None while the server is not answering yet (starting)."""
    timeout = aiohttp.ClientTimeout(total=CALL_TIMEOUT_S)
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.get(url, params=params) as reply,
        ):
            return await reply.json() if reply.status == 200 else None
    except aiohttp.ClientConnectorError:
        return None


async def up_targets(prometheus_url: str, count: int) -> list[dict[str, Any]] | None:
    """The active targets once `count` of the mesh's (job trademesh) are scraped up, else None."""
    answer = await get_json(f"{prometheus_url}/api/v1/targets", state="active")
    if answer is None:
        return None
    targets: list[dict[str, Any]] = answer["data"]["activeTargets"]
    up = [t for t in targets if t["labels"].get("job") == "trademesh" and t["health"] == "up"]
    return targets if len(up) == count else None


def expected_labels(instance: reg.Instance) -> dict[str, str]:
    """The labels a registered instance's target has (the gateway's service discovery)."""
    host = instance.address.rpartition(":")[0]
    labels = {
        "job": "trademesh",
        "instance": f"{host}:{instance.metrics_port}",
        "service": instance.name,
        "kind": KINDS[instance.kind],
        "instance_id": instance.instance_id,
    }
    if instance.kind == reg.KIND_VENUE:
        labels["venue"] = instance.name
    return labels
