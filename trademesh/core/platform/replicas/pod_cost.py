"""A replica's own pod-deletion-cost on Kubernetes: the standby goes first in a rollout.

A ReplicaSet scaling down deletes, among pods equally ready, the one with the lowest
`controller.kubernetes.io/pod-deletion-cost` first. A single writer's leader sets its pod's to
LEADER_COST and a standby its pod's to STANDBY_COST (trademesh.core.platform.service.lifecycle: `ready()` and
`standby()`), so a rollout replaces the standby first and the leader last, which then releases
its lease to a new standby (trademesh.core.platform.replicas.leader).

Only in a pod that can: KUBERNETES_SERVICE_HOST set, the service account's token mounted (the
leader/standby services alone mount one: ops/k8s, with a Role to patch pods), and POD_NAME and
POD_NAMESPACE from the downward API. The call is one JSON merge patch of the pod over the
Kubernetes REST API, with the token (read at each call: the kubelet rotates it) and the
cluster's CA. It is an optimisation of rollouts, nothing depends on it: a failure is logged once
as a warning and never ends the process.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import ssl
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "COST_ANNOTATION",
    "LEADER_COST",
    "POD_NAME",
    "POD_NAMESPACE",
    "STANDBY_COST",
    "PatchFailed",
    "Pod",
    "PodCost",
    "pod_from_env",
]

log = logging.getLogger(__name__)

COST_ANNOTATION = "controller.kubernetes.io/pod-deletion-cost"
LEADER_COST = "1000"
STANDBY_COST = "0"
# The pod's own name and namespace (the downward API's metadata.name and metadata.namespace).
POD_NAME = "POD_NAME"
POD_NAMESPACE = "POD_NAMESPACE"
_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")
_TIMEOUT_S = 5.0
_MERGE_PATCH = "application/merge-patch+json"


class PatchFailed(Exception):
    """The patch did not land: the API server refused it, or could not be reached."""


@dataclass(frozen=True)
class Pod:
    """Where this pod is, and how to reach its API server."""

    api_url: str  # https://<host>:<port>; a test's stand-in may be plain http
    namespace: str
    name: str
    token_path: Path
    ca_path: Path | None = None  # None: the system's CAs (or none, over http)

    @property
    def url(self) -> str:
        namespace, name = (urllib.parse.quote(part, safe="") for part in (self.namespace, self.name))
        return f"{self.api_url}/api/v1/namespaces/{namespace}/pods/{name}"


def pod_from_env(env: Mapping[str, str] = os.environ, account: Path = _ACCOUNT) -> Pod | None:
    """This pod, when it runs in Kubernetes with a service account token; None elsewhere."""
    host = env.get("KUBERNETES_SERVICE_HOST", "").strip()
    token = account / "token"
    if not host or not token.is_file():
        return None
    name, namespace = env.get(POD_NAME, "").strip(), env.get(POD_NAMESPACE, "").strip()
    if not name or not namespace:
        log.warning(
            "pod-deletion-cost not set: %s and %s name no pod (the downward API)", POD_NAME, POD_NAMESPACE
        )
        return None
    port = env.get("KUBERNETES_SERVICE_PORT", "443").strip() or "443"
    host = f"[{host}]" if ":" in host else host  # an IPv6 service address
    ca = account / "ca.crt"
    return Pod(f"https://{host}:{port}", namespace, name, token, ca if ca.is_file() else None)


async def patch_cost(pod: Pod, cost: str) -> None:
    """One merge patch of the pod's annotation; PatchFailed (or OSError: the token unreadable)."""
    import aiohttp  # here: the processes that never set a cost (most) are spared its import

    token = pod.token_path.read_text().strip()
    headers = {"Authorization": f"Bearer {token}", "Content-Type": _MERGE_PATCH, "Accept": "application/json"}
    body = json.dumps({"metadata": {"annotations": {COST_ANNOTATION: cost}}})
    verify: ssl.SSLContext | bool = True
    if pod.ca_path is not None:
        verify = ssl.create_default_context(cafile=str(pod.ca_path))
    timeout = aiohttp.ClientTimeout(total=_TIMEOUT_S)
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.patch(pod.url, data=body, headers=headers, ssl=verify) as response,
        ):
            if response.status >= 300:
                raise PatchFailed(f"HTTP {response.status}: {(await response.text())[:200]}")
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise PatchFailed(str(exc) or type(exc).__name__) from exc


class PodCost:
    """This pod's deletion cost as the process wants it: each change patched in the background,
    in order, the last wanted one last."""

    def __init__(self, pod: Pod) -> None:
        self.pod = pod
        self.applied: str | None = None
        self._wanted: str | None = None
        self._task: asyncio.Task[None] | None = None
        self._warned = False

    @classmethod
    def from_env(cls) -> PodCost | None:
        pod = pod_from_env()
        return None if pod is None else cls(pod)

    def want(self, cost: str) -> None:
        """Set the pod's cost to `cost` soon (the caller does not wait on the API server)."""
        self._wanted = cost
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._apply(), name="pod-deletion-cost")

    async def settled(self) -> None:
        """Until the changes wanted so far were tried."""
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _apply(self) -> None:
        while self._wanted is not None and self._wanted != self.applied:
            cost = self._wanted
            try:
                await patch_cost(self.pod, cost)
            except (PatchFailed, OSError) as exc:
                self._warn(cost, exc)
                return
            self.applied = cost
            log.info("pod %s/%s: %s %s", self.pod.namespace, self.pod.name, COST_ANNOTATION, cost)

    def _warn(self, cost: str, exc: BaseException) -> None:
        level = logging.DEBUG if self._warned else logging.WARNING
        self._warned = True
        log.log(
            level,
            "pod %s/%s: could not set %s to %s (rollouts may replace the leader first): %s",
            self.pod.namespace, self.pod.name, COST_ANNOTATION, cost, str(exc) or type(exc).__name__,
        )  # fmt: skip
