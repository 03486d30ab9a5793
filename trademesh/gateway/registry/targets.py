"""The registry's instances as Prometheus HTTP service discovery target groups (http_sd_configs).

One group per live instance that exports metrics: its metrics port on the host of its
registered address (the host others already dial it at), labelled with what a dashboard or an
alert groups by. Every trademesh exporter serves /metrics, so no group sets __metrics_path__.
A lost instance (trademesh.gateway.registry.state: its heartbeats stopped without an unregistration) stays
a target, labelled `lost="true"`: scraped down, so TargetDown fires for a crashed process too.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypedDict

from trademesh.gateway.registry.state import Entry
from trademesh.gateway.registry.validate import parse_address
from trademesh.registry.v1 import registry_pb2 as pb

__all__ = ["TargetGroup", "metrics_target", "target_groups"]


class TargetGroup(TypedDict):
    targets: list[str]
    labels: dict[str, str]


_KIND_LABELS = {pb.KIND_VENUE: "venue", pb.KIND_CORE: "core", pb.KIND_GATEWAY: "gateway"}


def target_groups(entries: Iterable[Entry]) -> list[TargetGroup]:
    """A group per entry with a metrics port, in the entries' order."""
    groups: list[TargetGroup] = []
    for entry in entries:
        target = metrics_target(entry)
        if target is not None:
            groups.append(TargetGroup(targets=[target], labels=_labels(entry)))
    return groups


def metrics_target(entry: Entry) -> str | None:
    """host:port of its Prometheus exporter; None when it exports none or its host is unknown."""
    if entry.metrics_port == 0:
        return None
    host = entry.metrics_host
    if host is None:
        parsed = parse_address(entry.address)
        if parsed is None:  # a configured --upstream the gateway was given as it was
            return None
        host = parsed[0]
    return f"{host}:{entry.metrics_port}"


def _labels(entry: Entry) -> dict[str, str]:
    labels = {
        "service": entry.name,
        "kind": _KIND_LABELS.get(entry.kind, "unspecified"),
        "instance_id": entry.instance_id,
    }
    if entry.kind == pb.KIND_VENUE:
        labels["venue"] = entry.name
    if entry.lost:
        labels["lost"] = "true"
    return labels
