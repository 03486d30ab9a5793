"""Firing alerts from Alertmanager (API v2), each attached to the instances its labels name.

Prometheus labels every target from the gateway's service discovery with `service`,
`instance_id`, `kind` and, for a venue, `venue` (trademesh.gateway.registry.targets); an alert rule keeps
them. An alert names an instance by its instance_id first; without one, by `service` (every
replica of that name) or `venue`. One that names no listed instance is mesh-wide.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import aiohttp

from trademesh.core.platform.errors import InvalidArgument, Unavailable
from trademesh.core.platform.logs.redact import scrub
from trademesh.core.platform.parsing import loads_json
from trademesh.gateway.registry.state import Entry
from trademesh.registry.v1 import registry_pb2 as reg
from trademesh.services.v1 import services_pb2 as pb

__all__ = ["ALERTS_PATH", "AlertSource", "attach", "parse_alerts"]

ALERTS_PATH = "/api/v2/alerts"
# Firing: active, neither silenced nor inhibited.
_FIRING = {"active": "true", "silenced": "false", "inhibited": "false"}
_FRACTION = re.compile(r"(\.\d{6})\d+")
# An answer larger than this is not one the board can show.
_MAX_ALERTS = 1000
_MAX_BYTES = 8 * 1024 * 1024


class AlertSource:
    """Reads the firing alerts from the Alertmanager at `url` (its base, e.g. http://am:9093)."""

    def __init__(self, url: str, timeout_s: float) -> None:
        self.url = url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)

    async def firing(self, session: aiohttp.ClientSession) -> list[pb.Alert]:
        try:
            async with session.get(self.url + ALERTS_PATH, params=_FIRING, timeout=self._timeout) as reply:
                if reply.status != 200:
                    raise Unavailable(f"Alertmanager answered HTTP {reply.status}")
                text = await _bounded_body(reply)
        except (aiohttp.ClientError, TimeoutError) as exc:
            said = scrub(str(exc), self.url)  # aiohttp's errors may quote the URL, its password too
            raise Unavailable(f"Alertmanager unreachable: {type(exc).__name__} {said}".strip()) from None
        try:
            body = loads_json(text, "Alertmanager's answer", max_bytes=_MAX_BYTES)
        except InvalidArgument as exc:
            raise ValueError(str(exc)) from None
        return parse_alerts(body)


async def _bounded_body(reply: aiohttp.ClientResponse) -> bytes:
    """The body, or its first _MAX_BYTES and more (refused then): never all of a huge one."""
    body = bytearray()
    async for chunk in reply.content.iter_chunked(64 * 1024):
        body += chunk
        if len(body) > _MAX_BYTES:
            break
    return bytes(body)


def parse_alerts(body: Any) -> list[pb.Alert]:
    """Alertmanager's GET /api/v2/alerts answer as alerts; ValueError when it is not one (the
    board then shows the source failing: one malformed answer must not end a round)."""
    if not isinstance(body, list):
        raise ValueError("Alertmanager's answer is not a list of alerts")
    return [_alert(item) for item in body[:_MAX_ALERTS] if isinstance(item, dict)]


def _alert(item: dict[str, Any]) -> pb.Alert:
    labels = {str(k): str(v) for k, v in _object(item, "labels").items()}
    notes = _object(item, "annotations")
    return pb.Alert(
        name=labels.get("alertname", ""),
        severity=labels.get("severity", ""),
        summary=str(notes.get("summary") or notes.get("description") or ""),
        labels=labels,
        starts_at_ns=_ns(item.get("startsAt")),
    )


def _object(item: dict[str, Any], name: str) -> dict[str, Any]:
    value = item.get(name) or {}
    if not isinstance(value, dict):
        raise ValueError(f"Alertmanager's answer is malformed: an alert's {name} are not an object")
    return value


def _ns(text: Any) -> int:
    if not isinstance(text, str):
        return 0
    try:
        moment = datetime.fromisoformat(_FRACTION.sub(r"\1", text.replace("Z", "+00:00")))
    except ValueError:
        return 0
    return int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1000


def attach(
    alerts: Sequence[pb.Alert], entries: Sequence[Entry]
) -> tuple[dict[str, list[pb.Alert]], list[pb.Alert]]:
    """(the alerts of each instance, by instance_id; the mesh-wide ones)."""
    by_id: dict[str, list[pb.Alert]] = {entry.instance_id: [] for entry in entries}
    mesh: list[pb.Alert] = []
    for alert in alerts:
        named = _named(alert.labels, entries)
        for entry in named:
            by_id[entry.instance_id].append(alert)
        if not named:
            mesh.append(alert)
    return by_id, mesh


def _named(labels: Any, entries: Sequence[Entry]) -> list[Entry]:
    instance_id = labels.get("instance_id")
    if instance_id:
        return [entry for entry in entries if entry.instance_id == instance_id]
    service, venue = labels.get("service"), labels.get("venue")
    return [
        entry
        for entry in entries
        if (service and entry.name == service)
        or (venue and entry.kind == reg.KIND_VENUE and entry.name == venue)
    ]
