"""trademesh.core.platform.replicas.pod_cost against a local stand-in of the Kubernetes API server (the real
REST path, a JSON merge patch, the bearer token, the Status bodies of its errors): a leader's pod
gets pod-deletion-cost 1000, a standby's 0, the last change wanted lands last; a refused or
unreachable API is one warning, never an error of the service."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tests.integration.prometheus_support import free_port
from trademesh.core.platform.replicas.pod_cost import (
    COST_ANNOTATION,
    LEADER_COST,
    POD_NAME,
    POD_NAMESPACE,
    STANDBY_COST,
    Pod,
    PodCost,
    pod_from_env,
)

pytestmark = pytest.mark.integration

TOKEN = "sa-token-of-the-leader-role"
NAMESPACE = "trademesh"
PATCH_TYPES = {
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/json-patch+json",
    "application/apply-patch+yaml",
}


def _status(code: int, reason: str, message: str) -> web.Response:
    body: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure"}
    body |= {"message": message, "reason": reason, "code": code}
    return web.json_response(body, status=code)


def _merge(target: Any, patch: Any) -> Any:
    """RFC 7386: what a merge patch makes of `target`."""
    if not isinstance(patch, dict):
        return patch
    merged = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = _merge(merged.get(key), value)
    return merged


class ApiServer:
    """The pods of one namespace, and every patch asked of them (content type, body)."""

    def __init__(self, pods: list[str]) -> None:
        self.pods: dict[str, dict[str, Any]] = {
            name: {"kind": "Pod", "apiVersion": "v1", "metadata": {"name": name, "namespace": NAMESPACE}}
            for name in pods
        }
        self.patches: list[tuple[str, str, Any]] = []

    def annotation(self, pod: str) -> str | None:
        value: str | None = self.pods[pod]["metadata"].get("annotations", {}).get(COST_ANNOTATION)
        return value

    async def patch(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return _status(401, "Unauthorized", "Unauthorized")
        namespace, name = request.match_info["namespace"], request.match_info["name"]
        if request.content_type not in PATCH_TYPES:
            return _status(415, "UnsupportedMediaType", "the body of the request was in an unknown format")
        text = await request.text()
        self.patches.append((name, request.content_type, json.loads(text)))
        if namespace != NAMESPACE or name not in self.pods:
            return _status(404, "NotFound", f'pods "{name}" not found')
        patch = json.loads(text)
        annotations = patch.get("metadata", {}).get("annotations", {})
        if request.content_type != "application/merge-patch+json" or not all(
            isinstance(v, str) for v in annotations.values()
        ):
            return _status(400, "BadRequest", "this stand-in takes string annotations by merge patch")
        self.pods[name] = _merge(self.pods[name], patch)
        return web.json_response(self.pods[name])


@contextlib.asynccontextmanager
async def api_server(pods: list[str]) -> AsyncIterator[tuple[ApiServer, str]]:
    server = ApiServer(pods)
    app = web.Application()
    app.router.add_patch("/api/v1/namespaces/{namespace}/pods/{name}", server.patch)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield server, f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def _token(tmp_path: Path, token: str = TOKEN) -> Path:
    path = tmp_path / "token"
    path.write_text(token + "\n")
    return path


async def test_the_leaders_pod_costs_1000_and_the_standbys_0_the_last_change_last(tmp_path: Path) -> None:
    async with api_server(["inspector-a", "inspector-b"]) as (api, url):
        leader = PodCost(Pod(url, NAMESPACE, "inspector-a", _token(tmp_path)))
        standby = PodCost(Pod(url, NAMESPACE, "inspector-b", _token(tmp_path)))
        leader.want(LEADER_COST)
        standby.want(STANDBY_COST)
        await leader.settled()
        await standby.settled()
        assert (api.annotation("inspector-a"), api.annotation("inspector-b")) == ("1000", "0")
        assert api.patches[0][1] == "application/merge-patch+json"
        # The leader killed, its pod gone; the standby leads (its want comes right after its first).
        standby.want(LEADER_COST)
        await standby.settled()
        assert api.annotation("inspector-b") == "1000" and standby.applied == LEADER_COST
        # Two changes at once: the last one wanted is the one that stays.
        leader.want(STANDBY_COST)
        leader.want(LEADER_COST)
        leader.want(STANDBY_COST)
        await leader.settled()
        assert api.annotation("inspector-a") == "0"
        assert [cost for name, _, patch in api.patches if name == "inspector-a"
                for cost in patch["metadata"]["annotations"].values()][-1] == "0"  # fmt: skip


@pytest.mark.parametrize("case", ["wrong token", "no such pod", "no API server"])
async def test_a_patch_that_fails_is_one_warning_and_never_an_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, case: str
) -> None:
    async with api_server(["ledger-a"]) as (api, url):
        token = _token(tmp_path, "another" if case == "wrong token" else TOKEN)
        name = "ledger-x" if case == "no such pod" else "ledger-a"
        where = f"http://127.0.0.1:{free_port()}" if case == "no API server" else url
        cost = PodCost(Pod(where, NAMESPACE, name, token))
        with caplog.at_level(logging.DEBUG, logger="trademesh.core.platform.replicas.pod_cost"):
            for wanted in (LEADER_COST, STANDBY_COST, LEADER_COST):
                cost.want(wanted)
                await cost.settled()
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1, [r.getMessage() for r in caplog.records]
        assert COST_ANNOTATION in warnings[0].getMessage()
        assert TOKEN not in caplog.text and "another" not in caplog.text  # never the token
        assert cost.applied is None and api.annotation("ledger-a") is None


def test_the_pod_is_known_only_in_kubernetes_with_a_token_and_its_names(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    in_cluster = {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    named = {**in_cluster, POD_NAME: "inspector-7d9-abc", POD_NAMESPACE: NAMESPACE}
    assert pod_from_env(named, tmp_path) is None  # no token mounted: most services
    _token(tmp_path)
    (tmp_path / "ca.crt").write_text("a CA\n")
    assert pod_from_env({POD_NAME: "p", POD_NAMESPACE: "n"}, tmp_path) is None  # not in Kubernetes
    pod = pod_from_env(named, tmp_path)
    assert pod is not None
    assert pod.url == f"https://10.96.0.1:443/api/v1/namespaces/{NAMESPACE}/pods/inspector-7d9-abc"
    assert pod.ca_path == tmp_path / "ca.crt"
    six = pod_from_env({**named, "KUBERNETES_SERVICE_HOST": "fd00::1"}, tmp_path)
    assert six is not None and six.api_url == "https://[fd00::1]:443"
    with caplog.at_level(logging.WARNING, logger="trademesh.core.platform.replicas.pod_cost"):
        assert pod_from_env(in_cluster, tmp_path) is None
    assert POD_NAME in caplog.text
